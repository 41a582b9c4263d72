/**
 * The local host behind `triage serve`: an HTTP server on 127.0.0.1:7071 that
 * routes to the handlers the Function app registered (the same code, not a copy),
 * built as @azure/functions HttpRequest/InvocationContext. SIGTERM drains in-flight
 * requests before exit, for at most the drain deadline. Loopback only: no function keys are
 * checked, as with `func start`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import { ConfigError, TriageError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { type RegisteredFunction, registered, triggerOf } from './functionsCore';

/** The default drain deadline: long enough for a pipeline request (a few hundred ms) to commit, short enough for an orchestrator's stop. */
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/**
 * The drain deadline from `SERVE_DRAIN_MS` (milliseconds, 0 to 600000), or the default when unset.
 * Read at the edge so a typo fails `triage serve` at start, not at the first SIGTERM.
 */
export function drainTimeoutFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.SERVE_DRAIN_MS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_DRAIN_TIMEOUT_MS;
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > 600_000)
    throw new ConfigError('SERVE_DRAIN_MS', `must be an integer from 0 to 600000 (milliseconds), got "${raw}"`);
  return n;
}

/**
 * The request target cannot be read as a path: not origin-form (`/path?query`) or absolute-form
 * (`http://host/path`), or a route parameter that is not valid percent-encoding. The client's
 * fault, so it is answered 400 and logged as a warning, never as a host failure.
 */
class BadRequestTargetError extends TriageError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`bad request target: ${reason}`, options);
  }
}

/**
 * The request's URL on the fixed base (the listening address), never on the `Host` header: a
 * Host such as `a:b:c` is the client's to send and must not decide routing (nor fail URL parsing).
 * Origin-form is appended to the base as text, not resolved against it, because resolving would
 * read `//api/health` as a scheme-relative URL whose host is `api`; it stays the path `//api/health`.
 */
function targetUrl(target: string, base: string): URL {
  let pathAndQuery: string;
  if (target.startsWith('/')) pathAndQuery = target;
  else if (/^https?:\/\//i.test(target) && URL.canParse(target)) {
    // Absolute-form (proxies send it): only its path and query route; its authority is ignored like Host.
    const absolute = new URL(target);
    pathAndQuery = `${absolute.pathname}${absolute.search}`;
  } else throw new BadRequestTargetError('the request target must be a path such as /api/health');
  if (!URL.canParse(`${base}${pathAndQuery}`)) throw new BadRequestTargetError('the request target is not a valid URL path');
  return new URL(`${base}${pathAndQuery}`);
}

/** A route parameter, percent-decoded; bad encoding (`%`, `%E0%A4%A`) is the client's error, named by parameter. */
function decodeParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch (err) {
    if (!(err instanceof URIError)) throw err;
    throw new BadRequestTargetError(`route parameter "${name}" is not valid percent-encoding`, { cause: err });
  }
}

interface Route {
  readonly fn: RegisteredFunction;
  readonly methods: readonly string[];
  readonly pattern: RegExp;
  readonly params: readonly string[];
}

function compileRoute(fn: RegisteredFunction): Route | undefined {
  const t = triggerOf(fn);
  if (t.type !== 'httpTrigger') return undefined;
  const template = String(t.route ?? fn.name);
  const params: string[] = [];
  const source = template
    .split('/')
    .map((seg) => {
      const m = /^\{([A-Za-z_]\w*)(?::[^}]*)?\??\}$/.exec(seg);
      if (m?.[1]) {
        params.push(m[1]);
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  // The methods the app declares, as the Functions host reads them: it does not derive HEAD from GET, so every
  // GET route lists HEAD itself (registration.test.ts), and a HEAD is answered by the GET handler without the body.
  const methods = ((t.methods as string[] | undefined) ?? ['GET', 'POST']).map((m) => m.toUpperCase());
  // Case-insensitive like the Functions host, whose routing (ASP.NET Core templates) ignores case in literal
  // segments; the capture groups still return the parameters (the case id) exactly as sent.
  return { fn, methods, pattern: new RegExp(`^/api/${source}/?$`, 'i'), params };
}

async function readAll(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      // Keep reading (and discarding) so the client sees the 413 instead of a reset.
      if (size > limit) continue;
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    // The connection went away mid-body (the client left, or the drain deadline cut it): nobody to answer.
    if (req.destroyed) return 'aborted';
    throw err;
  }
  return size > limit ? 'too-large' : Buffer.concat(chunks);
}

/**
 * Writes an answer. To HEAD, the status and headers of the same answer to GET, Content-Length included
 * (the length of the body it would have sent), and no body.
 */
async function writeResponse(res: ServerResponse, out: HttpResponseInit | undefined): Promise<void> {
  const status = out?.status ?? 200;
  const headers = new Headers(out?.headers as ConstructorParameters<typeof Headers>[0]);
  let payload: string | Buffer = '';
  if (out?.jsonBody !== undefined) {
    payload = JSON.stringify(out.jsonBody);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json; charset=utf-8');
  } else if (typeof out?.body === 'string') payload = out.body;
  const h: Record<string, string> = {};
  headers.forEach((v, k) => {
    h[k] = v;
  });
  // Set here, not left to Node: with the headers written first, Node would send a GET body chunked and no length to HEAD.
  h['content-length'] = String(Buffer.byteLength(payload));
  res.writeHead(status, h);
  if (res.req.method === 'HEAD') res.end();
  else res.end(payload);
}

/** A running local host. */
export interface LocalHost {
  readonly server: Server;
  readonly url: string;
  /**
   * Stops accepting, waits for in-flight requests for at most the drain deadline, then resolves.
   * At the deadline the connections still open are destroyed (and a warning says how many).
   */
  drain(): Promise<void>;
}

/** Options of {@link startLocalHost}. */
export interface LocalHostOptions {
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default 7071; 0 = random). */
  readonly port?: number;
  /** Where the host's own events go. */
  readonly log: Logger;
  /** The handlers' body limit in bytes (default 1 MB); the transport reads up to four times that. */
  readonly bodyLimit?: number;
  /** How long `drain()` waits for in-flight requests before cutting their connections (default 10 s). */
  readonly drainTimeoutMs?: number;
}

/** Starts the host on `host:port` (port 0 = random) over the functions registered so far. */
export async function startLocalHost(options: LocalHostOptions): Promise<LocalHost> {
  const routes = registered.map(compileRoute).filter((r): r is Route => r !== undefined);
  const inflight = new Set<Promise<void>>();
  const transportLimit = (options.bodyLimit ?? 1_048_576) * 4;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  const listenHost = options.host ?? '127.0.0.1';
  // Set once listening (the port may be random); requests only arrive after that.
  let base = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = targetUrl(req.url ?? '', base);
    const matches = routes.map((r) => ({ r, m: r.pattern.exec(url.pathname) })).filter((x) => x.m !== null);
    const hit = matches.find((x) => x.r.methods.includes(method));
    if (!hit?.m) {
      if (matches.length === 0) {
        await writeResponse(res, { status: 404, jsonBody: { error: { name: 'NotFound', message: `${method} ${url.pathname}` } } });
        return;
      }
      const allow = [...new Set(matches.flatMap((x) => x.r.methods))].join(', ');
      await writeResponse(res, {
        status: 405,
        headers: { allow },
        jsonBody: { error: { name: 'MethodNotAllowed', message: `${method} ${url.pathname}: allowed ${allow}` } },
      });
      return;
    }
    const params: Record<string, string> = {};
    hit.r.params.forEach((p, i) => {
      params[p] = decodeParam(p, hit.m?.[i + 1] ?? '');
    });
    // Function and method only: the path can carry ids and the query the function key (`code=`).
    options.log.debug('host.request_started', { function: hit.r.fn.name, method });
    // The transport limit is generous: the handler applies the real body limit and answers 413 itself.
    const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readAll(req, transportLimit);
    if (body === 'aborted') {
      options.log.warn('host.request_aborted', { function: hit.r.fn.name, method });
      return;
    }
    if (body === 'too-large') {
      await writeResponse(res, { status: 413, jsonBody: { error: { name: 'PayloadTooLargeError', message: 'body too large' } } });
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const request = new HttpRequest({
      method,
      url: url.toString(),
      headers,
      query: Object.fromEntries(url.searchParams),
      params,
      ...(body.length > 0 ? { body: { bytes: body } } : {}),
    });
    const context = new InvocationContext({ functionName: hit.r.fn.name, invocationId: randomUUID() });
    const out = (await hit.r.fn.handler(request, context)) as HttpResponseInit | undefined;
    await writeResponse(res, out);
  };

  // Node's defaults let a client hold a connection for 60 s of headers and 300 s of request. Headers are a few hundred
  // bytes, so 30 s is generous even over a bad link; 60 s covers the whole request, 1 MB body included, at ~20 KB/s,
  // far slower than any Sentinel playbook relay. The handler's own processing time does not count (it starts after
  // the body is read). Node checks these timeouts every `connectionsCheckingInterval`; 5 s keeps them near their value.
  const server = createServer({ headersTimeout: 30_000, requestTimeout: 60_000, connectionsCheckingInterval: 5_000 }, (req, res) => {
    const p = handle(req, res).catch(async (err: unknown) => {
      if (err instanceof BadRequestTargetError) {
        options.log.warn('host.bad_request_target', { method: req.method, reason: err.reason });
        if (!res.headersSent) await writeResponse(res, { status: 400, jsonBody: { error: { name: err.name, message: err.message } } });
        return;
      }
      options.log.error('host.request_failed', { err });
      if (!res.headersSent)
        await writeResponse(res, { status: 500, jsonBody: { error: { name: 'InternalError', message: 'internal error' } } });
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7071, listenHost, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 7071);
  const url = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
  base = url;
  return {
    server,
    url,
    drain: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), drainTimeoutMs);
      });
      // Requests already in the pipeline finish if they can within the deadline; a client that stops sending its
      // body cannot hold the exit beyond it.
      const outcome = await Promise.race([Promise.allSettled([...inflight]).then(() => 'settled' as const), deadline]);
      clearTimeout(timer);
      if (outcome === 'deadline') {
        const cut = await new Promise<number>((resolve) => server.getConnections((e, n) => resolve(e ? 0 : n)));
        options.log.warn('host.drain_deadline', { drainTimeoutMs, cut, inflight: inflight.size });
      }
      // Every connection still open, whatever state it is in (a body that never finishes included).
      server.closeAllConnections();
      await closed;
    },
  };
}
