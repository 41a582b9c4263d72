/**
 * The Event Hub handler (`alertStream`, as registered) with batches of 100 events, on
 * SQLite and on the Cosmos stand-in behind a counting proxy: events/s, store requests per
 * alert by class, and request body bytes per alert (Cosmos bills a write by the size of what
 * it writes, so bytes written is the figure that tracks write RU). Each event is one export
 * envelope holding one SecurityAlert row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { registered } from '../cli/host/functionsCore';
import { installFunctionsCore } from '../cli/host/install';
import { silentLogger } from '../shared/log';
import { createRuntime, setRuntime } from '../shared/runtime';
import { openCosmosStore } from '../shared/store/cosmos';
import type { Store } from '../shared/store/port';
import { openSqliteStore } from '../shared/store/sqlite';
import { startCosmosServer } from '../tests/helpers/cosmosServer';
import { startCountingProxy } from '../tests/helpers/countingProxy';
import { REPO_ROOT, synthAlerts } from './synth';

const ROOT = REPO_ROOT;

async function runStream(store: Store, events: readonly unknown[], outboxFile: string, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const rt = await createRuntime(
    { POLICY_DIR: join(ROOT, 'policies'), INDICATOR_FILES: join(ROOT, 'indicators', 'soc-global.csv'), OUTBOX_FILE: outboxFile, ...env },
    { log: silentLogger, store },
  );
  setRuntime(rt);
  installFunctionsCore();
  require('../functions/index');
  const fn = registered.find((f) => f.name === 'alertStream');
  if (!fn) throw new Error('alertStream not registered');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i += 100) {
    await fn.handler(events.slice(i, i + 100), new InvocationContext({ functionName: 'alertStream', invocationId: `bench-${i}` }));
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  setRuntime(undefined);
  return events.length / s;
}

/** Runs the variants, reporting each titled metric table as soon as it is measured. */
export async function benchStream(n: number, report: (title: string, metrics: Record<string, string>) => void): Promise<void> {
  const events = synthAlerts(n, { seed: 11 }).map((r) => ({ records: [JSON.parse(r) as unknown] }));
  const dir = mkdtempSync(join(tmpdir(), 'triage-bench-stream-'));

  for (const deliver of [false, true]) {
    const store = openSqliteStore({ file: join(dir, `stream-${deliver}.db`) });
    const eps = await runStream(store, events, deliver ? join(dir, 'outbox.jsonl') : '');
    await store.close();
    report(
      `alertStream on SQLite, ${n} events in batches of 100${deliver ? ', with embedded outbox delivery' : ', outbox committed, not delivered'}`,
      {
        'events/s': eps.toFixed(0),
      },
    );
  }

  const server = await startCosmosServer();
  const proxy = await startCountingProxy(server.endpoint);
  try {
    for (const recheck of [false, true]) {
      const m = Math.min(n, 500);
      const store = await openCosmosStore({
        endpoint: proxy.endpoint,
        key: server.key,
        database: `bench-${recheck}`,
        createIfMissing: true,
      });
      proxy.reset();
      const eps = await runStream(store, events.slice(0, m), '', { CORRELATION_RECHECK: String(recheck) });
      const c = proxy.counts();
      const b = proxy.bytes();
      await store.close();
      const per = (k: number) => (k / m).toFixed(2);
      const perBytes = (k: number) => (k / m).toFixed(0);
      report(
        `alertStream on the Cosmos stand-in (@vercel/cosmosdb-server over loopback HTTP), ${m} events in batches of 100, outbox committed${recheck ? ', CORRELATION_RECHECK=true' : ''}`,
        {
          'events/s': eps.toFixed(0),
          'point requests per alert': per(c.point),
          'batch requests per alert': per(c.batch),
          'single-partition queries per alert': per(c.query),
          'query-plan requests per alert (SDK)': per(c['query-plan']),
          'cross-partition queries per alert': per(c['cross-partition-query']),
          // Writes are point requests with a body (create, upsert, replace, patch) and batches; reads (GET) carry none.
          'request bytes written per alert (point writes + batches)': perBytes(b.point + b.batch),
          'request body bytes per alert (every non-GET request, queries included)': perBytes(
            b.point + b.batch + b.query + b['query-plan'] + b['cross-partition-query'],
          ),
        },
      );
    }
  } finally {
    await proxy.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
