import {
  type HmacAuthConfig,
  hmacConfigFromEnv,
  hmacHeaders,
  InMemoryReplayGuard,
  type ReplayGuard,
  releaseSignatureOnFailure,
  signHmac,
  verifyHmac,
} from '../../../shared/auth/hmac';
import { AuthenticationError, ConfigError, StoreUnavailableError } from '../../../shared/errors';

const SECRET = 'aaaaaaaaaaaaaaaa0123456789abcdef0123456789abcdef';
const OLD_SECRET = 'old-secret-old-secret-old-secret-old-secret';
const NOW = Date.parse('2026-11-20T03:45:00Z');
const TS = Math.floor(NOW / 1000);
const BODY = JSON.stringify({ source: 'fw-relay', title: 'Port scan from 203.0.113.9', severity: 'medium' });

const cfg = (): HmacAuthConfig => hmacConfigFromEnv({ AUTH_HMAC_SECRETS: `new:${SECRET},old:${OLD_SECRET}` })!;

function request(headers: Record<string, string>, rawBody: Buffer | string = BODY) {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { headers: (name: string) => lower.get(name.toLowerCase()) ?? null, rawBody };
}

async function refusal(promise: Promise<unknown>): Promise<AuthenticationError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthenticationError);
    return err as AuthenticationError;
  }
  throw new Error('expected the request to be refused');
}

describe('verifyHmac', () => {
  let guard: ReplayGuard;
  beforeEach(() => {
    guard = new InMemoryReplayGuard(1000, () => NOW);
  });

  it('accepts a correctly signed request and reports the key that matched', async () => {
    const headers = { 'x-triage-timestamp': String(TS), 'x-triage-signature': signHmac(SECRET, TS, BODY) };
    await expect(verifyHmac(request(headers), cfg(), guard, NOW)).resolves.toMatchObject({ keyId: 'new' });
  });

  it('signs timestamp + "." + body with HMAC-SHA256 as documented', () => {
    // Fixed vector so senders in other languages can check their implementation.
    // HMAC-SHA256(key "kkkk…" (32 × k), message '1700000000.{"a":1}'), computed independently.
    expect(signHmac('k'.repeat(32), 1700000000, '{"a":1}')).toBe('sha256=6935b796c0fec66e5dee52c86c7fd1218a424c32f1adb239ff2893c31e54f033');
  });

  it('accepts a Buffer body identical to the signed string', async () => {
    const headers = hmacHeaders({ id: 'new', secret: SECRET }, BODY, NOW);
    await expect(verifyHmac(request(headers, Buffer.from(BODY)), cfg(), guard, NOW)).resolves.toMatchObject({ keyId: 'new' });
  });

  it('refuses a tampered body', async () => {
    const headers = hmacHeaders({ secret: SECRET }, BODY, NOW);
    const err = await refusal(verifyHmac(request(headers, BODY.replace('medium', 'low')), cfg(), guard, NOW));
    expect(err.message).toMatch(/does not match/);
  });

  it('refuses a request signed with an unknown secret', async () => {
    const headers = hmacHeaders({ secret: 'z'.repeat(40) }, BODY, NOW);
    expect((await refusal(verifyHmac(request(headers), cfg(), guard, NOW))).message).toMatch(/does not match/);
  });

  it('accepts a timestamp exactly 300 s old but refuses 301 s old and 301 s ahead', async () => {
    const at = (ts: number) => request({ 'x-triage-timestamp': String(ts), 'x-triage-signature': signHmac(SECRET, ts, BODY) });
    await expect(verifyHmac(at(TS - 300), cfg(), guard, NOW)).resolves.toMatchObject({ keyId: 'new' });
    expect((await refusal(verifyHmac(at(TS - 301), cfg(), guard, NOW))).message).toMatch(/301 s old/);
    expect((await refusal(verifyHmac(at(TS + 301), cfg(), guard, NOW))).message).toMatch(/301 s in the future/);
  });

  it('refuses a replay of an accepted signature', async () => {
    const headers = hmacHeaders({ secret: SECRET }, BODY, NOW);
    await verifyHmac(request(headers), cfg(), guard, NOW);
    expect((await refusal(verifyHmac(request(headers), cfg(), guard, NOW + 1000))).message).toMatch(/replay/);
  });

  it('treats an upper-case hex signature as the same signature for replay purposes', async () => {
    const headers = hmacHeaders({ secret: SECRET }, BODY, NOW);
    await verifyHmac(request(headers), cfg(), guard, NOW);
    const upper = { ...headers, 'x-triage-signature': `sha256=${headers['x-triage-signature']!.slice(7).toUpperCase()}` };
    expect((await refusal(verifyHmac(request(upper), cfg(), guard, NOW))).message).toMatch(/replay/);
  });

  it('supports rotation: the key id selects the secret, and without it every secret is tried', async () => {
    const old = hmacHeaders({ id: 'old', secret: OLD_SECRET }, BODY, NOW);
    await expect(verifyHmac(request(old), cfg(), guard, NOW)).resolves.toMatchObject({ keyId: 'old' });
    const oldNoId = hmacHeaders({ secret: OLD_SECRET }, `${BODY} `, NOW);
    await expect(verifyHmac(request(oldNoId, `${BODY} `), cfg(), guard, NOW)).resolves.toMatchObject({ keyId: 'old' });
    const mislabelled = { ...hmacHeaders({ secret: OLD_SECRET }, `${BODY}  `, NOW), 'x-triage-key-id': 'new' };
    expect((await refusal(verifyHmac(request(mislabelled, `${BODY}  `), cfg(), guard, NOW))).message).toMatch(/does not match/);
    const unknown = { ...hmacHeaders({ secret: SECRET }, BODY, NOW), 'x-triage-key-id': 'retired' };
    expect((await refusal(verifyHmac(request(unknown), cfg(), guard, NOW))).message).toMatch(/unknown x-triage-key-id/);
  });

  it('refuses non-hex, wrong-length and wrongly prefixed signatures with AuthenticationError only', async () => {
    const good = signHmac(SECRET, TS, BODY);
    const bad = [
      `sha256=${'g'.repeat(64)}`,
      `sha256=${good.slice(7, 69)}`,
      `${good}00`,
      `sha1=${good.slice(7)}`,
      good.slice(7),
      'sha256=',
      `sha256=${'é'.repeat(64)}`,
    ];
    for (const sig of bad) {
      const err = await refusal(verifyHmac(request({ 'x-triage-timestamp': String(TS), 'x-triage-signature': sig }), cfg(), guard, NOW));
      expect(err.message).toMatch(/must be "sha256=" followed by 64 hex digits/);
    }
  });

  it('refuses missing and malformed timestamp headers', async () => {
    const sig = signHmac(SECRET, TS, BODY);
    expect((await refusal(verifyHmac(request({ 'x-triage-signature': sig }), cfg(), guard, NOW))).message).toMatch(
      /missing x-triage-timestamp/,
    );
    expect((await refusal(verifyHmac(request({ 'x-triage-timestamp': String(TS) }), cfg(), guard, NOW))).message).toMatch(
      /missing x-triage-signature/,
    );
    for (const ts of ['1.5e9', '-1', `${TS}ms`, '2026-11-20T03:45:00Z']) {
      const err = await refusal(verifyHmac(request({ 'x-triage-timestamp': ts, 'x-triage-signature': sig }), cfg(), guard, NOW));
      expect(err.message).toMatch(/Unix seconds/);
    }
  });

  it('refuses a replay at the last instant the timestamp is accepted (ts + 300 s exactly)', async () => {
    const headers = hmacHeaders({ secret: SECRET }, BODY, NOW);
    await verifyHmac(request(headers), cfg(), guard, NOW);

    const edge = verifyHmac(request(headers), cfg(), guard, (TS + 300) * 1000);

    expect((await refusal(edge)).message).toMatch(/replay/);
  });

  it('returns a hold whose release lets the identical request through once more', async () => {
    const headers = hmacHeaders({ secret: SECRET }, BODY, NOW);
    const first = await verifyHmac(request(headers), cfg(), guard, NOW);

    await first.hold.release();
    const retry = await verifyHmac(request(headers), cfg(), guard, NOW + 1000);

    expect(retry.keyId).toBe('new');
    expect((await refusal(verifyHmac(request(headers), cfg(), guard, NOW + 2000))).message).toMatch(/replay/);
  });

  it('does not remember signatures that failed verification', async () => {
    const headers = hmacHeaders({ secret: 'z'.repeat(40) }, BODY, NOW);
    await refusal(verifyHmac(request(headers), cfg(), guard, NOW));
    expect((guard as InMemoryReplayGuard).size).toBe(0);
  });
});

describe('releaseSignatureOnFailure', () => {
  const headers = hmacHeaders({ secret: SECRET }, BODY, NOW);
  const noLog = { warn: () => {} };
  let guard: InMemoryReplayGuard;
  beforeEach(() => {
    guard = new InMemoryReplayGuard(1000, () => NOW);
  });
  const verify = () => verifyHmac(request(headers), cfg(), guard, NOW);
  const retryAccepted = async () =>
    verify().then(
      () => true,
      (err: unknown) => (err instanceof AuthenticationError && /replay/.test(err.message) ? false : Promise.reject(err)),
    );

  it.each([500, 502, 503])(
    'gives the signature back when the request is answered %i, so the identical retry is accepted',
    async (status) => {
      const signed = await verify();

      const answer = await releaseSignatureOnFailure(signed, noLog, async () => ({ status }));

      expect(answer).toEqual({ status });
      expect(await retryAccepted()).toBe(true);
    },
  );

  it.each([200, 207, 400, 413, 499])('keeps the signature when the request is answered %i, so a replay is refused', async (status) => {
    const signed = await verify();

    await releaseSignatureOnFailure(signed, noLog, async () => ({ status }));

    expect(await retryAccepted()).toBe(false);
  });

  it('gives the signature back when processing throws, and rethrows the same error', async () => {
    const signed = await verify();
    const failure = new StoreUnavailableError('parking failed too');

    const outcome = releaseSignatureOnFailure(signed, noLog, async () => Promise.reject(failure));

    await expect(outcome).rejects.toBe(failure);
    expect(await retryAccepted()).toBe(true);
  });

  it('logs a failed release as a warning without the signature, and keeps the answer and the error', async () => {
    const warnings: [string, Record<string, unknown> | undefined][] = [];
    const log = { warn: (event: string, fields?: Record<string, unknown>) => void warnings.push([event, fields]) };
    const releaseFails = { keyId: 'new', hold: { release: () => Promise.reject(new StoreUnavailableError('store down')) } };
    const failure = new Error('pipeline crashed');

    const answer = await releaseSignatureOnFailure(releaseFails, log, async () => ({ status: 503, body: 'retry later' }));
    const thrown = releaseSignatureOnFailure(releaseFails, log, async () => Promise.reject(failure));

    expect(answer).toEqual({ status: 503, body: 'retry later' });
    await expect(thrown).rejects.toBe(failure);
    expect(warnings.map(([event, fields]) => [event, fields?.keyId, fields?.reason])).toEqual([
      ['hmac.replay.release_failed', 'new', 'status 503'],
      ['hmac.replay.release_failed', 'new', 'error'],
    ]);
    expect(JSON.stringify(warnings)).not.toContain(headers['x-triage-signature']!.slice(7));
  });

  it('just runs the handler when HMAC is not configured', async () => {
    await expect(releaseSignatureOnFailure(undefined, noLog, async () => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await expect(releaseSignatureOnFailure(undefined, noLog, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });
});

describe('InMemoryReplayGuard', () => {
  it('forgets a signature once its expiry has passed', async () => {
    let now = 1000;
    const guard = new InMemoryReplayGuard(10, () => now);
    expect(await guard.checkAndRemember('s1', 2000)).toBeTruthy();
    expect(await guard.checkAndRemember('s1', 2000)).toBe(false);
    now = 2001;
    expect(await guard.checkAndRemember('s1', 3000)).toBeTruthy();
  });

  it('stays within its bound by sweeping expired entries, then evicting the oldest', async () => {
    let now = 0;
    const guard = new InMemoryReplayGuard(2, () => now);
    await guard.checkAndRemember('a', 100);
    await guard.checkAndRemember('b', 1000);
    now = 150;
    await guard.checkAndRemember('c', 1000); // sweeps the expired 'a'
    expect(guard.size).toBe(2);
    expect(await guard.checkAndRemember('b', 1000)).toBe(false);
    await guard.checkAndRemember('d', 1000); // full of live entries: evicts the oldest ('b')
    expect(guard.size).toBe(2);
    expect(await guard.checkAndRemember('c', 1000)).toBe(false);
  });
});

describe('hmacConfigFromEnv', () => {
  const configError = (env: Record<string, string>): ConfigError => {
    try {
      hmacConfigFromEnv(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('is disabled when AUTH_HMAC_SECRETS is unset or blank', () => {
    expect(hmacConfigFromEnv({})).toBeUndefined();
    expect(hmacConfigFromEnv({ AUTH_HMAC_SECRETS: '  ' })).toBeUndefined();
  });

  it('reads a single secret as key id "default"', () => {
    const cfg = hmacConfigFromEnv({ AUTH_HMAC_SECRETS: SECRET });
    expect(cfg?.keys.map((k) => k.id)).toEqual(['default']);
    expect(cfg?.keys[0]?.secret.equals(Buffer.from(SECRET))).toBe(true);
  });

  it('reads id:secret pairs in order', () => {
    expect(cfg().keys.map((k) => k.id)).toEqual(['new', 'old']);
  });

  it('refuses short secrets, duplicate ids and malformed entries, naming the entry by position', () => {
    const short = configError({ AUTH_HMAC_SECRETS: 'k1:tooshort' });
    expect(short.setting).toBe('AUTH_HMAC_SECRETS');
    expect(short.message).toMatch(/entry 1 has a secret \(after the first ":"\) shorter than 32 bytes/);
    expect(configError({ AUTH_HMAC_SECRETS: `a:${SECRET},a:${OLD_SECRET}` }).message).toMatch(/entry 2 has the same key id as entry 1/);
    expect(configError({ AUTH_HMAC_SECRETS: `a:${SECRET},${OLD_SECRET}` }).message).toMatch(/entry 2 is not of the form id:secret/);
    expect(configError({ AUTH_HMAC_SECRETS: `a:${SECRET},,b:${OLD_SECRET}` }).message).toMatch(/entry 2 is empty/);
    expect(configError({ AUTH_HMAC_SECRETS: `bad id:${SECRET}` }).message).toMatch(/entry 1 .*key id .*does not match/);
    expect(configError({ AUTH_HMAC_SECRETS: 'short' }).message).toMatch(/entry 1 is shorter than 32 bytes/);
  });

  it('never puts any part of the configured value into an error, ids included', () => {
    // Random-looking values, so a leak cannot hide behind words the messages use anyway.
    const s1 = 'Zq8Vw2Lm5Tn0Rp4Xk7Yb3Hc6Jd9Gf1Qe';
    const s2 = '7hQ2mZ9vK4xW1pL8nR5tY3bC6dF0gJ2s';
    const values = [
      '0123456789abcdef0123456789abcdefXYZ:tail', // a lone secret with ':' read as id:secret (the reported leak)
      `p@ssQ7:${s1}`, // a lone secret with ':' whose "id" is no valid id
      'Kx9Vq2Tz:Wm4Rj7', // short secret after an id
      `Kx9Vq2Tz:${s1},Kx9Vq2Tz:${s2}`, // duplicate id
      `Kx9Vq2Tz:${s1},${s2}`, // second entry without id
      `Kx9Vq2Tz:${s1},,Jw5Hn8:${s2}`, // empty entry
      'Wm4Rj7Tz', // a lone secret that is too short
    ];
    for (const value of values) {
      const message = configError({ AUTH_HMAC_SECRETS: value }).message;
      const leaked = [...Array(value.length - 4).keys()].map((i) => value.slice(i, i + 5)).filter((part) => message.includes(part));
      expect({ value, message, leaked }).toEqual({ value, message, leaked: [] });
      expect(message).toMatch(/entry \d/);
    }
  });

  it('reads a lone entry with ":" as id:secret, tells how to configure a secret containing ":", and accepts it with an id', () => {
    const secretWithColon = '0123456789abcdef0123456789abcdefXYZ:tail';

    const err = configError({ AUTH_HMAC_SECRETS: secretWithColon });
    const cfg = hmacConfigFromEnv({ AUTH_HMAC_SECRETS: `default:${secretWithColon}` });

    expect(err.message).toMatch(/a lone secret containing ":" needs an id: default:<secret>/);
    expect(cfg?.keys.map((k) => [k.id, k.secret.toString()])).toEqual([['default', secretWithColon]]);
  });
});
