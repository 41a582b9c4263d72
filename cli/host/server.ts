/**
 * The local host behind `triage serve`: an HTTP server on 127.0.0.1:7071 that
 * routes to the handlers the Function app registered (the same code, not a copy),
 * built as @azure/functions HttpRequest/InvocationContext. SIGTERM drains in-flight
 * requests before exit. Loopback only: no function keys are checked, as with `func start`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import type { Logger } from '../../shared/log';
import { type RegisteredFunction, registered, triggerOf } from './functionsCore';

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
  const methods = ((t.methods as string[] | undefined) ?? ['GET', 'POST']).map((m) => m.toUpperCase());
  return { fn, methods, pattern: new RegExp(`^/api/${source}/?$`), params };
}

async function readAll(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Keep reading (and discarding) so the client sees the 413 instead of a reset.
    if (size > limit) continue;
    chunks.push(chunk as Buffer);
  }
  return size > limit ? 'too-large' : Buffer.concat(chunks);
}

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
  res.writeHead(status, h);
  res.end(payload);
}

/** A running local host. */
export interface LocalHost {
  readonly server: Server;
  readonly url: string;
  /** Stops accepting, waits for in-flight requests, then resolves. */
  drain(): Promise<void>;
}

/** Starts the host on `host:port` (port 0 = random) over the functions registered so far. */
export async function startLocalHost(options: { host?: string; port?: number; log: Logger; bodyLimit?: number }): Promise<LocalHost> {
  const routes = registered.map(compileRoute).filter((r): r is Route => r !== undefined);
  const inflight = new Set<Promise<void>>();
  const transportLimit = (options.bodyLimit ?? 1_048_576) * 4;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const method = (req.method ?? 'GET').toUpperCase();
    const matches = routes.map((r) => ({ r, m: r.pattern.exec(url.pathname) })).filter((x) => x.m !== null);
    const hit = matches.find((x) => x.r.methods.includes(method));
    if (!hit?.m) {
      await writeResponse(res, {
        status: matches.length > 0 ? 405 : 404,
        jsonBody: { error: { name: 'NotFound', message: `${method} ${url.pathname}` } },
      });
      return;
    }
    const params: Record<string, string> = {};
    hit.r.params.forEach((p, i) => {
      params[p] = decodeURIComponent(hit.m?.[i + 1] ?? '');
    });
    // The transport limit is generous: the handler applies the real body limit and answers 413 itself.
    const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readAll(req, transportLimit);
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

  const server = createServer((req, res) => {
    const p = handle(req, res).catch(async (err: unknown) => {
      options.log.error('host.request_failed', { err });
      if (!res.headersSent)
        await writeResponse(res, { status: 500, jsonBody: { error: { name: 'InternalError', message: 'internal error' } } });
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7071, options.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 7071);
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    server,
    url,
    drain: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.allSettled([...inflight]);
      server.closeAllConnections();
      await closed;
    },
  };
}
