import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { SAMPLES, scratch, startServe } from '../helpers/cli';

const incident = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'));
const caseId = '6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b';

function outboxLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

describe('triage serve (npm start) on the embedded default', () => {
  const dir = scratch();
  const env = { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: join(dir, 'outbox.jsonl') };
  let server: Awaited<ReturnType<typeof startServe>>;

  beforeAll(async () => {
    server = await startServe(env);
  });
  afterAll(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });

  it('triages the sample incident, serves it back, and a repeat delivery adds no notification', async () => {
    // Act: first delivery
    const first = await fetch(`${server.url}/api/incidents`, {
      method: 'POST',
      body: incident,
      headers: { 'content-type': 'application/json' },
    });
    const result = (await first.json()) as { caseId: string; severity: string; playbook: string; revision: number };
    const sentAfterFirst = outboxLines(env.OUTBOX_FILE).length;

    // Assert: a TriageResult for the incident, with its first report in the outbox
    expect(first.status).toBe(200);
    expect(result).toMatchObject({ caseId, playbook: 'brute-force', severity: 'high', revision: 1 });
    expect(sentAfterFirst).toBeGreaterThan(0);

    // Act: read it back, then deliver the same body again
    const got = await fetch(`${server.url}/api/cases/${caseId}`);
    const again = await fetch(`${server.url}/api/incidents`, { method: 'POST', body: incident });
    const againBody = (await again.json()) as { caseId: string; revision: number; severity: string };

    // Assert: same result, flagged duplicate, no new outbox line
    expect(got.status).toBe(200);
    expect(((await got.json()) as { caseId: string }).caseId).toBe(caseId);
    expect(again.headers.get('x-triage-outcome')).toBe('duplicate');
    expect(againBody).toMatchObject({ caseId, revision: 1, severity: 'high' });
    expect(outboxLines(env.OUTBOX_FILE)).toHaveLength(sentAfterFirst);
  });

  it('refuses a body over 1 MB with 413 and a malformed one with 400 naming the path', async () => {
    const big = readFileSync(join(SAMPLES, 'bad', 'oversized.json'));
    const truncated = readFileSync(join(SAMPLES, 'bad', 'truncated.json'));

    const r1 = await fetch(`${server.url}/api/incidents`, { method: 'POST', body: big });
    const r2 = await fetch(`${server.url}/api/incidents`, { method: 'POST', body: truncated });
    const b2 = (await r2.json()) as { error: { name: string; issues: { path: string }[] } };

    expect(r1.status).toBe(413);
    expect(r2.status).toBe(400);
    expect(b2.error.name).toBe('MalformedJsonError');
    expect(b2.error.issues[0]?.path).toBe('$');
  });

  it('finishes a request that is in flight when SIGTERM arrives, then exits 0', async () => {
    // Arrange: a second server, and a request whose body is only half sent
    const dir2 = scratch();
    const other = await startServe({ SQLITE_FILE: join(dir2, 'triage.db'), OUTBOX_FILE: join(dir2, 'outbox.jsonl') });
    const url = new URL(`${other.url}/api/incidents`);
    const half = Math.floor(incident.length / 2);
    const exited = new Promise<number | null>((res) => other.child.once('exit', (code) => res(code)));
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-length': String(incident.length) } },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write(incident.subarray(0, half));
      // Act: SIGTERM while the request is in flight, then the rest of the body
      setTimeout(() => {
        other.child.kill('SIGTERM');
        setTimeout(() => req.end(incident.subarray(half)), 200);
      }, 200);
    });

    // Assert: the in-flight request is answered in full, and the process then exits cleanly
    const r = await response;
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { caseId: string }).caseId).toBe(caseId);
    expect(await exited).toBe(0);
  });

  it('answers health, 404 for an unknown case, and drains on SIGTERM', async () => {
    const health = await fetch(`${server.url}/api/health`);
    const unknown = await fetch(`${server.url}/api/cases/nope`);
    expect(health.status).toBe(200);
    expect(unknown.status).toBe(404);

    const exited = new Promise<number | null>((res) => server.child.once('exit', (code) => res(code)));
    server.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(server.stderr()).toContain('serve.stopped');
  });
});
