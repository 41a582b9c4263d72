/**
 * Child process for the two-process SQLite test (tests/e2e/sqliteTwoProcesses.test.ts): one process of
 * two on the SQLite file SQLITE_FILE. It triages its side (RACE_SIDE=a|b) of RACE_PAIRS pairs of related
 * alerts: pair i is alert `a…i` (brute force, the example chain's first alert) and alert `b…i` (C2
 * beaconing, its second), both on host `race-host-i`, so they are one kill-chain progression. Every
 * channel send is appended to SENT_FILE (one key a line, not deduplicated: the parent counts them).
 *
 * It prints `ready` once its pipeline is open, waits for GO_FILE to appear (the start barrier: it holds
 * the instant t0), then delivers its alerts one at a time, one per delivery as HTTP would, alert i no
 * earlier than t0 + i × RACE_TICK_MS: both processes deliver pair i at the same moment. Each look-up
 * answers RACE_LOOKUP_MS later (see `slowLookups`). Exits 0 after printing `{ side, triaged, recorrelated }`.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../shared/config/policy';
import { createLogger, silentLogger } from '../../shared/log';
import { OutboxDispatcher } from '../../shared/notify/outbox';
import { Pipeline } from '../../shared/pipeline/pipeline';
import type { Store } from '../../shared/store/port';
import { openSqliteStore } from '../../shared/store/sqlite';
import { createBrain } from '../../shared/triage/brain';
import { ROOT } from './cli';

/** The two sides of a pair. */
type Side = 'a' | 'b';

/** The example chain's alert for a side, as parsed. */
type BaseAlert = Record<string, unknown> & { Entities: string };

/** Alert `side` of pair `i`: the chain's alert for that side, with only its host entity, renamed `race-host-i`. */
function raceAlert(base: BaseAlert, side: Side, i: number): Record<string, unknown> {
  const host = `race-host-${i}`;
  // Only the host links the pair: the chain's IP entities would link every pair to every other.
  const entities = (JSON.parse(base.Entities) as { Type: string }[])
    .filter((e) => e.Type === 'host')
    .map((e) => ({ ...e, HostName: host }));
  // The test computes the same ids: `a0007-0000-4000-8000-000000000000` is side a of pair 7.
  const id = `${side}${String(i).padStart(4, '0')}-0000-4000-8000-000000000000`;
  return { ...base, SystemAlertId: id, _ItemId: id, Entities: JSON.stringify(entities), CompromisedEntity: host };
}

/**
 * The real store, with every look-up answered `ms` later (on a timer, so the process is idle meanwhile).
 * The look-up-to-commit window of a busy process (another delivery's turn, a slow disk): without it the
 * window is a fraction of a millisecond, and on a machine busy with other tests the two processes' windows
 * often do not overlap at all, so a run could race on no pair and prove nothing.
 */
function slowLookups(store: Store, ms: number): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'findRelated')
        return async (...args: Parameters<Store['findRelated']>) => {
          const answer = await target.findRelated(...args);
          await sleep(ms);
          return answer;
        };
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const side: Side = need('RACE_SIDE') === 'b' ? 'b' : 'a';
  const pairs = Number(need('RACE_PAIRS'));
  const tick = Number(need('RACE_TICK_MS'));
  const goFile = need('GO_FILE');
  const sentFile = need('SENT_FILE');
  const store = openSqliteStore({ file: need('SQLITE_FILE') });
  let recorrelated = 0;
  const pipeline = new Pipeline({
    store: slowLookups(store, Number(need('RACE_LOOKUP_MS'))),
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain(),
    log: createLogger({
      level: 'info',
      sink: (line) => {
        if ((JSON.parse(line) as { event: string }).event === 'case.recorrelated') recorrelated++;
      },
    }),
    // Records every send call, repeats included: "sent once" is the parent's to check, across both processes.
    dispatcher: new OutboxDispatcher(store, { send: async (n) => appendFileSync(sentFile, `${n.key}\n`) }, silentLogger),
    backoffMs: 1,
  });
  const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
    .trim()
    .split('\n');
  const base = JSON.parse(chain[side === 'a' ? 0 : 1] as string) as BaseAlert;
  const alerts = Array.from({ length: pairs }, (_, i) => JSON.stringify(raceAlert(base, side, i)));
  // Read the index before the barrier, as `triage serve` does before listening: the first delivery then
  // costs what the others cost, and the two processes stay in step.
  await store.warm();
  process.stdout.write('ready\n');

  while (!existsSync(goFile)) await sleep(2);
  const t0 = Number(readFileSync(goFile, 'utf8'));
  let triaged = 0;
  for (const [i, text] of alerts.entries()) {
    // An absolute schedule, not a pause after each delivery: a process that fell behind catches up instead of drifting.
    const wait = t0 + i * tick - Date.now();
    if (wait > 0) await sleep(wait);
    const out = await pipeline.ingestText(text, { kind: 'alerts', source: `race-${side}` });
    triaged += out.items.filter((it) => it.status === 'triaged' || it.status === 'revised').length;
  }
  await store.close();
  process.stdout.write(`${JSON.stringify({ side, triaged, recorrelated })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(3);
});
