import { createHmac, constants as cryptoConstants, generateKeyPairSync, type JsonWebKey, type KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EntraAuthConfig, entraConfigFromEnv, verifyBearer } from '../../../shared/auth/entra';
import { AuthenticationError, ConfigError } from '../../../shared/errors';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ISS_V1 = `https://sts.windows.net/${TENANT}/`;
const ISS_V2 = `https://login.microsoftonline.com/${TENANT}/v2.0`;
const AUDIENCE = 'api://sentinel-triage';
const RELAY_APPID = '0b5c1d2e-0000-4000-8000-00000000relay';
const NOW = new Date('2026-11-20T03:45:00Z');
const nowSec = Math.floor(NOW.getTime() / 1000);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

const publicJwk = (key: KeyObject, extra: Record<string, unknown>): JsonWebKey => ({ ...key.export({ format: 'jwk' }), ...extra });
const rsaJwk = publicJwk(rsa.publicKey, { kid: 'k1', use: 'sig', x5t: 'k1', x5c: ['MIIC...'] });
const ecJwk = publicJwk(ec.publicKey, { kid: 'e1', use: 'sig' });

const b64url = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

type Signer = (input: Buffer) => Buffer;
const rs256 =
  (key: KeyObject): Signer =>
  (input) =>
    sign('sha256', input, key);

function token(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'RS256', kid: 'k1', typ: 'JWT' },
  signer: Signer = rs256(rsa.privateKey),
): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}

const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ISS_V1,
  aud: AUDIENCE,
  iat: nowSec - 60,
  nbf: nowSec - 60,
  exp: nowSec + 3600,
  sub: 'mi-object-id',
  oid: 'mi-object-id',
  appid: RELAY_APPID,
  tid: TENANT,
  roles: ['Incidents.Submit'],
  ...over,
});

const config = (over: Partial<EntraAuthConfig> = {}): EntraAuthConfig => ({
  issuers: [ISS_V1, ISS_V2],
  audiences: [AUDIENCE],
  keys: [rsaJwk, ecJwk],
  allowedAppIds: [RELAY_APPID],
  ...over,
});

const bearer = (t: string): string => `Bearer ${t}`;

function refusal(header: string | null | undefined, cfg: EntraAuthConfig = config(), now: Date = NOW): AuthenticationError {
  try {
    verifyBearer(header, cfg, now);
  } catch (err) {
    expect(err).toBeInstanceOf(AuthenticationError);
    return err as AuthenticationError;
  }
  throw new Error('expected the token to be refused');
}

describe('verifyBearer', () => {
  it('accepts a valid managed-identity token and returns the caller', () => {
    const principal = verifyBearer(bearer(token(claims())), config(), NOW);
    expect(principal).toEqual({ subject: 'mi-object-id', appId: RELAY_APPID, tenantId: TENANT, roles: ['Incidents.Submit'] });
  });

  it('accepts a v2 token whose client id is in azp and whose aud is an array', () => {
    const t = token(claims({ iss: ISS_V2, aud: ['other', AUDIENCE], appid: undefined, azp: RELAY_APPID }));
    expect(verifyBearer(bearer(t), config(), NOW).appId).toBe(RELAY_APPID);
  });

  it('accepts the scheme name in any case', () => {
    expect(verifyBearer(`bearer ${token(claims())}`, config(), NOW).subject).toBe('mi-object-id');
  });

  it('accepts PS256 and ES256 signatures', () => {
    const ps = token(claims(), { alg: 'PS256', kid: 'k1' }, (input) =>
      sign('sha256', input, { key: rsa.privateKey, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
    );
    const es = token(claims(), { alg: 'ES256', kid: 'e1' }, (input) =>
      sign('sha256', input, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }),
    );
    expect(verifyBearer(bearer(ps), config(), NOW).subject).toBe('mi-object-id');
    expect(verifyBearer(bearer(es), config(), NOW).subject).toBe('mi-object-id');
  });

  it('accepts a token expired by less than the clock skew', () => {
    expect(verifyBearer(bearer(token(claims({ exp: nowSec - 200 }))), config(), NOW).subject).toBe('mi-object-id');
  });

  it('refuses a token signed by another key under the same kid', () => {
    expect(refusal(bearer(token(claims(), undefined, rs256(otherRsa.privateKey)))).message).toMatch(/signature is invalid/);
  });

  it('refuses a token whose payload was altered after signing', () => {
    const [h, , s] = token(claims()).split('.');
    const forged = `${h}.${b64url(claims({ roles: ['Admin'] }))}.${s}`;
    expect(refusal(bearer(forged)).message).toMatch(/signature is invalid/);
  });

  it('refuses a token whose kid is not configured', () => {
    expect(refusal(bearer(token(claims(), { alg: 'RS256', kid: 'rolled-key' }))).message).toMatch(
      /no configured signing key has kid "rolled-key"/,
    );
  });

  it('refuses a token without a kid', () => {
    expect(refusal(bearer(token(claims(), { alg: 'RS256' }))).message).toMatch(/no kid/);
  });

  it('refuses a token from another issuer', () => {
    expect(refusal(bearer(token(claims({ iss: 'https://sts.windows.net/another-tenant/' })))).message).toMatch(/issuer .* is not accepted/);
  });

  it('refuses a token for another audience', () => {
    expect(refusal(bearer(token(claims({ aud: 'https://management.azure.com/' })))).message).toMatch(/audience .* is not accepted/);
  });

  it('refuses an expired token', () => {
    expect(refusal(bearer(token(claims({ exp: nowSec - 301 })))).message).toMatch(/expired/);
  });

  it('refuses a token that is not yet valid', () => {
    expect(refusal(bearer(token(claims({ nbf: nowSec + 301 })))).message).toMatch(/not valid before/);
  });

  it('refuses a token issued in the future', () => {
    expect(refusal(bearer(token(claims({ iat: nowSec + 3600, nbf: undefined })))).message).toMatch(/issued in the future/);
  });

  it('refuses alg none, with or without a signature part', () => {
    const unsigned = `${b64url({ alg: 'none', kid: 'k1' })}.${b64url(claims())}.`;
    expect(refusal(bearer(unsigned)).message).toMatch(/signature/);
    const withJunk = `${b64url({ alg: 'none', kid: 'k1' })}.${b64url(claims())}.AAAA`;
    expect(refusal(bearer(withJunk)).message).toMatch(/algorithm "none" is not accepted/);
  });

  it('refuses HS256 signed with the public key as the secret (algorithm confusion)', () => {
    const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' });
    for (const secret of [pem, JSON.stringify(rsaJwk)]) {
      const t = token(claims(), { alg: 'HS256', kid: 'k1' }, (input) => createHmac('sha256', secret).update(input).digest());
      expect(refusal(bearer(t)).message).toMatch(/algorithm "HS256" is not accepted/);
    }
  });

  it('refuses an RS256 key for an ES256 token and a key pinned to another alg', () => {
    const es = token(claims(), { alg: 'ES256', kid: 'k1' }, (input) =>
      sign('sha256', input, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }),
    );
    expect(refusal(bearer(es)).message).toMatch(/cannot verify ES256/);
    const pinned = config({ keys: [{ ...rsaJwk, alg: 'PS256' }] });
    expect(refusal(bearer(token(claims())), pinned).message).toMatch(/cannot verify RS256/);
  });

  it('refuses a missing or empty Authorization header', () => {
    expect(refusal(undefined).message).toMatch(/missing Authorization header/);
    expect(refusal(null).message).toMatch(/missing Authorization header/);
    expect(refusal('   ').message).toMatch(/missing Authorization header/);
  });

  it('refuses another scheme and malformed tokens', () => {
    expect(refusal(`Basic ${Buffer.from('a:b').toString('base64')}`).message).toMatch(/Bearer <token>/);
    expect(refusal('Bearer abc.def').message).toMatch(/expected 3 dot-separated parts, got 2/);
    expect(refusal('Bearer a+b.c.d').message).toMatch(/not base64url/);
    expect(refusal(`Bearer ${b64url('not json')}.${b64url(claims())}.AAAA`).message).toMatch(/header is not base64url-encoded JSON/);
    expect(refusal(`Bearer x${'A'.repeat(20_000)}.b.c`).message).toMatch(/longer than/);
  });

  it('names the JSON path of a missing claim', () => {
    const { exp: _exp, ...noExp } = claims();
    expect(refusal(bearer(token(noExp))).message).toMatch(/\$payload\.exp/);
  });

  it('refuses a client that is not on the allow-list, or a token without a client id', () => {
    expect(refusal(bearer(token(claims({ appid: 'some-other-app' })))).message).toMatch(/client "some-other-app" is not allowed/);
    expect(refusal(bearer(token(claims({ appid: undefined })))).message).toMatch(/no appid\/azp/);
  });

  it('refuses a caller lacking a required role', () => {
    const cfg = config({ requiredRoles: ['Incidents.Submit', 'Incidents.Admin'] });
    expect(refusal(bearer(token(claims())), cfg).message).toMatch(/lacks required role\(s\): Incidents\.Admin/);
  });

  it('never echoes the token in the refusal', () => {
    const t = token(claims({ iss: 'https://evil.example/' }));
    const err = refusal(bearer(t));
    expect(err.message).not.toContain(t.split('.')[2]);
    expect(err.message).not.toContain(t.split('.')[1]);
  });
});

describe('entraConfigFromEnv', () => {
  const jwks = JSON.stringify({ keys: [rsaJwk] });
  const base = { AUTH_ENTRA_AUDIENCE: AUDIENCE, AUTH_ENTRA_ISSUERS: `${ISS_V1}, ${ISS_V2}`, AUTH_ENTRA_JWKS: jwks };

  const configError = (fn: () => unknown): ConfigError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('is disabled when every AUTH_ENTRA_* setting is unset or blank, as local.settings.sample.json ships them', () => {
    const sample = JSON.parse(readFileSync(join(__dirname, '../../../local.settings.sample.json'), 'utf8')) as {
      Values: Record<string, string>;
    };
    const shipped = Object.fromEntries(Object.entries(sample.Values).filter(([k]) => k.startsWith('AUTH_ENTRA_')));

    expect(shipped).toHaveProperty('AUTH_ENTRA_AUDIENCE', '');
    expect(entraConfigFromEnv({})).toBeUndefined();
    expect(entraConfigFromEnv(shipped)).toBeUndefined();
    expect(entraConfigFromEnv({ AUTH_ENTRA_AUDIENCE: '  ', AUTH_ENTRA_ISSUERS: ' ', AUTH_ENTRA_JWKS: '' })).toBeUndefined();
  });

  it.each([
    ['unset', undefined],
    ['empty', ''],
    ['blank', '   '],
  ])('refuses the other settings with an audience that is %s, naming AUTH_ENTRA_AUDIENCE and what is set', (_what, audience) => {
    for (const [name, value] of [
      ['AUTH_ENTRA_ISSUERS', ISS_V1],
      ['AUTH_ENTRA_JWKS', jwks],
      ['AUTH_ENTRA_JWKS_FILE', '/etc/triage/jwks.json'],
      ['AUTH_ENTRA_ALLOWED_APPIDS', RELAY_APPID],
      ['AUTH_ENTRA_REQUIRED_ROLES', 'Incidents.Submit'],
    ] as const) {
      const err = configError(() => entraConfigFromEnv({ AUTH_ENTRA_AUDIENCE: audience, [name]: value }));

      expect(err.setting).toBe('AUTH_ENTRA_AUDIENCE');
      expect(err.message).toContain(`required when ${name} is set`);
    }
    const all = configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_AUDIENCE: audience }));
    expect(all.message).toContain('required when AUTH_ENTRA_ISSUERS, AUTH_ENTRA_JWKS are set');
  });

  it('refuses an audience that lists only commas and blanks, alone or with the other settings', () => {
    for (const audience of [' , ', ',', ' ,, , ']) {
      expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_AUDIENCE: audience })).setting).toBe('AUTH_ENTRA_AUDIENCE');
      expect(configError(() => entraConfigFromEnv({ AUTH_ENTRA_AUDIENCE: audience })).message).toMatch(/lists no audience/);
    }
  });

  it('reads lists, keys and defaults, and the result verifies real tokens', () => {
    const cfg = entraConfigFromEnv({ ...base, AUTH_ENTRA_ALLOWED_APPIDS: RELAY_APPID, AUTH_ENTRA_REQUIRED_ROLES: 'Incidents.Submit' });
    expect(cfg).toMatchObject({ issuers: [ISS_V1, ISS_V2], audiences: [AUDIENCE], clockSkewSec: 300, allowedAppIds: [RELAY_APPID] });
    expect(verifyBearer(bearer(token(claims())), cfg!, NOW).subject).toBe('mi-object-id');
  });

  it('reads the JWKS from a file', () => {
    const cfg = entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: undefined, AUTH_ENTRA_JWKS_FILE: '/etc/triage/jwks.json' }, (p) => {
      expect(p).toBe('/etc/triage/jwks.json');
      return jwks;
    });
    expect(cfg?.keys).toHaveLength(1);
  });

  it('names the missing or invalid setting', () => {
    expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_ISSUERS: '' })).setting).toBe('AUTH_ENTRA_ISSUERS');
    expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_ISSUERS: 'sts.windows.net' })).setting).toBe('AUTH_ENTRA_ISSUERS');
    expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: undefined })).setting).toBe('AUTH_ENTRA_JWKS');
    expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS_FILE: '/x' })).setting).toBe('AUTH_ENTRA_JWKS');
    expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: '{"keys": [' })).setting).toBe('AUTH_ENTRA_JWKS');
    expect(configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_CLOCK_SKEW_SEC: '3600' })).setting).toBe('AUTH_ENTRA_CLOCK_SKEW_SEC');
    const unreadable = configError(() =>
      entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: undefined, AUTH_ENTRA_JWKS_FILE: '/nope.json' }, () => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      }),
    );
    expect(unreadable.setting).toBe('AUTH_ENTRA_JWKS_FILE');
    expect(unreadable.message).toMatch(/ENOENT/);
  });

  it('names the JSON path of a bad JWKS entry', () => {
    const err = configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: JSON.stringify({ keys: [rsaJwk, { kty: 'RSA' }] }) }));
    expect(err.message).toMatch(/\$\.keys\[1\]\.kid/);
  });

  it('refuses private, symmetric and short keys', () => {
    const privateJwk = rsa.privateKey.export({ format: 'jwk' });
    expect(
      configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: JSON.stringify({ keys: [{ ...privateJwk, kid: 'p' }] }) })).message,
    ).toMatch(/private key material/);
    expect(
      configError(() =>
        entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: JSON.stringify({ keys: [{ kty: 'oct', kid: 's', k: 'c2VjcmV0' }] }) }),
      ).message,
    ).toMatch(/symmetric/);
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    expect(
      configError(() => entraConfigFromEnv({ ...base, AUTH_ENTRA_JWKS: JSON.stringify({ keys: [{ ...weak, kid: 'w' }] }) })).message,
    ).toMatch(/too short/);
  });
});
