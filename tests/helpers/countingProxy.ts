/**
 * A loopback HTTP proxy in front of the Cosmos stand-in: it counts every request the SDK
 * really sends, classified as the Cosmos service sees them, and can answer chosen requests
 * with a fault (429 with `x-ms-retry-after-ms`, 503…) before they reach the server.
 *
 * Classification (from the method, path and the SDK's headers):
 * - `query-plan`            `x-ms-cosmos-is-query-plan-request` (gateway only, no RU)
 * - `query`                 `x-ms-documentdb-isquery` with a partition key header (single partition)
 * - `cross-partition-query` `x-ms-documentdb-isquery` without a partition key
 * - `batch`                 `x-ms-cosmos-is-batch-request` (one TransactionalBatch)
 * - `point`                 read / create / upsert / replace / patch / delete of one document
 * - `metadata`              everything else (account, database, container reads and writes)
 *
 * It also counts each request's body bytes: write RU scale with the size of what is written.
 */
import { createServer, Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the service sees a request. */
export const REQUEST_CLASSES = ['point', 'batch', 'query', 'cross-partition-query', 'query-plan', 'metadata'] as const;
/** A request class. */
export type RequestClass = (typeof REQUEST_CLASSES)[number];

/** One request seen by the proxy. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly kind: RequestClass;
  readonly status: number;
  /** Whether the proxy answered it with an injected fault. */
  readonly injected: boolean;
  /** Request body bytes the client sent (what Cosmos bills writes by: document size). */
  readonly bytes: number;
}

/** A fault to answer instead of forwarding. */
export interface Fault {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Only requests of these classes get the fault (default: any data-plane request, i.e. not metadata). */
  readonly kinds?: readonly RequestClass[];
  /** Let this many matching requests through before answering with the fault (default 0). */
  readonly skip?: number;
}

/** A running proxy. */
export interface CountingProxy {
  /** Point the Cosmos client here. */
  readonly endpoint: string;
  /** Every request since the last reset, in order. */
  readonly seen: readonly SeenRequest[];
  /** Counts per class since the last reset. */
  counts(): Record<RequestClass, number>;
  /** Request body bytes per class since the last reset (GET requests carry none). */
  bytes(): Record<RequestClass, number>;
  /** Forgets what was seen (and pending faults). */
  reset(): void;
  /** Answers the next `times` matching requests with `fault`. */
  inject(fault: Fault, times?: number): void;
  close(): Promise<void>;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Classifies a request the way the Cosmos service bills and routes it. */
export function classify(req: IncomingMessage): RequestClass {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (header(req, 'x-ms-cosmos-is-query-plan-request')?.toLowerCase() === 'true') return 'query-plan';
  if (header(req, 'x-ms-documentdb-isquery')?.toLowerCase() === 'true') {
    const scoped =
      header(req, 'x-ms-documentdb-partitionkey') !== undefined || header(req, 'x-ms-documentdb-partitionkeyrangeid') !== undefined;
    return scoped ? 'query' : 'cross-partition-query';
  }
  if (header(req, 'x-ms-cosmos-is-batch-request')?.toLowerCase() === 'true') return 'batch';
  if (/^\/dbs\/[^/]+\/colls\/[^/]+\/docs(\/[^/]+)?\/?$/.test(path)) return 'point';
  return 'metadata';
}

/** Starts a proxy forwarding to `target` (an http:// stand-in endpoint). */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const agent = new HttpAgent({ keepAlive: true });
  const seen: SeenRequest[] = [];
  const faults: { fault: Fault; left: number; skip: number }[] = [];

  const takeFault = (kind: RequestClass): Fault | undefined => {
    const f = faults.find((x) => x.left > 0 && (x.fault.kinds ? x.fault.kinds.includes(kind) : kind !== 'metadata'));
    if (!f) return undefined;
    if (f.skip > 0) {
      f.skip--;
      return undefined;
    }
    f.left--;
    return f.fault;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const kind = classify(req);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const fault = takeFault(kind);
    // Counted before the body is forwarded, so the total is complete when the upstream answers.
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    if (fault) {
      req.on('end', () => {
        seen.push({ method, path, kind, status: fault.status, injected: true, bytes });
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(JSON.stringify({ code: String(fault.status), message: `injected ${fault.status}` }));
      });
      return;
    }
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method, path, headers: { ...req.headers, host: upstream.host }, agent },
      (up) => {
        seen.push({ method, path, kind, status: up.statusCode ?? 0, injected: false, bytes });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', (err) => {
      seen.push({ method, path, kind, status: 502, injected: false, bytes });
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'BadGateway', message: err.message }));
    });
    req.pipe(out);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    counts: () => {
      const c = Object.fromEntries(REQUEST_CLASSES.map((k) => [k, 0])) as Record<RequestClass, number>;
      for (const s of seen) c[s.kind]++;
      return c;
    },
    bytes: () => {
      const c = Object.fromEntries(REQUEST_CLASSES.map((k) => [k, 0])) as Record<RequestClass, number>;
      for (const s of seen) c[s.kind] += s.bytes;
      return c;
    },
    reset: () => {
      seen.length = 0;
      faults.length = 0;
    },
    inject: (fault, times = 1) => {
      faults.push({ fault, left: times, skip: fault.skip ?? 0 });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        agent.destroy();
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
