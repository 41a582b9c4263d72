/**
 * `npm run bench`: throughput and latency of the in-process pipeline on SQLite, against
 * the floor (JSON.parse + schema validation alone) measured in the same run on the same
 * inputs, and the same pipeline with storing free (bench/freeStore.ts) to tell the pipeline's own
 * work from the store's; correlation latency with 1,000,000 stored alerts; the Event Hub handler with
 * batches of 100 on SQLite and on the Cosmos stand-in, with requests per alert.
 * Figures go to stdout as a Markdown table (copied into BENCHMARKS.md).
 *
 * Sizes: BENCH_ALERTS (default 20000), BENCH_STORED (default 1000000), BENCH_STREAM (default 5000;
 * the Cosmos stand-in gets at most 500: its queries scan the whole container, so it slows as it fills).
 * BENCH_PARTS=pipeline,correlation,stream picks the parts (default all).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PolicyRegistry } from '../shared/config/policy';
import { relatedQuery } from '../shared/correlation/plan';
import { loadIndicatorFiles } from '../shared/enrichment/indicators';
import { silentLogger } from '../shared/log';
import { KILL_CHAIN_PHASES } from '../shared/model/domain';
import { parseJsonText } from '../shared/model/json';
import { parseBody } from '../shared/model/parse';
import { Pipeline } from '../shared/pipeline/pipeline';
import type { Store } from '../shared/store/port';
import { openSqliteStore } from '../shared/store/sqlite';
import { createBrain } from '../shared/triage/brain';
import { createFreeStore } from './freeStore';
import { benchStream } from './stream';
import { REPO_ROOT, rng, synthAlerts } from './synth';

const ROOT = REPO_ROOT;
const N = Number(process.env.BENCH_ALERTS ?? 20000);
const STORED = Number(process.env.BENCH_STORED ?? 1_000_000);
const STREAM = Number(process.env.BENCH_STREAM ?? 5000);
/** Deliveries in flight in the concurrent run (the Functions host's default HTTP concurrency is far higher). */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
const us = (ns: number) => (ns / 1000).toFixed(1);
const now = () => process.hrtime.bigint();

function makePipeline(store: Store): Pipeline {
  return new Pipeline({
    store,
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain({ indicators: loadIndicatorFiles([join(ROOT, 'indicators', 'soc-global.csv')]) }),
    log: silentLogger,
  });
}

const ALERTS = { kind: 'alerts', source: 'bench' } as const;

/** Sends `rows` through `pipeline`, `perDelivery` at a time (one row alone, more as an array body). Returns the ns taken. */
async function ingestAll(pipeline: Pipeline, rows: readonly string[], perDelivery: number): Promise<number> {
  const t0 = now();
  for (let i = 0; i < rows.length; i += perDelivery) {
    await pipeline.ingestText(perDelivery === 1 ? (rows[i] as string) : `[${rows.slice(i, i + perDelivery).join(',')}]`, ALERTS);
  }
  return Number(now() - t0);
}

/**
 * A new store (SQLite at `file`, or the bench's free store) and pipeline, warmed with 2,000 other
 * alerts sent `perDelivery` at a time (as the measured run will send them), so JIT and page cache
 * are warm before timing.
 */
async function freshPipeline(file: string | 'free', perDelivery: number): Promise<{ pipeline: Pipeline; close: () => Promise<void> }> {
  const store = file === 'free' ? createFreeStore() : openSqliteStore({ file });
  const pipeline = makePipeline(store);
  await ingestAll(pipeline, synthAlerts(2000, { seed: 99 }), perDelivery);
  return { pipeline, close: () => store.close() };
}

async function benchPipeline(rows: readonly string[]): Promise<Record<string, string>> {
  // Floor: what no pipeline can avoid — reading the JSON and validating it into a Case. This VM's
  // speed drifts by ±20 % over minutes, so the floor is measured before and after each pipeline
  // run (four passes) and the ratios use the median pass.
  const receivedAt = new Date().toISOString();
  for (const r of rows.slice(0, 2000)) parseBody(parseJsonText(r), 'alerts', receivedAt); // warm-up
  const floorPasses: number[] = [];
  const floorPass = (): void => {
    const f0 = now();
    for (const r of rows) parseBody(parseJsonText(r), 'alerts', receivedAt);
    floorPasses.push(Number(now() - f0));
  };
  floorPass();

  const dir = mkdtempSync(join(tmpdir(), 'triage-bench-'));
  const one = await freshPipeline(join(dir, 'bench.db'), 1);
  const lat: number[] = [];
  let notifications = 0;
  const t0 = now();
  for (const r of rows) {
    const s = now();
    const out = await one.pipeline.ingestText(r, ALERTS);
    lat.push(Number(now() - s));
    notifications += out.items[0]?.result?.notifications.length ?? 0;
  }
  const totalNs = Number(now() - t0);
  await one.close();
  floorPass();

  // Concurrent deliveries of one alert each, as the Functions host runs HTTP requests: writes
  // of the requests in flight share one group commit (SqliteStore.exec).
  const concurrent = await freshPipeline(join(dir, 'bench-concurrent.db'), 1);
  const latC: number[] = [];
  let next = 0;
  const c0 = now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < rows.length; i = next++) {
        const s = now();
        await concurrent.pipeline.ingestText(rows[i] as string, ALERTS);
        latC.push(Number(now() - s));
      }
    }),
  );
  const concurrentNs = Number(now() - c0);
  await concurrent.close();
  latC.sort((a, b) => a - b);
  floorPass();

  // The batch path (Event Hub batches, array bodies): 100 rows per delivery, one commit each.
  const batch = await freshPipeline(join(dir, 'bench-batch.db'), 100);
  const batchNs = await ingestAll(batch.pipeline, rows, 100);
  await batch.close();

  // The same batch path on an in-memory database: what the pipeline costs without disk I/O (the
  // commit's WAL writes), to tell the disk's share from the CPU's.
  const memory = await freshPipeline(':memory:', 100);
  const memoryNs = await ingestAll(memory.pipeline, rows, 100);
  await memory.close();

  // Storing free (bench/freeStore.ts: maps, no serialisation, no durability): the pipeline's own
  // work, which no store design can take away. Its rate bounds what any store can reach.
  const free = await freshPipeline('free', 100);
  const freeBatchNs = await ingestAll(free.pipeline, rows, 100);
  const freeOne = await freshPipeline('free', 1);
  const freeOneNs = await ingestAll(freeOne.pipeline, rows, 1);
  await Promise.all([free.close(), freeOne.close()]);
  floorPass();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const passes = [...floorPasses].sort((a, b) => a - b);
  const floorNs = ((passes[1] as number) + (passes[2] as number)) / 2; // median of the four passes
  const rate = (ns: number) => (rows.length / (ns / 1e9)).toFixed(0);
  return {
    alerts: String(rows.length),
    'pipeline alerts/s': (rows.length / (totalNs / 1e9)).toFixed(0),
    'p50 per case (µs)': us(pct(lat, 50)),
    'p99 per case (µs)': us(pct(lat, 99)),
    'floor alerts/s (parse+validate; median of 4 passes, slowest–fastest)': `${rate(floorNs)} (${rate(passes[3] as number)}–${rate(passes[0] as number)})`,
    'ratio pipeline/floor': (totalNs / floorNs).toFixed(2),
    'outbox entries committed': String(notifications),
    [`concurrent: ${CONCURRENCY} deliveries in flight, alerts/s`]: (rows.length / (concurrentNs / 1e9)).toFixed(0),
    'concurrent: p50 / p99 per delivery (µs)': `${us(pct(latC, 50))} / ${us(pct(latC, 99))}`,
    'concurrent: ratio pipeline/floor': (concurrentNs / floorNs).toFixed(2),
    'batch path alerts/s (100 per delivery, one commit each)': (rows.length / (batchNs / 1e9)).toFixed(0),
    'batch path ratio pipeline/floor': (batchNs / floorNs).toFixed(2),
    'batch path on an in-memory database (no disk I/O), alerts/s': (rows.length / (memoryNs / 1e9)).toFixed(0),
    'in-memory batch path ratio pipeline/floor': (memoryNs / floorNs).toFixed(2),
    'storing free (bench-only store): one by one / batches, alerts/s': `${rate(freeOneNs)} / ${rate(freeBatchNs)}`,
    'storing free: ratio pipeline/floor, one by one / batches': `${(freeOneNs / floorNs).toFixed(2)} / ${(freeBatchNs / floorNs).toFixed(2)}`,
  };
}

async function benchCorrelation(): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'triage-bench-corr-'));
  const file = join(dir, 'corr.db');
  openSqliteStore({ file }).close(); // creates the schema
  const tenantId = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
  // Bulk-load STORED alerts straight into the index's log, 4 keys per stored alert (the store's own
  // putCase would also write STORED case documents, which correlation never reads). The data ends
  // now, as live traffic does, so it lies inside the store's in-memory horizon (30 days).
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const ins = db.prepare('INSERT INTO sighting_log (tenant_id, case_id, detected_at, groups) VALUES (?, ?, ?, ?)');
  const rand = rng(1);
  const end = Date.now() - 3600_000;
  const span = 29 * 24 * 3600 * 1000;
  const hosts = 20000;
  const load0 = now();
  db.transaction(() => {
    for (let i = 0; i < STORED; i++) {
      const h = Math.floor(rand() * hosts);
      const at = new Date(end - Math.floor(rand() * span)).toISOString();
      const phase = KILL_CHAIN_PHASES[Math.floor(rand() * KILL_CHAIN_PHASES.length)];
      const keys = [
        `host:ws-${h}.corp.contoso.example`,
        `host:ws-${h}`,
        `account:user${h % 97}@contoso.example`,
        `ip:203.0.113.${(h % 250) + 1}`,
      ];
      ins.run(tenantId, `stored-${i}`, at, JSON.stringify([[[phase], 'generic', 'medium', keys]]));
    }
  })();
  const loadS = Number(now() - load0) / 1e9;
  db.close();

  // The first look-up reads the log into the in-memory index: its time and heap are part of the cost.
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const open0 = now();
  const store = openSqliteStore({ file });
  await store.warm(); // reads the index (otherwise done by the first look-up)
  const openS = Number(now() - open0) / 1e9;
  global.gc?.();
  const heapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  const brain = createBrain();
  const policies = PolicyRegistry.fromDirectory(join(ROOT, 'policies'));
  const policy = policies.resolve(tenantId);
  // Cases of the last 22 days: their ±7-day windows lie inside the horizon, as live traffic does.
  const rows = synthAlerts(3000, { seed: 5, hosts, spanMs: 22 * 24 * 3600 * 1000, end });
  const cases = rows.flatMap((r) => {
    const o = parseBody(JSON.parse(r), 'alerts', new Date().toISOString())[0];
    return o?.status === 'ok' ? [o.case] : [];
  });
  const lat: number[] = [];
  let related = 0;
  for (const [i, c] of cases.entries()) {
    const s = now();
    const cls = brain.classify(c, policy);
    const plan = brain.planCorrelation(c, cls, policy);
    const { sightings, saturated } = await store.findRelated(relatedQuery(c, plan));
    const verdict = brain.correlate(c, plan, sightings, policy, saturated);
    const ns = Number(now() - s);
    if (i >= 500) lat.push(ns); // the first 500 warm the page cache and statement caches
    related += verdict.relatedCaseIds.length;
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return {
    'stored alerts (index rows)': `${STORED} (${STORED * 4})`,
    'bulk load of the log (s)': loadS.toFixed(1),
    'first look-up: index read from the log (s)': openS.toFixed(1),
    'index heap (MiB)': `${heapMiB.toFixed(0)} (${((heapMiB * 2 ** 20) / STORED).toFixed(0)} B per stored alert)`,
    'cases measured': String(lat.length),
    'correlation p50 (µs)': us(pct(lat, 50)),
    'correlation p99 (µs)': us(pct(lat, 99)),
    'mean related cases': (related / cases.length).toFixed(1),
  };
}

function table(title: string, rows: Record<string, string>): string {
  const lines = [`### ${title}`, '', '| metric | value |', '|---|---|'];
  for (const [k, v] of Object.entries(rows)) lines.push(`| ${k} | ${v} |`);
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  process.stdout.write(`## npm run bench — ${new Date().toISOString()}\n\nnode ${process.version}, ${cpus().length} × ${cpu}\n\n`);
  const parts = new Set((process.env.BENCH_PARTS ?? 'pipeline,correlation,stream').split(',').map((p) => p.trim()));
  if (parts.has('pipeline')) {
    const rows = synthAlerts(N, { seed: 42 });
    process.stdout.write(table(`Pipeline on SQLite (${N} synthetic SecurityAlert rows, one per delivery)`, await benchPipeline(rows)));
  }
  if (parts.has('correlation')) process.stdout.write(table(`Correlation with ${STORED} stored alerts on SQLite`, await benchCorrelation()));
  if (parts.has('stream')) await benchStream(STREAM, (title, r) => process.stdout.write(table(title, r)));
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
