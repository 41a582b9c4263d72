/**
 * The replay properties every performance change has been checked against, committed as properties.
 *
 * The check used to be a script outside the repository: a fixed clock, thousands of synthetic alerts in
 * batches and one by one, redeliveries, then every outcome, stored case and outbox entry hashed, and the
 * hash compared before and after a change. A hash in a test would break on every intended change of a
 * verdict or a message; what must hold whatever the verdicts are is that they depend on the inputs and
 * the clock alone: not on the run, the storage medium, how the inputs were grouped into deliveries,
 * how often they were delivered, or which store adapter kept them. Those are the properties below.
 *
 * Everything is compared as JSON text, key order included (byte for byte, as the hash did): a store that
 * gave back the same values with its keys in another order would change what the HTTP API and the
 * write-back show, and `toEqual` would not see it. On a difference, the first differing line is shown.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthAlerts } from '../../bench/synth';
import { PolicyRegistry } from '../../shared/config/policy';
import { loadIndicatorFiles } from '../../shared/enrichment/indicators';
import { silentLogger } from '../../shared/log';
import type { BodyKind } from '../../shared/model/parse';
import { OutboxDispatcher } from '../../shared/notify/outbox';
import { type ItemOutcome, Pipeline } from '../../shared/pipeline/pipeline';
import { openCosmosStore } from '../../shared/store/cosmos';
import type { NotificationRecord, Store } from '../../shared/store/port';
import { openSqliteStore } from '../../shared/store/sqlite';
import { createBrain } from '../../shared/triage/brain';
import { ROOT, SAMPLES } from '../helpers/cli';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';

/** Where every script starts: after the synthetic alerts' detection times (they end at 12:00), as live triage would be. */
const T0 = Date.parse('2026-11-20T12:30:00.000Z');
/** Alerts per batch delivery (an Event Hub batch, an HTTP array). */
const BATCH = 100;

/**
 * The only clock of a run: the pipeline's, the store's and the dispatcher's. It moves only when the
 * script sets it, so two runs of one script see the same instants however long each step takes.
 */
class ScriptClock {
  at = T0;
  readonly date = (): Date => new Date(this.at);
  readonly ms = (): number => this.at;
}

/** One delivery of a script: a body as received, its kind, and the instant the clock shows while it runs. */
interface Delivery {
  readonly body: string;
  readonly kind: BodyKind;
  readonly at: number;
}

/** A pipeline over `store` as the bench builds it: the repository's policies and indicator list, on the script's clock. */
function pipelineOn(store: Store, clock: ScriptClock, dispatcher?: OutboxDispatcher): Pipeline {
  return new Pipeline({
    store,
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain({ indicators: loadIndicatorFiles([join(ROOT, 'indicators', 'soc-global.csv')]) }),
    log: silentLogger,
    clock: clock.date,
    ...(dispatcher ? { dispatcher } : {}),
  });
}

/** A SQLite store whose correlation index horizon follows the script's clock, not the day the test runs. */
function sqliteOn(file: string, clock: ScriptClock): Store {
  return openSqliteStore({ file, now: clock.ms });
}

const sample = (name: string): string => readFileSync(join(SAMPLES, name), 'utf8');

/**
 * The team's samples, one delivery each, a second apart from `at`: an incident trigger body, two
 * SecurityAlert rows, an Event Hub batch carrying those two rows again (the same alerts: duplicates
 * already on first delivery), a generic alert and, with `bad`, the inputs that must be refused
 * (parked, so the parked list is part of the state compared).
 */
function sampleDeliveries(at: number, options: { bad: boolean }): Delivery[] {
  const good: Omit<Delivery, 'at'>[] = [
    { body: sample('incident-create-bruteforce.json'), kind: 'incident' },
    { body: sample('securityalert-records.json'), kind: 'alerts' },
    { body: sample('eventhub-batch.json'), kind: 'eventhub-batch' },
    { body: sample('generic-alert.json'), kind: 'alerts' },
  ];
  const bad: Omit<Delivery, 'at'>[] = [
    { body: sample('bad/truncated.json'), kind: 'incident' },
    { body: sample('bad/wrong-shapes.json'), kind: 'alerts' },
    { body: sample('bad/bad-entities.json'), kind: 'alerts' },
    { body: sample('bad/oversized.json'), kind: 'incident' },
  ];
  return [...good, ...(options.bad ? bad : [])].map((d, i) => ({ ...d, at: at + i * 1000 }));
}

/**
 * The replay script, as the outside check ran it at a smaller size: the samples, then `batched`
 * synthetic alerts in batches of 100 a second apart, then `single` more one by one 10 ms apart.
 * The synthetic alerts share a few hundred hosts over six days, so many correlate with earlier ones.
 */
function replayScript(batched: number, single: number, options: { bad: boolean }): Delivery[] {
  const rows = synthAlerts(batched + single, { seed: 7 });
  const script = sampleDeliveries(T0, options);
  let at = T0 + 60_000;
  for (let i = 0; i < batched; i += BATCH) {
    script.push({ body: `[${rows.slice(i, i + BATCH).join(',')}]`, kind: 'alerts', at });
    at += 1000;
  }
  for (const row of rows.slice(batched)) {
    script.push({ body: row, kind: 'alerts', at });
    at += 10;
  }
  return script;
}

/** Runs a script through `pipeline`, setting the clock before each delivery; every item's outcome, in order. */
async function play(pipeline: Pipeline, clock: ScriptClock, script: readonly Delivery[]): Promise<ItemOutcome[]> {
  const items: ItemOutcome[] = [];
  for (const d of script) {
    clock.at = d.at;
    items.push(...(await pipeline.ingestText(d.body, { kind: d.kind, source: 'determinism' })).items);
  }
  return items;
}

/** One line per outcome, whole (path, status, case, result, error, parked id). */
const outcomeLines = (items: readonly ItemOutcome[]): string[] => items.map((i) => JSON.stringify(i));

/** One line per outcome's TriageResult (`null` for an item without one). */
const resultLines = (items: readonly ItemOutcome[]): string[] => items.map((i) => JSON.stringify(i.result ?? null));

/**
 * What a store holds after a run, read back through the port as a user of it would: every case an
 * outcome named (latest revision, in case order), then the whole outbox, then every parked item.
 */
async function storedState(store: Store, items: readonly ItemOutcome[]): Promise<{ cases: string[]; outbox: string[]; parked: string[] }> {
  const named = new Map<string, { tenantId: string; caseId: string }>();
  for (const { tenantId, caseId } of items) if (tenantId && caseId) named.set(`${tenantId}|${caseId}`, { tenantId, caseId });
  const cases: string[] = [];
  for (const key of [...named.keys()].sort()) {
    const ref = named.get(key) as { tenantId: string; caseId: string };
    cases.push(JSON.stringify((await store.getCase(ref.tenantId, ref.caseId)) ?? null));
  }
  const outbox = (await store.listNotifications({})).map((n) => JSON.stringify(n));
  const parked = (await store.listParked({ includeReplayed: true })).map((p) => JSON.stringify(p));
  return { cases, outbox, parked };
}

/**
 * Where two listings first differ (or where one ends), undefined when they are equal. Asserting on it
 * shows the line, the column and the text around it in both, instead of a diff of thousands of long lines.
 */
function firstDifference(
  a: readonly string[],
  b: readonly string[],
): { line: number; column: number; left: string | undefined; right: string | undefined } | undefined {
  for (let line = 0; line < Math.max(a.length, b.length); line++) {
    const left = a[line];
    const right = b[line];
    if (left === right) continue;
    let column = 0;
    if (left !== undefined && right !== undefined) while (left[column] === right[column]) column++;
    const around = (text: string | undefined) => text?.slice(Math.max(0, column - 80), column + 80);
    return { line, column, left: around(left), right: around(right) };
  }
  return undefined;
}

describe('replaying the same inputs', () => {
  it('gives the same outcomes and the same stored cases, outbox and parked items in a fresh file store and a fresh in-memory store', async () => {
    // Arrange: ≈ 1,500 alerts plus the samples (bad ones included), one script, two fresh stores on their own clocks
    const script = replayScript(1300, 200, { bad: true });
    const dir = mkdtempSync(join(tmpdir(), 'triage-determinism-'));
    const fileClock = new ScriptClock();
    const memoryClock = new ScriptClock();
    const file = sqliteOn(join(dir, 'triage.db'), fileClock);
    const memory = sqliteOn(':memory:', memoryClock);
    try {
      // Act
      const fromFile = await play(pipelineOn(file, fileClock), fileClock, script);
      const fromMemory = await play(pipelineOn(memory, memoryClock), memoryClock, script);
      const fileState = await storedState(file, fromFile);
      const memoryState = await storedState(memory, fromMemory);

      // Assert: the script exercised what it is meant to (else equal listings would prove little)…
      const statuses = fromFile.map((i) => i.status);
      expect(statuses.filter((s) => s === 'triaged')).toHaveLength(1500 + 4);
      expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(2);
      expect(statuses.filter((s) => s === 'rejected').length).toBeGreaterThan(0);
      expect(fromFile.filter((i) => (i.result?.killChain.relatedCaseIds.length ?? 0) > 0).length).toBeGreaterThan(100);
      expect(fileState.outbox.length).toBeGreaterThan(1500);
      expect(fileState.parked.length).toBeGreaterThan(0);
      // …and both runs agree on every line of it
      expect(firstDifference(outcomeLines(fromFile), outcomeLines(fromMemory))).toBeUndefined();
      expect(firstDifference(fileState.cases, memoryState.cases)).toBeUndefined();
      expect(firstDifference(fileState.outbox, memoryState.outbox)).toBeUndefined();
      expect(firstDifference(fileState.parked, memoryState.parked)).toBeUndefined();
    } finally {
      await file.close();
      await memory.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives the same verdicts, stored cases and outbox whether alerts arrive in batches of 100 or one by one', async () => {
    // Arrange: 1,000 synthetic alerts and the sample rows, once grouped, once alone. Each alert sees the
    // same instant in both runs: the instant of its batch (the clock is read once per delivery for the
    // received time and once per case for the triage time; a clock moving per delivery or per read would
    // give a lone alert other times than its batch and make the runs differ for that reason alone).
    // Correlation depends on arrival order, and both runs triage the alerts in the same order, each seeing
    // every alert before it (a batch commits once, but its cases see each other as they are written), so
    // nothing may differ, not even the outbox.
    const rows = synthAlerts(1000, { seed: 11 });
    const records = JSON.parse(sample('securityalert-records.json')) as unknown[];
    const events = JSON.parse(sample('eventhub-batch.json')) as unknown[];
    const batched: Delivery[] = [
      { body: JSON.stringify(records), kind: 'alerts', at: T0 },
      { body: JSON.stringify(events), kind: 'eventhub-batch', at: T0 + 1000 },
    ];
    const single: Delivery[] = [
      ...records.map((r) => ({ body: JSON.stringify(r), kind: 'alerts' as const, at: T0 })),
      ...events.map((e) => ({ body: JSON.stringify([e]), kind: 'eventhub-batch' as const, at: T0 + 1000 })),
    ];
    for (let i = 0; i < rows.length; i += BATCH) {
      const at = T0 + 60_000 + (i / BATCH) * 1000;
      batched.push({ body: `[${rows.slice(i, i + BATCH).join(',')}]`, kind: 'alerts', at });
      for (const row of rows.slice(i, i + BATCH)) single.push({ body: row, kind: 'alerts', at });
    }
    const batchClock = new ScriptClock();
    const singleClock = new ScriptClock();
    const inBatches = sqliteOn(':memory:', batchClock);
    const oneByOne = sqliteOn(':memory:', singleClock);
    try {
      // Act
      const fromBatches = await play(pipelineOn(inBatches, batchClock), batchClock, batched);
      const fromSingles = await play(pipelineOn(oneByOne, singleClock), singleClock, single);
      const batchState = await storedState(inBatches, fromBatches);
      const singleState = await storedState(oneByOne, fromSingles);

      // Assert: one outcome per alert either way; paths differ ($[i] in a batch, $ alone), so results are compared
      expect(fromBatches).toHaveLength(1000 + 4);
      expect(fromSingles).toHaveLength(1000 + 4);
      expect(batchState.cases).toHaveLength(1000 + 2);
      expect(fromBatches.map((i) => i.status)).toEqual(fromSingles.map((i) => i.status));
      expect(firstDifference(resultLines(fromBatches), resultLines(fromSingles))).toBeUndefined();
      expect(firstDifference(batchState.cases, singleState.cases)).toBeUndefined();
      expect(firstDifference(batchState.outbox, singleState.outbox)).toBeUndefined();
    } finally {
      await inBatches.close();
      await oneByOne.close();
    }
  });

  it('changes nothing stored and sends nothing again when every input is delivered a second time, each case answered as a duplicate', async () => {
    // Arrange: the replay script run once, with a dispatcher, so the outbox is delivered and settled as in production
    const script = replayScript(1300, 200, { bad: true });
    const clock = new ScriptClock();
    const store = sqliteOn(':memory:', clock);
    const sent: string[] = [];
    const dispatcher = new OutboxDispatcher(
      store,
      { send: async (n: NotificationRecord) => void sent.push(n.key) },
      silentLogger,
      clock.date,
    );
    const pipeline = pipelineOn(store, clock, dispatcher);
    try {
      const first = await play(pipeline, clock, script);
      const before = await storedState(store, first);
      const sentFirst = sent.splice(0);
      // The redelivery comes later: the clock keeps advancing, an hour past the first run.
      const again = script.map((d) => ({ ...d, at: d.at + 3_600_000 }));

      // Act
      const second = await play(pipeline, clock, again);
      const after = await storedState(store, second);

      // Assert: the first run notified once per outbox entry (so "nothing again" is not vacuous)…
      expect(sentFirst.length).toBeGreaterThan(1500);
      expect(new Set(sentFirst).size).toBe(sentFirst.length);
      expect(before.outbox.every((line) => (JSON.parse(line) as NotificationRecord).status === 'sent')).toBe(true);
      // …every case comes back a duplicate, answering what its first delivery answered; a refused input is
      // refused again into the parked item it made the first time (it has no case to be a duplicate of)
      expect(second).toHaveLength(first.length);
      for (const [i, redelivered] of second.entries()) {
        const original = first[i] as ItemOutcome;
        if (original.caseId) {
          expect({ path: redelivered.path, status: redelivered.status }).toEqual({ path: original.path, status: 'duplicate' });
        } else {
          expect({ path: redelivered.path, status: redelivered.status, parkedId: redelivered.parkedId }).toEqual({
            path: original.path,
            status: original.status,
            parkedId: original.parkedId,
          });
        }
      }
      expect(firstDifference(resultLines(first), resultLines(second))).toBeUndefined();
      // …nothing is sent, and the stored state is byte for byte what it was
      expect({ sentAgain: sent.length, first: sent[0] }).toEqual({ sentAgain: 0, first: undefined });
      expect(firstDifference(before.cases, after.cases)).toBeUndefined();
      expect(firstDifference(before.outbox, after.outbox)).toBeUndefined();
      expect(firstDifference(before.parked, after.parked)).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});

describe('the Cosmos store', () => {
  let server: CosmosTestServer;

  beforeAll(async () => {
    server = await startCosmosServer();
  });

  afterAll(async () => {
    await server.close();
  });

  it('gives the same outcomes as SQLite for the same inputs on the same clock', async () => {
    // Arrange: the samples and 200 synthetic alerts (the stand-in scans its whole container per query,
    // so it slows as it fills); two fresh stores
    const script = replayScript(100, 100, { bad: false });
    const sqliteClock = new ScriptClock();
    const cosmosClock = new ScriptClock();
    const sqlite = sqliteOn(':memory:', sqliteClock);
    const cosmos = await openCosmosStore({
      endpoint: server.endpoint,
      key: server.key,
      database: 'determinism',
      createIfMissing: true,
      now: cosmosClock.ms,
    });
    try {
      // Act
      const fromSqlite = await play(pipelineOn(sqlite, sqliteClock), sqliteClock, script);
      const fromCosmos = await play(pipelineOn(cosmos, cosmosClock), cosmosClock, script);

      // Assert: every outcome line is the same, whole. Nothing needs stripping: the one field the adapters
      // legitimately disagree on, the etag, belongs to the stored record and never reaches an outcome. The
      // stored bytes are not compared: each adapter keeps its own document shape.
      expect(fromSqlite.filter((i) => i.status === 'triaged')).toHaveLength(200 + 4);
      expect(fromSqlite.filter((i) => (i.result?.killChain.relatedCaseIds.length ?? 0) > 0).length).toBeGreaterThan(0);
      expect(firstDifference(outcomeLines(fromSqlite), outcomeLines(fromCosmos))).toBeUndefined();
    } finally {
      await sqlite.close();
      await cosmos.close();
    }
  });
});
