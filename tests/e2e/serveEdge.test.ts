/**
 * `triage serve` at its edges: request targets it cannot read, Host headers it must not trust, route case,
 * 405 answers, and the drain deadline on SIGTERM. Runs the built CLI (`npm run -s build` first).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ROOT, SAMPLES, scratch, startServe } from '../helpers/cli';

type Served = Awaited<ReturnType<typeof startServe>>;

const incident = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'));

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request with full control of the request target and the Host header (fetch allows neither). */
function raw(base: string, options: { method?: string; path: string; headers?: Record<string, string> }): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method: options.method ?? 'GET', path: options.path, headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The JSON log lines the server wrote so far. */
function logLines(server: Served): Record<string, unknown>[] {
  return server
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Resolves once the server has logged `count` lines of `event`. Log lines and HTTP answers travel on different
 * pipes, so a line is awaited as an event, never assumed present when the answer arrives.
 */
function waitForLog(server: Served, event: string, count = 1): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const found = () => logLines(server).filter((l) => l.event === event);
    const onData = () => {
      const lines = found();
      if (lines.length < count) return;
      cleanup();
      resolve(lines);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${count} × ${event} in the server log:\n${server.stderr()}`));
    }, 20_000);
    const cleanup = () => {
      clearTimeout(timer);
      server.child.stderr?.off('data', onData);
    };
    // startServe's own listener was added first, so server.stderr() already holds the chunk when this one runs.
    server.child.stderr?.on('data', onData);
    onData();
  });
}

function exitOf(server: Served): Promise<number | null> {
  if (server.child.exitCode !== null) return Promise.resolve(server.child.exitCode);
  return new Promise((resolve) => server.child.once('exit', (code) => resolve(code)));
}

function serveEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const dir = scratch();
  return { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: join(dir, 'outbox.jsonl'), ...extra };
}

describe('triage serve at its edges', () => {
  let server: Served;
  const others: Served[] = []; // servers a test starts for itself, killed here should the test fail midway

  beforeAll(async () => {
    server = await startServe(serveEnv());
  });
  afterAll(async () => {
    for (const o of others) if (o.child.exitCode === null) o.child.kill('SIGKILL');
    if (server.child.exitCode !== null) return;
    const exited = exitOf(server);
    server.child.kill('SIGTERM');
    await exited;
  });

  it('answers 400 for a path with bad percent-encoding', async () => {
    // Act
    const lone = await fetch(`${server.url}/api/cases/%`);
    const cut = await fetch(`${server.url}/api/cases/%E0%A4%A`);
    const loneBody = (await lone.json()) as { error: { name: string; message: string } };
    const cutBody = (await cut.json()) as { error: { name: string; message: string } };
    const warnings = await waitForLog(server, 'host.bad_request_target', 2);

    // Assert: the client's error, named, and a warning at most (no error-level line)
    expect(lone.status).toBe(400);
    expect(cut.status).toBe(400);
    for (const body of [loneBody, cutBody]) {
      expect(body.error.name).toBe('BadRequestTargetError');
      expect(body.error.message).toContain('route parameter "id" is not valid percent-encoding');
    }
    expect(warnings.every((l) => l.level === 'warn')).toBe(true);
    expect(logLines(server).filter((l) => l.level === 'error')).toEqual([]);
  });

  it('routes by path whatever the Host header says', async () => {
    // Act
    const odd = await raw(server.url, { path: '/api/health', headers: { host: 'a:b:c' } });
    const other = await raw(server.url, { path: '/api/health', headers: { host: 'evil.example:1' } });
    const absolute = await raw(server.url, { path: 'http://elsewhere.example/api/health', headers: { host: 'a:b:c' } });

    // Assert
    expect([odd.status, other.status, absolute.status]).toEqual([200, 200, 200]);
    expect((JSON.parse(odd.body) as { status: string }).status).toBe('ok');
  });

  it('reads //api/health as the path //api/health, not as a URL whose host is api', async () => {
    // Act
    const r = await raw(server.url, { path: '//api/health' });
    const body = JSON.parse(r.body) as { error: { name: string; message: string } };

    // Assert
    expect(r.status).toBe(404);
    expect(body.error).toEqual({ name: 'NotFound', message: 'GET //api/health' });
  });

  it('answers 400 for a request target that is not a path, and for a request line that cannot be parsed', async () => {
    // Act: `OPTIONS *` is valid HTTP but names no resource; `BLAH` is no request line at all
    const star = await raw(server.url, { method: 'OPTIONS', path: '*' });
    const { hostname, port } = new URL(server.url);
    const garbage = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.write('BLAH\r\n\r\n'));
      let got = '';
      socket.on('data', (d: Buffer) => {
        got += d.toString();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(got));
    });

    // Assert
    expect(star.status).toBe(400);
    expect((JSON.parse(star.body) as { error: { name: string } }).error.name).toBe('BadRequestTargetError');
    expect(garbage.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  });

  it('matches /API/health like /api/health', async () => {
    // Act
    const upper = await fetch(`${server.url}/API/health`);
    const mixed = await fetch(`${server.url}/Api/HEALTH`);
    const unknownCase = await fetch(`${server.url}/API/Cases/AbC-Def-42`);
    const unknownBody = (await unknownCase.json()) as { error: { message: string } };

    // Assert: literal segments ignore case; the case id reaches the handler exactly as sent
    expect(upper.status).toBe(200);
    expect(mixed.status).toBe(200);
    expect(unknownCase.status).toBe(404);
    expect(unknownBody.error.message).toBe('no case AbC-Def-42');
  });

  it('answers 405 MethodNotAllowed with an Allow header', async () => {
    // Act
    const del = await fetch(`${server.url}/api/health`, { method: 'DELETE' });
    const get = await fetch(`${server.url}/api/incidents`);
    const delBody = (await del.json()) as { error: { name: string } };
    const getBody = (await get.json()) as { error: { name: string } };

    // Assert
    expect(del.status).toBe(405);
    expect(delBody.error.name).toBe('MethodNotAllowed');
    expect(del.headers.get('allow')).toBe('GET, HEAD');
    expect(get.status).toBe(405);
    expect(getBody.error.name).toBe('MethodNotAllowed');
    expect(get.headers.get('allow')).toBe('POST');
  });

  it("answers HEAD on a GET route like GET, with the GET body's Content-Length and no body", async () => {
    // Act
    const get = await raw(server.url, { path: '/api/cases/no-such-case' });
    const head = await raw(server.url, { method: 'HEAD', path: '/api/cases/no-such-case' });
    const health = await raw(server.url, { method: 'HEAD', path: '/api/health' });

    // Assert
    expect(get.status).toBe(404);
    expect(head.status).toBe(get.status);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(get.body)));
    expect(get.headers['content-length']).toBe(head.headers['content-length']);
    expect(head.body).toBe('');
    expect(health.status).toBe(200);
    expect(Number(health.headers['content-length'])).toBeGreaterThan(0);
    expect(health.body).toBe('');
  });

  it('answers HEAD on a POST-only route 405, without a body, naming the allowed method', async () => {
    // Act
    const head = await raw(server.url, { method: 'HEAD', path: '/api/incidents' });

    // Assert
    expect(head.status).toBe(405);
    expect(head.headers.allow).toBe('POST');
    expect(head.body).toBe('');
  });

  it('refuses a SERVE_DRAIN_MS that is not a number of milliseconds, naming it', () => {
    // Act (killed after 20 s should it start serving instead of refusing; status is then null)
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'triage.js'), 'serve', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...serveEnv({ SERVE_DRAIN_MS: '10s' }) },
      encoding: 'utf8',
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });

    // Assert: a settings error (exit 3) before anything listens
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('SERVE_DRAIN_MS');
    expect(r.stderr).not.toContain('listening on');
  });

  it('cuts a client that never finishes its body when the drain deadline passes, and exits', async () => {
    // Arrange: a server with a short drain deadline, and a request whose body stops after 50 bytes
    const slow = await startServe(serveEnv({ SERVE_DRAIN_MS: '300', LOG_LEVEL: 'debug' }));
    others.push(slow);
    const exited = exitOf(slow);
    const { hostname, port } = new URL(slow.url);
    const socket = connect(Number(port), hostname);
    let answered = '';
    socket.on('data', (d: Buffer) => {
      answered += d.toString();
    });
    socket.on('error', () => undefined); // a reset is what a cut looks like
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(`POST /api/incidents HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: ${incident.length}\r\n\r\n`);
    socket.write(incident.subarray(0, 50));
    await waitForLog(slow, 'host.request_started'); // the server holds the request: it is in flight

    // Act
    slow.child.kill('SIGTERM');
    const code = await exited;
    await socketClosed;

    // Assert: the stalled request was cut (never answered), the cut was counted in a warning, and the process exited 0
    expect(code).toBe(0);
    expect(answered).toBe('');
    const deadline = logLines(slow).filter((l) => l.event === 'host.drain_deadline');
    expect(deadline).toEqual([expect.objectContaining({ level: 'warn', cut: 1, drainTimeoutMs: 300 })]);
    expect(slow.stderr()).toContain('serve.stopped');
  });
});
