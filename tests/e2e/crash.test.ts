import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { synthAlerts } from '../../bench/synth';
import type { Store } from '../../shared/store/port';
import { openSqliteStore } from '../../shared/store/sqlite';
import { ROOT, scratch } from '../helpers/cli';

const WORKER = join(ROOT, 'tests', 'helpers', 'crashWorker.ts');
const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

function run(env: Record<string, string>): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', WORKER], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** What must be identical whatever the crashes: cases, verdicts, correlation, outbox entries. */
async function snapshot(store: Store, caseIds: string[]): Promise<unknown> {
  const cases = [];
  for (const id of caseIds) {
    const rec = await store.getCase(TENANT, id);
    cases.push(
      rec && {
        id,
        revision: rec.revision,
        fingerprint: rec.fingerprint,
        severity: rec.result.severity,
        playbook: rec.result.playbook,
        related: rec.result.killChain.relatedCaseIds,
        multiStage: rec.result.killChain.multiStage,
        reasons: rec.result.reasons.map((r) => r.rule),
      },
    );
  }
  const outbox = (await store.listNotifications({ tenantId: TENANT })).map((n) => `${n.key} ${n.status}`).sort();
  const parked = (await store.listParked({ includeReplayed: true })).length;
  return { cases, outbox, parked };
}

describe('crash consistency of the stream handler', () => {
  // 200 events: 190 single-record envelopes and 10 redeliveries of earlier ones, over 40 hosts so
  // correlation links cases across batches.
  const rows = synthAlerts(190, { seed: 7, hosts: 40, spanMs: 3600_000 }).map((r) => JSON.parse(r) as { SystemAlertId: string });
  const events = [...rows.map((r) => ({ records: [r] })), ...rows.slice(0, 10).map((r) => ({ records: [r] }))];
  const caseIds = rows.map((r) => r.SystemAlertId);
  const dir = scratch('triage-crash-');
  const eventsFile = join(dir, 'events.json');
  writeFileSync(eventsFile, JSON.stringify(events));

  it('after SIGKILLs at random points and redelivery, the store equals a run without crashes', async () => {
    // Arrange: the reference run, without crashes
    const ref = run({ SQLITE_FILE: join(dir, 'ref.db'), OUTBOX_FILE: join(dir, 'ref.jsonl'), EVENTS_FILE: eventsFile });
    expect(ref.status).toBe(0);
    const totalOps = (JSON.parse(ref.stdout) as { ops: number }).ops;
    expect(totalOps).toBeGreaterThan(200);

    // Act: kill the worker five times at pseudo-random side-effect operations, before or after the
    // operation, each time redelivering every batch from the start; then let it finish.
    const crashDb = join(dir, 'crash.db');
    const crashOutbox = join(dir, 'crash.jsonl');
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const kills: string[] = [];
    for (let i = 0; i < 5; i++) {
      // How much side-effect work is left: a probe run on a copy of the crashed database.
      const probe = join(dir, 'probe.db');
      for (const ext of ['', '-wal']) {
        rmSync(probe + ext, { force: true });
        if (existsSync(crashDb + ext)) copyFileSync(crashDb + ext, probe + ext);
      }
      const left = (
        JSON.parse(run({ SQLITE_FILE: probe, OUTBOX_FILE: join(dir, 'probe.jsonl'), EVENTS_FILE: eventsFile }).stdout) as { ops: number }
      ).ops;
      if (left < 2) break;
      const at = 1 + Math.floor(next() * (left - 1));
      const when = next() < 0.5 ? 'before' : 'after';
      const r = run({ SQLITE_FILE: crashDb, OUTBOX_FILE: crashOutbox, EVENTS_FILE: eventsFile, CRASH_AT: String(at), CRASH_WHEN: when });
      kills.push(`${at}/${when}:${r.signal ?? r.status}`);
    }
    const final = run({ SQLITE_FILE: crashDb, OUTBOX_FILE: crashOutbox, EVENTS_FILE: eventsFile, DRAIN_AFTER_MS: '180000' });

    // Assert: every crash really killed the worker, and the stores match
    expect(kills).toHaveLength(5);
    expect(kills.filter((k) => !k.endsWith('SIGKILL'))).toEqual([]);
    expect(final.status).toBe(0);
    const a = openSqliteStore({ file: join(dir, 'ref.db') });
    const b = openSqliteStore({ file: crashDb });
    const [sa, sb] = [await snapshot(a, caseIds), await snapshot(b, caseIds)];
    await a.close();
    await b.close();
    expect(sb).toEqual(sa);
    expect((sa as { cases: unknown[] }).cases.every(Boolean)).toBe(true);
    // Every outbox entry is delivered exactly once in the store's view.
    expect((sb as { outbox: string[] }).outbox.every((l) => l.endsWith(' sent'))).toBe(true);
    // The file channel is at-least-once: a kill between its append and the status update may repeat a line.
    const lines = readFileSync(crashOutbox, 'utf8').split('\n').filter(Boolean).length;
    expect(lines).toBeGreaterThanOrEqual((sa as { outbox: string[] }).outbox.length);
    expect(lines).toBeLessThanOrEqual((sa as { outbox: string[] }).outbox.length + 5);
  });
});
