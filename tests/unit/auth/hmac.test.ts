import {
  type HmacAuthConfig,
  hmacConfigFromEnv,
  hmacHeaders,
  InMemoryReplayGuard,
  type ReplayGuard,
  signHmac,
  verifyHmac,
} from '../../../shared/auth/hmac';
import { AuthenticationError, ConfigError } from '../../../shared/errors';

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
    await expect(verifyHmac(request(headers), cfg(), guard, NOW)).resolves.toEqual({ keyId: 'new' });
  });

  it('signs timestamp + "." + body with HMAC-SHA256 as documented', () => {
    // Fixed vector so senders in other languages can check their implementation.
    // HMAC-SHA256(key "kkkk…" (32 × k), message '1700000000.{"a":1}'), computed independently.
    expect(signHmac('k'.repeat(32), 1700000000, '{"a":1}')).toBe('sha256=6935b796c0fec66e5dee52c86c7fd1218a424c32f1adb239ff2893c31e54f033');
  });

  it('accepts a Buffer body identical to the signed string', async () => {
    const headers = hmacHeaders({ id: 'new', secret: SECRET }, BODY, NOW);
    await expect(verifyHmac(request(headers, Buffer.from(BODY)), cfg(), guard, NOW)).resolves.toEqual({ keyId: 'new' });
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
    await expect(verifyHmac(at(TS - 300), cfg(), guard, NOW)).resolves.toEqual({ keyId: 'new' });
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
    await expect(verifyHmac(request(old), cfg(), guard, NOW)).resolves.toEqual({ keyId: 'old' });
    const oldNoId = hmacHeaders({ secret: OLD_SECRET }, `${BODY} `, NOW);
    await expect(verifyHmac(request(oldNoId, `${BODY} `), cfg(), guard, NOW)).resolves.toEqual({ keyId: 'old' });
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

  it('does not remember signatures that failed verification', async () => {
    const headers = hmacHeaders({ secret: 'z'.repeat(40) }, BODY, NOW);
    await refusal(verifyHmac(request(headers), cfg(), guard, NOW));
    expect((guard as InMemoryReplayGuard).size).toBe(0);
  });
});

describe('InMemoryReplayGuard', () => {
  it('forgets a signature once its expiry has passed', async () => {
    let now = 1000;
    const guard = new InMemoryReplayGuard(10, () => now);
    expect(await guard.checkAndRemember('s1', 2000)).toBe(true);
    expect(await guard.checkAndRemember('s1', 2000)).toBe(false);
    now = 2001;
    expect(await guard.checkAndRemember('s1', 3000)).toBe(true);
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

  it('refuses short secrets, duplicate ids and malformed entries without revealing the secret', () => {
    const short = configError({ AUTH_HMAC_SECRETS: 'k1:tooshort' });
    expect(short.setting).toBe('AUTH_HMAC_SECRETS');
    expect(short.message).not.toContain('tooshort');
    expect(configError({ AUTH_HMAC_SECRETS: `a:${SECRET},a:${OLD_SECRET}` }).message).toMatch(/duplicate key id "a"/);
    expect(configError({ AUTH_HMAC_SECRETS: `a:${SECRET},${OLD_SECRET}` }).message).toMatch(/not of the form id:secret/);
    expect(configError({ AUTH_HMAC_SECRETS: `a:${SECRET},,b:${OLD_SECRET}` }).message).toMatch(/empty/);
    expect(configError({ AUTH_HMAC_SECRETS: `bad id:${SECRET}` }).message).toMatch(/key id must match/);
  });
});
