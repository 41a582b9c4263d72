/**
 * Two real processes on one SQLite file (tests/helpers/raceWorker.ts), each triaging one alert of every
 * pair of related alerts at the same moment as the other process triages the other. The in-process
 * contract test (tests/contract/sqliteProcesses.test.ts) forces one interleaving with two connections;
 * this one lets two operating-system processes race freely, as two `triage serve` instances would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseRecord } from '../../shared/store/port';
import { openSqliteStore } from '../../shared/store/sqlite';
import { ROOT, scratch } from '../helpers/cli';

const WORKER = join(ROOT, 'tests', 'helpers', 'raceWorker.ts');
const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
/** Pairs per run: the processes race on most of them, so a run with no race at all is not to be expected. */
const PAIRS = 50;
/** Pair i is delivered by both processes at t0 + i × TICK_MS: far above one delivery's cost, so they stay in step. */
const TICK_MS = 20;
/** Each look-up answers this much later in the workers: the window in which the other process may commit (see slowLookups). */
const LOOKUP_MS = 2;

/** Case id of alert `side` of pair `i`, as the worker builds it. */
function caseId(side: 'a' | 'b', i: number): string {
  return `${side}${String(i).padStart(4, '0')}-0000-4000-8000-000000000000`;
}

/** A worker process, and what it printed. */
interface Worker {
  readonly child: ChildProcess;
  /** Settles when it printed `ready` (its pipeline is open). */
  readonly ready: Promise<void>;
  /** Settles with its last stdout line when it exits 0; rejects otherwise. */
  readonly done: Promise<string>;
}

/** Spawns raceWorker.ts as crash.test.ts spawns its worker (node with tsx's CommonJS hook), with `env` added. */
function startWorker(env: Record<string, string>): Worker {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', WORKER], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.startsWith('ready\n')) onReady();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(stdout.trim().split('\n').pop() ?? '');
      else reject(new Error(`worker ${env.RACE_SIDE} exited ${code ?? signal}: ${stderr}`));
    });
  });
  // A worker that dies before `ready` must fail the test, not leave it waiting for the barrier.
  return { child, ready: Promise.race([ready, done.then(() => undefined)]), done };
}

describe('two processes triaging related alerts on one SQLite file', () => {
  let dir: string;
  const workers: Worker[] = [];

  beforeEach(() => {
    dir = scratch('triage-two-processes-');
  });

  afterEach(() => {
    // Only on failure are they still running; a leftover would hold the file open.
    for (const w of workers.splice(0)) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it("never lets two processes miss each other's related alerts triaged at the same moment, and sends every notification once", async () => {
    // Arrange: the schema exists before either process opens the file, then both start and wait at the barrier
    const file = join(dir, 'race.db');
    await openSqliteStore({ file }).close();
    const goFile = join(dir, 'go');
    const sentFile = (side: string) => join(dir, `sent-${side}.txt`);
    for (const side of ['a', 'b']) {
      workers.push(
        startWorker({
          SQLITE_FILE: file,
          RACE_SIDE: side,
          RACE_PAIRS: String(PAIRS),
          RACE_TICK_MS: String(TICK_MS),
          RACE_LOOKUP_MS: String(LOOKUP_MS),
          GO_FILE: goFile,
          SENT_FILE: sentFile(side),
        }),
      );
    }
    await Promise.all(workers.map((w) => w.ready));

    // Act: t0 a little ahead, so both have seen the go file before pair 0 is due
    writeFileSync(goFile, String(Date.now() + 100));
    const reports = (await Promise.all(workers.map((w) => w.done))).map(
      (line) => JSON.parse(line) as { side: string; triaged: number; recorrelated: number },
    );

    // Assert: every case exists, and of every pair at least one verdict lists the other
    const store = openSqliteStore({ file });
    const pairs: { a: CaseRecord | undefined; b: CaseRecord | undefined }[] = [];
    for (let i = 0; i < PAIRS; i++)
      pairs.push({ a: await store.getCase(TENANT, caseId('a', i)), b: await store.getCase(TENANT, caseId('b', i)) });
    const outbox = await store.listNotifications({ tenantId: TENANT });
    await store.close();
    expect(reports.map((r) => r.triaged)).toEqual([PAIRS, PAIRS]);
    expect(pairs.filter((p) => !p.a || !p.b)).toEqual([]);
    const missed = pairs
      .map((p, i) => ({
        i,
        ab: p.a?.result.killChain.relatedCaseIds.includes(caseId('b', i)),
        ba: p.b?.result.killChain.relatedCaseIds.includes(caseId('a', i)),
      }))
      .filter((p) => !p.ab && !p.ba)
      .map((p) => p.i);
    expect(missed).toEqual([]);
    // …and the processes really raced (else the above proves nothing): some case missed its pair at its look-up
    // and was revised by its re-check, and every revision the file holds is such a re-check's
    const revisedPairs = pairs.filter((p) => (p.a?.revision ?? 0) > 1 || (p.b?.revision ?? 0) > 1).length;
    const revisions = pairs.reduce((n, p) => n + (p.a?.revision ?? 1) - 1 + (p.b?.revision ?? 1) - 1, 0);
    expect(revisedPairs).toBeGreaterThan(0);
    expect(revisions).toBe(reports.reduce((n, r) => n + r.recorrelated, 0));
    // …and every outbox entry was sent, by one process, once
    const sent = ['a', 'b'].flatMap((side) =>
      existsSync(sentFile(side)) ? readFileSync(sentFile(side), 'utf8').split('\n').filter(Boolean) : [],
    );
    expect(outbox.length).toBeGreaterThan(0);
    expect(outbox.filter((n) => n.status !== 'sent')).toEqual([]);
    expect([...sent].sort()).toEqual(outbox.map((n) => n.key).sort());
    expect(new Set(sent).size).toBe(sent.length);
  }, 20_000);
});
