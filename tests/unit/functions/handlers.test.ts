import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { alertStream } from '../../../functions/alertStream';
import { alertWebhook } from '../../../functions/alertWebhook';
import { getCase } from '../../../functions/getCase';
import { health } from '../../../functions/health';
import { incidentWebhook } from '../../../functions/incidentWebhook';
import { hmacHeaders, type ReplayGuard } from '../../../shared/auth/hmac';
import { ConfigError, StoreUnavailableError } from '../../../shared/errors';
import { createLogger } from '../../../shared/log';
import { getRuntime, type Runtime, setRuntime } from '../../../shared/runtime';
import { SAMPLES } from '../../helpers/cli';
import { testRuntime } from '../../helpers/runtime';

const sample = (f: string) => readFileSync(join(SAMPLES, f));
const ctx = () => new InvocationContext({ functionName: 'test', invocationId: 'inv-1' });
const post = (path: string, body: Buffer | string, headers: Record<string, string> = {}) =>
  new HttpRequest({
    method: 'POST',
    url: `http://localhost/api/${path}`,
    body: { bytes: Buffer.from(body) },
    headers: { 'content-type': 'application/json', ...headers },
  });

afterEach(() => setRuntime(undefined));

/** A test runtime whose own logger (the one the handlers' glue uses) records its JSON lines. */
async function runtimeRecordingLogs(env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const rt = await testRuntime(env);
  setRuntime({ ...rt, log: createLogger({ level: 'debug', sink: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) }) });
  return lines;
}

describe('a body over the size limit', () => {
  it('logs one http.body.too_large warning with the route, the limit and the bytes read, never the body', async () => {
    const logs = await runtimeRecordingLogs({ MAX_BODY_BYTES: '1024' });
    const body = JSON.stringify({ secret: 'x'.repeat(2000) });

    const res = await alertWebhook(post('alerts?code=function-key', body), ctx());

    expect(res.status).toBe(413);
    const warnings = logs.filter((l) => l.event === 'http.body.too_large');
    expect(warnings).toEqual([expect.objectContaining({ level: 'warn', route: '/api/alerts', limit: 1024, bytesRead: body.length })]);
    expect(JSON.stringify(logs)).not.toContain('xxxx');
    expect(JSON.stringify(logs)).not.toContain('function-key');
  });

  it('logs the declared size and no bytes read when Content-Length alone is over the limit', async () => {
    const logs = await runtimeRecordingLogs();

    const res = await incidentWebhook(post('incidents', '{}', { 'content-length': String(5 * 1024 * 1024) }), ctx());

    expect(res.status).toBe(413);
    expect(logs.filter((l) => l.event === 'http.body.too_large')).toEqual([
      expect.objectContaining({ level: 'warn', route: '/api/incidents', limit: 1_048_576, bytesRead: 0, declaredBytes: 5 * 1024 * 1024 }),
    ]);
  });
});

describe('incidentWebhook', () => {
  it('answers 200 with the TriageResult of the sample incident', async () => {
    await testRuntime();

    const res = await incidentWebhook(post('incidents', sample('incident-create-bruteforce.json')), ctx());

    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ caseId: '6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b', playbook: 'brute-force', severity: 'high' });
  });

  it('answers 400 naming the path when the body is not an incident', async () => {
    await testRuntime();

    const res = await incidentWebhook(post('incidents', '{"objectSchemaType":"Incident","object":{"properties":{"title":12}}}'), ctx());

    expect(res.status).toBe(400);
    expect(JSON.stringify(res.jsonBody)).toContain('$.object');
  });

  it('answers 413 before reading a body whose Content-Length is over the limit', async () => {
    await testRuntime();

    const res = await incidentWebhook(post('incidents', '{}', { 'content-length': String(5 * 1024 * 1024) }), ctx());

    expect(res.status).toBe(413);
  });

  describe('with Entra ID bearer validation configured', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' };
    const env = {
      AUTH_ENTRA_AUDIENCE: 'api://sentinel-triage',
      AUTH_ENTRA_ISSUERS: 'https://sts.windows.net/tenant-1/',
      AUTH_ENTRA_JWKS: JSON.stringify({ keys: [jwk] }),
    };
    const token = (claims: Record<string, unknown>) => {
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64({ iss: env.AUTH_ENTRA_ISSUERS, aud: env.AUTH_ENTRA_AUDIENCE, iat: now, nbf: now, exp: now + 600, sub: 'relay', appid: 'relay-app', tid: 'tenant-1', ...claims })}`;
      return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
    };

    it('accepts a valid token and refuses a missing or wrong-audience one with 401', async () => {
      await testRuntime(env);
      const body = sample('incident-create-bruteforce.json');

      const ok = await incidentWebhook(post('incidents', body, { authorization: `Bearer ${token({})}` }), ctx());
      const none = await incidentWebhook(post('incidents', body), ctx());
      const wrong = await incidentWebhook(post('incidents', body, { authorization: `Bearer ${token({ aud: 'api://other' })}` }), ctx());

      expect(ok.status).toBe(200);
      expect(none.status).toBe(401);
      expect(wrong.status).toBe(401);
    });
  });
});

describe('alertWebhook', () => {
  it('triages SecurityAlert rows and reports each item', async () => {
    await testRuntime();

    const res = await alertWebhook(post('alerts', sample('securityalert-records.json')), ctx());

    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ counts: { triaged: 2, rejected: 0 } });
  });

  it('answers 207 when some items are rejected and keeps the good ones', async () => {
    await testRuntime();
    const rows = JSON.parse(sample('securityalert-records.json').toString()) as unknown[];

    const res = await alertWebhook(post('alerts', JSON.stringify([rows[0], 42])), ctx());

    expect(res.status).toBe(207);
    expect(res.jsonBody).toMatchObject({ counts: { triaged: 1, rejected: 1 } });
  });

  it('with HMAC configured, accepts a signed body once and refuses a replay, a bad signature and a missing one', async () => {
    const secret = 'a-very-long-shared-secret-of-at-least-32-bytes!!';
    await testRuntime({ AUTH_HMAC_SECRETS: `k1:${secret}` });
    const body = sample('generic-alert.json');
    const headers = hmacHeaders({ id: 'k1', secret }, body);

    const ok = await alertWebhook(post('alerts', body, headers), ctx());
    const replay = await alertWebhook(post('alerts', body, headers), ctx());
    const tampered = await alertWebhook(
      post('alerts', Buffer.concat([body, Buffer.from(' ')]), hmacHeaders({ id: 'k1', secret }, body)),
      ctx(),
    );
    const unsigned = await alertWebhook(post('alerts', body), ctx());

    expect(ok.status).toBe(200);
    expect(replay.status).toBe(401);
    expect(tampered.status).toBe(401);
    expect(unsigned.status).toBe(401);
  });
});

describe('alertWebhook retried by a sender after a 5xx (HMAC configured)', () => {
  const secret = 'a-very-long-shared-secret-of-at-least-32-bytes!!';
  const body = sample('generic-alert.json');

  /** Makes the store's `method` fail transiently until the returned function is called (the pipeline's own retries fail too). */
  function outage(rt: Runtime, method: 'putCase' | 'park'): () => void {
    const real = rt.store[method];
    const fail = async (): Promise<never> => {
      throw new StoreUnavailableError(`simulated ${method} throttling`);
    };
    Object.assign(rt.store, { [method]: fail });
    return () => void Object.assign(rt.store, { [method]: real });
  }

  it('accepts the identical retry of a request answered 503, and still refuses a replay of the retry that succeeded', async () => {
    const rt = await testRuntime({ AUTH_HMAC_SECRETS: `k1:${secret}` });
    const headers = hmacHeaders({ id: 'k1', secret }, body);
    const restore = outage(rt, 'putCase');

    const failed = await alertWebhook(post('alerts', body, headers), ctx());
    restore();
    const retry = await alertWebhook(post('alerts', body, headers), ctx());
    const replay = await alertWebhook(post('alerts', body, headers), ctx());

    expect(failed.status).toBe(503);
    expect(retry.status).toBe(200);
    expect(retry.jsonBody).toMatchObject({ counts: { triaged: 1, failed: 0 } });
    expect(replay.status).toBe(401);
    expect(JSON.stringify(replay.jsonBody)).toContain('replay');
  });

  it('answers 503 with Retry-After when parking failed too (the store is down), and accepts the identical retry, so the alert is not lost', async () => {
    const rt = await testRuntime({ AUTH_HMAC_SECRETS: `k1:${secret}` });
    const headers = hmacHeaders({ id: 'k1', secret }, body);
    const restorePut = outage(rt, 'putCase');
    const restorePark = outage(rt, 'park');

    const failed = await alertWebhook(post('alerts', body, headers), ctx());
    restorePut();
    restorePark();
    const retry = await alertWebhook(post('alerts', body, headers), ctx());

    expect(failed.status).toBe(503);
    expect(failed.headers).toMatchObject({ 'retry-after': '30' });
    expect(retry.status).toBe(200);
    expect(await rt.store.listParked({})).toEqual([]);
  });

  it('keeps the 503 and logs hmac.replay.release_failed when the signature cannot be given back', async () => {
    const logs = await runtimeRecordingLogs({ AUTH_HMAC_SECRETS: `k1:${secret}` });
    const rt = await getRuntime();
    const guard: ReplayGuard = {
      checkAndRemember: async (signature, expiresAtMs, nowMs) => {
        const hold = await rt.auth.replayGuard.checkAndRemember(signature, expiresAtMs, nowMs);
        return hold && { release: () => Promise.reject(new StoreUnavailableError('store down')) };
      },
    };
    setRuntime({ ...rt, auth: { ...rt.auth, replayGuard: guard } });
    outage(rt, 'putCase');

    const res = await alertWebhook(post('alerts', body, hmacHeaders({ id: 'k1', secret }, body)), ctx());

    expect(res.status).toBe(503);
    expect(logs.filter((l) => l.event === 'hmac.replay.release_failed')).toEqual([
      expect.objectContaining({
        level: 'warn',
        keyId: 'k1',
        reason: 'status 503',
        err: expect.objectContaining({ message: 'store down' }),
      }),
    ]);
  });
});

describe('Entra settings without an audience', () => {
  it('refuse to start the runtime rather than leave /api/incidents without a bearer check', async () => {
    const started = testRuntime({ AUTH_ENTRA_AUDIENCE: ' , ', AUTH_ENTRA_ISSUERS: 'https://sts.windows.net/tenant-1/' });

    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toMatchObject({ setting: 'AUTH_ENTRA_AUDIENCE' });
  });
});

describe('alertStream', () => {
  it('processes a batch, parks the bad event and never throws for it', async () => {
    const rt = await testRuntime();
    const batch = JSON.parse(sample('eventhub-batch.json').toString()) as unknown[];

    await expect(
      alertStream([...batch, '{"records": "not-an-array"}', Buffer.from(JSON.stringify(batch[0]))], ctx()),
    ).resolves.toBeUndefined();

    const parked = await rt.store.listParked({});
    expect(parked).toHaveLength(1);
    expect(parked[0]?.issues[0]?.path).toContain('records');
    expect(await rt.store.getCase('8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b', '1b7e0c54-3a9d-4f21-8d6e-5c4b3a291807')).toBeDefined();
  });
});

describe('getCase and health', () => {
  it('serves a stored case by id, 404 for an unknown one, and health', async () => {
    await testRuntime();
    await incidentWebhook(post('incidents', sample('incident-create-bruteforce.json')), ctx());
    const get = (id: string) => new HttpRequest({ method: 'GET', url: `http://localhost/api/cases/${id}`, params: { id } });

    const found = await getCase(get('6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b'), ctx());
    const missing = await getCase(get('nope'), ctx());
    const h = await health(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }), ctx());

    expect(found.status).toBe(200);
    expect(found.jsonBody).toMatchObject({
      severity: 'high',
      notifications: expect.arrayContaining([expect.objectContaining({ status: 'sent' })]),
    });
    expect(missing.status).toBe(404);
    expect(h.status).toBe(200);
  });
});
