/**
 * Entra ID (Azure AD) bearer-token validation for the incident webhook.
 *
 * The Sentinel relay playbook (a Logic App) calls `POST /api/incidents` with a token
 * it obtained for its managed identity (`Authorization: Bearer <jwt>`). This module
 * checks that token in code, so the webhook is protected even where App Service
 * Authentication ("Easy Auth") is not switched on, and so the same check runs in
 * `triage serve`.
 *
 * Keys are CONFIGURED, not fetched: the signing keys (JWKS) come from
 * `AUTH_ENTRA_JWKS` / `AUTH_ENTRA_JWKS_FILE`, typically written by the deployment
 * from `https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys` and refreshed
 * by a redeploy or a scheduled job. Fetching the JWKS at runtime is deliberately out
 * of scope here (no network I/O on the request path, no SSRF surface); when Entra
 * rolls its keys, tokens signed with an unknown `kid` are refused with a clear reason
 * until the configured set is refreshed.
 */
import { createPublicKey, constants as cryptoConstants, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AuthenticationError, ConfigError } from '../errors';
import { formatZodIssues } from '../model/zodIssues';

/** Signature algorithms accepted. Everything else (notably `none` and the HMAC family) is refused. */
export const ACCEPTED_JWT_ALGS = ['RS256', 'PS256', 'ES256'] as const;
/** An accepted signature algorithm. */
export type AcceptedJwtAlg = (typeof ACCEPTED_JWT_ALGS)[number];

/** Default tolerance for clock differences between Entra and this host, in seconds. */
export const DEFAULT_CLOCK_SKEW_SEC = 300;

/** Longest `Authorization` header value considered; Entra tokens are a few KB, so anything bigger is refused unparsed. */
export const MAX_BEARER_LENGTH = 16 * 1024;

/** What the incident webhook accepts as a valid caller. */
export interface EntraAuthConfig {
  /** Accepted `iss` values, compared exactly (v1: `https://sts.windows.net/<tenant>/`, v2: `https://login.microsoftonline.com/<tenant>/v2.0`). */
  issuers: string[];
  /** Accepted `aud` values (the app's Application ID URI and/or client id), compared exactly. */
  audiences: string[];
  /** The configured JWKS keys; a token's `kid` selects among them. */
  keys: JsonWebKey[];
  /** Tolerance for `exp`/`nbf`/`iat`, in seconds (default 300). */
  clockSkewSec?: number;
  /** App roles the caller must ALL carry in `roles` (empty or absent: no role check). */
  requiredRoles?: string[];
  /** Allowed client ids (`appid` in v1 tokens, `azp` in v2), e.g. the relay playbook's managed identity (empty or absent: any). */
  allowedAppIds?: string[];
}

/** The authenticated caller, as the handler may log or authorise it. */
export interface VerifiedPrincipal {
  /** `sub` (or `oid` when `sub` is absent): for a managed identity, its object id. */
  subject: string;
  /** Client id of the caller (`appid` or `azp`), when present. */
  appId: string | undefined;
  /** Entra tenant id (`tid`), when present. */
  tenantId: string | undefined;
  /** App roles granted to the caller. */
  roles: string[];
}

const jwtHeaderSchema = z.object({
  alg: z.string(),
  kid: z.string().min(1).optional(),
  typ: z.string().optional(),
  crit: z.array(z.string()).optional(),
});

const numericDate = z.number().finite();

const jwtPayloadSchema = z.object({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string()).min(1)]),
  exp: numericDate,
  nbf: numericDate.optional(),
  iat: numericDate.optional(),
  sub: z.string().min(1).optional(),
  oid: z.string().min(1).optional(),
  appid: z.string().optional(),
  azp: z.string().optional(),
  tid: z.string().optional(),
  roles: z.array(z.string()).optional(),
});

/** Shape of a configured JWKS document; unknown members (x5c, x5t, issuer, …) are kept and ignored. */
const jwksSchema = z.object({
  keys: z
    .array(
      z.looseObject({
        kty: z.string(),
        kid: z.string().min(1),
        use: z.string().optional(),
        alg: z.string().optional(),
      }),
    )
    .min(1),
});

/** Environment variables read by {@link entraConfigFromEnv}. */
export type EntraEnv = Readonly<Record<string, string | undefined>>;

const splitList = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/**
 * Settings that only mean something with bearer validation on: one of them set without a usable
 * `AUTH_ENTRA_AUDIENCE` is a mistake that would leave `/api/incidents` open, so it is refused.
 * `AUTH_ENTRA_CLOCK_SKEW_SEC` is not among them: a tuning knob alone does not ask for validation
 * (`local.settings.sample.json` ships it set to the default with everything else empty).
 */
const ENTRA_SETTINGS_NEEDING_AUDIENCE = [
  'AUTH_ENTRA_ISSUERS',
  'AUTH_ENTRA_JWKS',
  'AUTH_ENTRA_JWKS_FILE',
  'AUTH_ENTRA_ALLOWED_APPIDS',
  'AUTH_ENTRA_REQUIRED_ROLES',
] as const;

/**
 * Reads the Entra settings. Bearer validation is enabled when `AUTH_ENTRA_AUDIENCE` is set
 * (comma list allowed); when it and the settings that need it are all unset or blank, returns
 * `undefined` and the function key is the only gate. Any of them set without a usable audience
 * (including an audience of only commas and blanks, like `" , "`) is an error, never a silent
 * fail-open.
 *
 * - `AUTH_ENTRA_ISSUERS`: comma list of accepted issuers (required when enabled).
 * - `AUTH_ENTRA_JWKS` (inline JSON `{"keys":[…]}`) or `AUTH_ENTRA_JWKS_FILE` (path): exactly one is required.
 * - `AUTH_ENTRA_ALLOWED_APPIDS`: optional comma list of client ids (the relay's managed identity).
 * - `AUTH_ENTRA_REQUIRED_ROLES`: optional comma list of app roles the caller must all hold.
 * - `AUTH_ENTRA_CLOCK_SKEW_SEC`: optional, 0–600, default 300.
 *
 * Every key is imported once here so that a broken JWKS fails at start-up, not on the first request.
 * Private (`d`) and symmetric (`oct`) keys are refused: only public signing keys belong in this setting.
 *
 * @throws ConfigError naming the setting that is missing or invalid.
 */
export function entraConfigFromEnv(
  env: EntraEnv,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): EntraAuthConfig | undefined {
  const audiences = splitList(env.AUTH_ENTRA_AUDIENCE);
  if (audiences.length === 0) {
    if (env.AUTH_ENTRA_AUDIENCE?.trim())
      throw new ConfigError('AUTH_ENTRA_AUDIENCE', 'lists no audience (only commas and blanks); set the accepted aud values or unset it');
    const present = ENTRA_SETTINGS_NEEDING_AUDIENCE.filter((name) => env[name]?.trim());
    if (present.length > 0) {
      throw new ConfigError(
        'AUTH_ENTRA_AUDIENCE',
        `required when ${present.join(', ')} ${present.length === 1 ? 'is' : 'are'} set (bearer validation on /api/incidents is ` +
          'enabled by the audience); set it, or unset the other AUTH_ENTRA_* settings to run with the function key only',
      );
    }
    return undefined;
  }

  const issuers = splitList(env.AUTH_ENTRA_ISSUERS);
  if (issuers.length === 0) throw new ConfigError('AUTH_ENTRA_ISSUERS', 'required when AUTH_ENTRA_AUDIENCE is set');
  for (const iss of issuers) {
    if (!/^https:\/\/[^\s/]+\/\S*$/.test(iss))
      throw new ConfigError('AUTH_ENTRA_ISSUERS', `not an https issuer URL: ${JSON.stringify(iss)}`);
  }

  const inline = env.AUTH_ENTRA_JWKS?.trim();
  const file = env.AUTH_ENTRA_JWKS_FILE?.trim();
  if (inline && file) throw new ConfigError('AUTH_ENTRA_JWKS', 'set either AUTH_ENTRA_JWKS or AUTH_ENTRA_JWKS_FILE, not both');
  if (!inline && !file)
    throw new ConfigError('AUTH_ENTRA_JWKS', 'AUTH_ENTRA_JWKS or AUTH_ENTRA_JWKS_FILE is required when AUTH_ENTRA_AUDIENCE is set');
  const setting = inline ? 'AUTH_ENTRA_JWKS' : 'AUTH_ENTRA_JWKS_FILE';
  let text: string;
  if (inline) {
    text = inline;
  } else {
    try {
      text = readFile(file as string);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new ConfigError(setting, `cannot read ${JSON.stringify(file)} (${code})`, { cause: err });
    }
  }
  const keys = parseJwks(text, setting);

  let clockSkewSec = DEFAULT_CLOCK_SKEW_SEC;
  const skew = env.AUTH_ENTRA_CLOCK_SKEW_SEC?.trim();
  if (skew) {
    if (!/^\d{1,3}$/.test(skew) || Number(skew) > 600)
      throw new ConfigError('AUTH_ENTRA_CLOCK_SKEW_SEC', 'must be an integer number of seconds, 0-600');
    clockSkewSec = Number(skew);
  }

  return {
    issuers,
    audiences,
    keys,
    clockSkewSec,
    requiredRoles: splitList(env.AUTH_ENTRA_REQUIRED_ROLES),
    allowedAppIds: splitList(env.AUTH_ENTRA_ALLOWED_APPIDS),
  };
}

/** Parses and checks a JWKS document; every key must be an importable public signing key. */
function parseJwks(text: string, setting: string): JsonWebKey[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(setting, 'not valid JSON (expected {"keys":[...]})', { cause: err });
  }
  const parsed = jwksSchema.safeParse(json);
  if (!parsed.success) {
    const issue = formatZodIssues(parsed.error.issues)[0];
    throw new ConfigError(setting, issue ? `${issue.path}: ${issue.reason}` : 'invalid JWKS');
  }
  const keys = parsed.data.keys as JsonWebKey[];
  keys.forEach((jwk, i) => {
    if (jwk.kty === 'oct') throw new ConfigError(setting, `$.keys[${i}]: symmetric (oct) keys are not accepted`);
    if ('d' in jwk) throw new ConfigError(setting, `$.keys[${i}]: contains private key material; configure public keys only`);
    try {
      importKey(jwk);
    } catch (err) {
      throw new ConfigError(setting, `$.keys[${i}] (kid ${JSON.stringify(jwk.kid)}): ${(err as Error).message}`, { cause: err });
    }
  });
  return keys;
}

const keyCache = new WeakMap<JsonWebKey, KeyObject>();

/** Imports a JWK as a public key (cached per JWK object). Throws on an unusable key. */
function importKey(jwk: JsonWebKey): KeyObject {
  const cached = keyCache.get(jwk);
  if (cached) return cached;
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`RSA key of ${bits} bits is too short (minimum 2048)`);
  } else if (key.asymmetricKeyType !== 'ec') {
    throw new Error(`unsupported key type ${String(key.asymmetricKeyType)}`);
  }
  keyCache.set(jwk, key);
  return key;
}

/** Whether a configured key may verify a token signed with `alg` (prevents algorithm confusion across key types). */
function keyFitsAlg(jwk: JsonWebKey, alg: AcceptedJwtAlg): boolean {
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  switch (alg) {
    case 'RS256':
    case 'PS256':
      return jwk.kty === 'RSA';
    case 'ES256':
      return jwk.kty === 'EC' && jwk.crv === 'P-256';
    default: {
      const never: never = alg;
      return never;
    }
  }
}

function verifySignature(alg: AcceptedJwtAlg, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  switch (alg) {
    case 'RS256':
      return cryptoVerify('sha256', data, key, signature);
    case 'PS256':
      // RFC 7518 §3.5: salt length equals the hash length (32 bytes for SHA-256).
      return cryptoVerify('sha256', data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature);
    case 'ES256':
      // JWS carries ECDSA signatures as raw r||s (64 bytes), not DER.
      return signature.length === 64 && cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    default: {
      const never: never = alg;
      return never;
    }
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function decodeJsonSegment(segment: string, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new AuthenticationError(`malformed token: ${what} is not base64url-encoded JSON`);
  }
}

function parseOrRefuse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = formatZodIssues(parsed.error.issues, `$${what}`)[0];
  throw new AuthenticationError(`malformed token ${what}: ${issue ? `${issue.path}: ${issue.reason}` : 'invalid'}`);
}

const isAccepted = (alg: string): alg is AcceptedJwtAlg => (ACCEPTED_JWT_ALGS as readonly string[]).includes(alg);

/** Quotes a claim for an error message: claims are attacker-controlled, so they are bounded and JSON-escaped. */
const quote = (v: string): string => JSON.stringify(v.length > 120 ? `${v.slice(0, 120)}…` : v);

/**
 * Validates `Authorization: Bearer <jwt>` against `cfg` and returns the caller.
 *
 * Checks, in order: header shape and size; compact JWS form; header JSON (`alg` in
 * {@link ACCEPTED_JWT_ALGS}, `kid` present, no `crit`); a configured key with that `kid`
 * whose type fits `alg`; the signature; payload JSON; `iss` ∈ issuers; `aud` ∈ audiences;
 * `exp`, `nbf` and `iat` against `now` with the clock skew; the `appid`/`azp` allow-list;
 * the required roles. The signature is verified before any claim is looked at.
 *
 * @throws AuthenticationError with a precise, non-secret reason (the token itself is never echoed).
 * @throws ConfigError if a configured key cannot be imported (only possible for hand-built configs;
 *   {@link entraConfigFromEnv} checks keys up front).
 */
export function verifyBearer(
  authorizationHeader: string | null | undefined,
  cfg: EntraAuthConfig,
  now: Date = new Date(),
): VerifiedPrincipal {
  if (authorizationHeader === null || authorizationHeader === undefined || authorizationHeader.trim() === '') {
    throw new AuthenticationError('missing Authorization header');
  }
  if (authorizationHeader.length > MAX_BEARER_LENGTH)
    throw new AuthenticationError(`Authorization header longer than ${MAX_BEARER_LENGTH} characters`);
  const match = /^Bearer +(\S+)\s*$/i.exec(authorizationHeader.trim());
  if (!match?.[1]) throw new AuthenticationError('Authorization header is not of the form "Bearer <token>"');
  const parts = match[1].split('.');
  if (parts.length !== 3) throw new AuthenticationError(`malformed token: expected 3 dot-separated parts, got ${parts.length}`);
  const [headerB64, payloadB64, signatureB64] = parts as [string, string, string];
  if (!B64URL.test(headerB64) || !B64URL.test(payloadB64))
    throw new AuthenticationError('malformed token: header or payload is not base64url');
  if (!B64URL.test(signatureB64)) throw new AuthenticationError('malformed token: missing or non-base64url signature');

  const header = parseOrRefuse(jwtHeaderSchema, decodeJsonSegment(headerB64, 'header'), 'header');
  if (!isAccepted(header.alg))
    throw new AuthenticationError(`token algorithm ${quote(header.alg)} is not accepted (accepted: ${ACCEPTED_JWT_ALGS.join(', ')})`);
  if (header.crit !== undefined) throw new AuthenticationError('token header has unsupported critical extensions (crit)');
  if (header.kid === undefined) throw new AuthenticationError('token header has no kid');
  const alg = header.alg;
  const kid = header.kid;

  const candidates = cfg.keys.filter((k) => k.kid === kid);
  if (candidates.length === 0)
    throw new AuthenticationError(`no configured signing key has kid ${quote(kid)} (refresh the configured JWKS if Entra rolled its keys)`);
  const usable = candidates.filter((k) => keyFitsAlg(k, alg));
  if (usable.length === 0) throw new AuthenticationError(`configured key ${quote(kid)} cannot verify ${alg} signatures`);

  const signingInput = Buffer.from(`${headerB64}.${payloadB64}`, 'ascii');
  const signature = Buffer.from(signatureB64, 'base64url');
  const verified = usable.some((jwk) => {
    let key: KeyObject;
    try {
      key = importKey(jwk);
    } catch (err) {
      throw new ConfigError('AUTH_ENTRA_JWKS', `key ${quote(kid)}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return verifySignature(alg, key, signingInput, signature);
    } catch {
      // A malformed signature for this key type (e.g. wrong length for RSA) is a failed verification, not a crash.
      return false;
    }
  });
  if (!verified) throw new AuthenticationError('token signature is invalid');

  const claims = parseOrRefuse(jwtPayloadSchema, decodeJsonSegment(payloadB64, 'payload'), 'payload');
  if (!cfg.issuers.includes(claims.iss)) throw new AuthenticationError(`issuer ${quote(claims.iss)} is not accepted`);
  const auds = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  if (!auds.some((a) => cfg.audiences.includes(a))) throw new AuthenticationError(`audience ${quote(auds.join(','))} is not accepted`);

  const skew = cfg.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC;
  const nowSec = Math.floor(now.getTime() / 1000);
  if (nowSec >= claims.exp + skew) throw new AuthenticationError(`token expired at ${new Date(claims.exp * 1000).toISOString()}`);
  if (claims.nbf !== undefined && nowSec + skew < claims.nbf) {
    throw new AuthenticationError(`token not valid before ${new Date(claims.nbf * 1000).toISOString()}`);
  }
  if (claims.iat !== undefined && claims.iat > nowSec + skew) throw new AuthenticationError('token issued in the future (iat)');

  const appId = claims.appid ?? claims.azp;
  const allowed = cfg.allowedAppIds ?? [];
  if (allowed.length > 0 && (appId === undefined || !allowed.includes(appId))) {
    throw new AuthenticationError(
      appId === undefined ? 'token has no appid/azp and an app allow-list is configured' : `client ${quote(appId)} is not allowed`,
    );
  }
  const roles = claims.roles ?? [];
  const missing = (cfg.requiredRoles ?? []).filter((r) => !roles.includes(r));
  if (missing.length > 0) throw new AuthenticationError(`token lacks required role(s): ${missing.join(', ')}`);

  const subject = claims.sub ?? claims.oid;
  if (subject === undefined) throw new AuthenticationError('token has no sub or oid claim');
  return { subject, appId, tenantId: claims.tid, roles };
}
