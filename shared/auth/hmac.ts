/**
 * HMAC request signing for `POST /api/alerts` from non-Sentinel sources.
 *
 * ## Scheme
 *
 * The sender computes, over the exact bytes of the request body as sent:
 *
 * ```
 * timestamp = current time in whole Unix seconds, as decimal digits (e.g. "1763610150")
 * message   = timestamp + "." + rawBody            (bytes: ASCII timestamp, 0x2E, body bytes unchanged)
 * signature = lowercase hex of HMAC-SHA256(secret, message)      (64 hex digits)
 * ```
 *
 * and sends the headers
 *
 * ```
 * x-triage-timestamp: <timestamp>
 * x-triage-signature: sha256=<signature>
 * x-triage-key-id:    <id>        (optional: which configured secret was used)
 * ```
 *
 * The secret is used as the UTF-8 bytes of the configured string (it is not hex- or
 * base64-decoded). The receiver refuses the request when a header is missing or malformed,
 * when the timestamp is more than 300 s away from its clock in either direction, when no
 * configured secret produces the same signature (compared in constant time), or when the
 * same signature was already accepted (replay). Without `x-triage-key-id` every configured
 * secret is tried, so senders keep working through a rotation even before they learn the
 * new id; with it, only that secret is tried.
 *
 * Rotation: configure `AUTH_HMAC_SECRETS=new:<s2>,old:<s1>`, move senders to `new`, then
 * remove `old`.
 *
 * HMAC is an additional gate: the Functions function key (or Entra auth in front of the app)
 * still applies when `AUTH_HMAC_SECRETS` is unset.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AuthenticationError, ConfigError } from '../errors';
import type { Logger } from '../log';

/** Header carrying the Unix-seconds timestamp. */
export const HMAC_TIMESTAMP_HEADER = 'x-triage-timestamp';
/** Header carrying `sha256=<hex>`. */
export const HMAC_SIGNATURE_HEADER = 'x-triage-signature';
/** Optional header naming the secret used. */
export const HMAC_KEY_ID_HEADER = 'x-triage-key-id';
/** Accepted clock difference in either direction, in seconds. */
export const DEFAULT_HMAC_WINDOW_SEC = 300;
/** Key id given to a single secret configured without an id. */
export const DEFAULT_HMAC_KEY_ID = 'default';
/** Shortest secret accepted, in bytes: HMAC-SHA256 keys below 256 bits weaken the MAC. */
export const MIN_HMAC_SECRET_BYTES = 32;

/** One configured secret. */
export interface HmacKey {
  /** Stable id, sent by clients in `x-triage-key-id`. */
  readonly id: string;
  /** The secret bytes. Never log this. */
  readonly secret: Buffer;
}

/** HMAC verification settings. */
export interface HmacAuthConfig {
  /** Secrets in preference order (the first is the current one for signing). */
  readonly keys: readonly HmacKey[];
  /** Replay window in seconds, both directions (default 300). */
  readonly windowSec?: number;
}

/**
 * A first use's claim on a signature, given back by {@link ReplayHold.release} when the request
 * was not processed (answered 5xx or failed), so the sender's identical retry is accepted.
 */
export interface ReplayHold {
  /**
   * Forgets the signature, but only if the entry is still the one this hold wrote: a stale hold
   * (its entry expired and someone else now holds the signature) frees nothing. Idempotent.
   */
  release(): Promise<void>;
}

/**
 * Remembers accepted signatures until they would be refused for age anyway, so a captured
 * request cannot be replayed inside the window.
 */
export interface ReplayGuard {
  /**
   * Records `signature` until `expiresAtMs` (an entry is free again once `expiresAtMs <= now`).
   * Resolves to a {@link ReplayHold} (truthy) for a first use, or `false` for a replay.
   * @param nowMs the instant to judge expiry at (default: the guard's clock); {@link verifyHmac}
   *   passes the instant it checked the timestamp at, so a slow store cannot stretch the window.
   */
  checkAndRemember(signature: string, expiresAtMs: number, nowMs?: number): Promise<ReplayHold | false>;
}

/**
 * An in-process {@link ReplayGuard}: a map of signature → expiry, bounded to `maxEntries`.
 *
 * Scope: it protects a single process only. A scaled-out Function app (several instances)
 * must back the guard with the shared store (a later change), otherwise a request replayed
 * to another instance within the window is accepted there.
 *
 * When full, expired entries are swept; if it is still full, the oldest entries are evicted
 * (which reopens replay for them until their timestamp ages out). Only requests with a valid
 * signature reach the guard, so filling it requires the secret.
 */
export class InMemoryReplayGuard implements ReplayGuard {
  /** signature → its entry; an entry object is identity, so a hold releases only what it wrote. */
  private readonly seen = new Map<string, { readonly expiresAtMs: number }>();

  /** @param maxEntries upper bound on remembered signatures (default 100 000, about 7 MB). */
  constructor(
    private readonly maxEntries = 100_000,
    private readonly clock: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new ConfigError('replay guard maxEntries', 'must be a positive integer');
  }

  /** Number of signatures currently remembered (for tests and metrics). */
  get size(): number {
    return this.seen.size;
  }

  /** See {@link ReplayGuard.checkAndRemember}. */
  async checkAndRemember(signature: string, expiresAtMs: number, nowMs: number = this.clock()): Promise<ReplayHold | false> {
    const known = this.seen.get(signature);
    if (known !== undefined && known.expiresAtMs > nowMs) return false;
    if (known !== undefined) this.seen.delete(signature);
    if (this.seen.size >= this.maxEntries) this.sweep(nowMs);
    while (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.keys().next();
      if (oldest.done) break;
      this.seen.delete(oldest.value);
    }
    const entry = { expiresAtMs };
    this.seen.set(signature, entry);
    return {
      release: async () => {
        if (this.seen.get(signature) === entry) this.seen.delete(signature);
      },
    };
  }

  private sweep(now: number): void {
    for (const [sig, entry] of this.seen) if (entry.expiresAtMs <= now) this.seen.delete(sig);
  }
}

/** Environment variables read by {@link hmacConfigFromEnv}. */
export type HmacEnv = Readonly<Record<string, string | undefined>>;

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Reads `AUTH_HMAC_SECRETS`: either one secret without `:` (key id `default`) or
 * `id1:secret1,id2:secret2` (the first `:` of an entry separates id and secret, so ids cannot
 * contain `:`; secrets may, but cannot contain `,`). A single entry with a `:` is therefore
 * always read as `id:secret`: a lone secret containing `:` must be given an id, e.g.
 * `default:<secret>`. Each secret must be at least 32 bytes (e.g. `openssl rand -hex 32`).
 *
 * Returns `undefined` when the setting is absent or empty: HMAC is then disabled and the
 * function key (or Entra auth) is the only gate on `POST /api/alerts`.
 *
 * @throws ConfigError naming `AUTH_HMAC_SECRETS` and the entry by position ("entry 2"). No part
 *   of the configured value is ever included, ids neither: when a secret was mistaken for
 *   `id:secret`, its "id" is part of the secret.
 */
export function hmacConfigFromEnv(env: HmacEnv): HmacAuthConfig | undefined {
  const raw = env.AUTH_HMAC_SECRETS?.trim();
  if (!raw) return undefined;
  const entries = raw.split(',').map((e) => e.trim());
  const keys: HmacKey[] = [];
  // Messages name the entry by position and say what is wrong, never quoting it: any part of an
  // entry may be secret (a lone secret containing ':' is read as id:secret, so its "id" is secret).
  const refuse = (i: number, reason: string): never => {
    const hint = entries.length === 1 && entries[0]?.includes(':') ? ' (a lone secret containing ":" needs an id: default:<secret>)' : '';
    throw new ConfigError('AUTH_HMAC_SECRETS', `entry ${i + 1} ${reason}${hint}`);
  };
  entries.forEach((entry, i) => {
    if (entry === '') refuse(i, 'is empty');
    const colon = entry.indexOf(':');
    const single = entries.length === 1 && colon === -1;
    if (!single && colon === -1) refuse(i, 'is not of the form id:secret');
    const id = single ? DEFAULT_HMAC_KEY_ID : entry.slice(0, colon);
    const secret = single ? entry : entry.slice(colon + 1);
    if (!KEY_ID.test(id)) refuse(i, `is read as id:secret, and its key id (before the first ":") does not match ${KEY_ID.source}`);
    const previous = keys.findIndex((k) => k.id === id);
    if (previous !== -1) refuse(i, `has the same key id as entry ${previous + 1}`);
    const bytes = Buffer.from(secret, 'utf8');
    if (bytes.length < MIN_HMAC_SECRET_BYTES) {
      refuse(
        i,
        single
          ? `is shorter than ${MIN_HMAC_SECRET_BYTES} bytes`
          : `has a secret (after the first ":") shorter than ${MIN_HMAC_SECRET_BYTES} bytes`,
      );
    }
    keys.push({ id, secret: bytes });
  });
  return { keys };
}

const toBuffer = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

function hmacDigest(secret: Buffer | string, timestamp: string, body: Buffer | string): Buffer {
  return createHmac('sha256', toBuffer(secret)).update(timestamp, 'ascii').update('.', 'ascii').update(toBuffer(body)).digest();
}

/**
 * Computes the `x-triage-signature` value (`sha256=<hex>`) for a body, as a sender does.
 * `timestamp` is Unix seconds; pass the same value in `x-triage-timestamp`.
 */
export function signHmac(secret: Buffer | string, timestamp: number | string, body: Buffer | string): string {
  return `sha256=${hmacDigest(secret, String(timestamp), body).toString('hex')}`;
}

/**
 * Builds the full header set for a signed request (for the CLI and tests).
 * @param nowMs the signing time (default: now).
 */
export function hmacHeaders(
  key: { id?: string; secret: Buffer | string },
  body: Buffer | string,
  nowMs: number = Date.now(),
): Record<string, string> {
  const ts = Math.floor(nowMs / 1000);
  const headers: Record<string, string> = { [HMAC_TIMESTAMP_HEADER]: String(ts), [HMAC_SIGNATURE_HEADER]: signHmac(key.secret, ts, body) };
  if (key.id !== undefined) headers[HMAC_KEY_ID_HEADER] = key.id;
  return headers;
}

/** What {@link verifyHmac} needs from a request: a case-insensitive header getter and the raw body bytes. */
export interface HmacRequest {
  /** Header lookup, e.g. `request.headers.get.bind(request.headers)` for an `HttpRequest`. */
  headers: (name: string) => string | null;
  /** The body exactly as received (verify before parsing; re-serialised JSON will not match). */
  rawBody: Buffer | string;
}

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;
const TIMESTAMP = /^\d{1,12}$/;

/** A verified request: the secret that matched and the claim on its signature. */
export interface VerifiedHmac {
  /** Id of the secret that matched. */
  readonly keyId: string;
  /** Release it when the request is not processed (see {@link releaseSignatureOnFailure}), so the sender may retry as is. */
  readonly hold: ReplayHold;
}

/**
 * Verifies a signed request (scheme in the module documentation) and remembers its signature.
 *
 * The signature is remembered BEFORE the request is processed, so a concurrent replay is refused
 * while the first use is in flight; the caller gives it back with `hold.release()` when it answers
 * 5xx ({@link releaseSignatureOnFailure}).
 *
 * @returns the id of the secret that matched and the hold on the signature.
 * @throws AuthenticationError for a missing/malformed header, a timestamp outside the window,
 *   an unknown key id, a signature that matches no secret, or a replayed signature.
 */
export async function verifyHmac(
  input: HmacRequest,
  cfg: HmacAuthConfig,
  guard: ReplayGuard,
  now: number = Date.now(),
): Promise<VerifiedHmac> {
  const tsHeader = input.headers(HMAC_TIMESTAMP_HEADER)?.trim();
  const sigHeader = input.headers(HMAC_SIGNATURE_HEADER)?.trim();
  const keyIdHeader = input.headers(HMAC_KEY_ID_HEADER)?.trim();
  if (!tsHeader) throw new AuthenticationError(`missing ${HMAC_TIMESTAMP_HEADER} header`);
  if (!sigHeader) throw new AuthenticationError(`missing ${HMAC_SIGNATURE_HEADER} header`);
  if (!TIMESTAMP.test(tsHeader)) throw new AuthenticationError(`${HMAC_TIMESTAMP_HEADER} must be Unix seconds (digits only)`);
  const sigMatch = SIGNATURE.exec(sigHeader);
  if (!sigMatch?.[1]) throw new AuthenticationError(`${HMAC_SIGNATURE_HEADER} must be "sha256=" followed by 64 hex digits`);

  const windowSec = cfg.windowSec ?? DEFAULT_HMAC_WINDOW_SEC;
  const tsSec = Number(tsHeader);
  const ageSec = now / 1000 - tsSec;
  if (ageSec > windowSec) throw new AuthenticationError(`request timestamp is ${Math.floor(ageSec)} s old (window ${windowSec} s)`);
  if (-ageSec > windowSec)
    throw new AuthenticationError(`request timestamp is ${Math.floor(-ageSec)} s in the future (window ${windowSec} s)`);

  let candidates: readonly HmacKey[] = cfg.keys;
  if (keyIdHeader) {
    const key = cfg.keys.find((k) => k.id === keyIdHeader);
    if (!key) throw new AuthenticationError(`unknown ${HMAC_KEY_ID_HEADER}`);
    candidates = [key];
  }
  if (candidates.length === 0) throw new AuthenticationError('no HMAC secret is configured');

  const presented = Buffer.from(sigMatch[1], 'hex');
  let matched: HmacKey | undefined;
  for (const key of candidates) {
    const expected = hmacDigest(key.secret, tsHeader, input.rawBody);
    // Both are 32-byte SHA-256 digests (the regex fixed the presented length), as timingSafeEqual requires.
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && matched === undefined) matched = key;
  }
  if (!matched) throw new AuthenticationError('request signature does not match');

  // The timestamp is accepted up to and including (ts + window) s; the entry must outlive that
  // instant (an entry is free once expiresAt <= now), hence one second more. Expiry is judged at
  // `now`, the instant the timestamp was judged at, however long the guard's store takes.
  const hold = await guard.checkAndRemember(presented.toString('hex'), (tsSec + windowSec + 1) * 1000, now);
  if (!hold) throw new AuthenticationError('request signature was already used (replay)');
  return { keyId: matched.id, hold };
}

/**
 * Runs `handle`, the processing of a request that {@link verifyHmac} accepted, and gives its
 * signature back when the request is answered 5xx (status >= 500) or `handle` throws: the request
 * was then not (fully) processed and the sender's identical retry must be accepted (processing is
 * idempotent). An answer below 500 keeps the signature, so replaying that request stays refused.
 *
 * The release completes before the answer is returned, so a prompt retry cannot race it. A failed
 * release never replaces the request's own answer or error: it is logged as a warning
 * (`hmac.replay.release_failed`) and the signature stays taken until it ages out of the window.
 *
 * @param signed what {@link verifyHmac} returned, or `undefined` when HMAC is not configured (then `handle` just runs).
 * @param log where a failed release is reported (the runtime's logger).
 */
export async function releaseSignatureOnFailure<T extends { readonly status: number }>(
  signed: VerifiedHmac | undefined,
  log: Pick<Logger, 'warn'>,
  handle: () => Promise<T>,
): Promise<T> {
  let answer: T;
  try {
    answer = await handle();
  } catch (err) {
    await releaseQuietly(signed, log, 'error');
    throw err;
  }
  if (answer.status >= 500) await releaseQuietly(signed, log, `status ${answer.status}`);
  return answer;
}

async function releaseQuietly(signed: VerifiedHmac | undefined, log: Pick<Logger, 'warn'>, reason: string): Promise<void> {
  if (!signed) return;
  try {
    await signed.hold.release();
  } catch (err) {
    // The signature is never logged: the key id and why it was being released are enough to trace it.
    log.warn('hmac.replay.release_failed', { keyId: signed.keyId, reason, err });
  }
}
