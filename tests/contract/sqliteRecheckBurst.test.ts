/**
 * The post-commit re-check of a case another process raced, when many related cases committed after it
 * (an alert storm on one host): the re-check must still find the one case that missed it. Two
 * SqliteStore instances on one file are two processes to SQLite; the interleaving is forced by holding
 * process B's look-ups (a pass-through wrapper around the real store).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyRegistry } from '../../shared/config/policy';
import { silentLogger } from '../../shared/log';
import { Pipeline } from '../../shared/pipeline/pipeline';
import type { Store } from '../../shared/store/port';
import { openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';
import { createBrain } from '../../shared/triage/brain';
import { ROOT } from '../helpers/cli';
import { signal } from '../helpers/signal';

let dir: string;
const opened: SqliteStore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-recheck-burst-'));
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One connection to `file`, as one process would open it. */
function connect(file: string): SqliteStore {
  const s = openSqliteStore({ file });
  opened.push(s);
  return s;
}

/** Hooks around one process's look-ups; `n` counts the look-ups made for one case, from 0. */
interface Holds {
  readonly before?: (caseId: string | undefined, n: number) => Promise<void> | undefined;
  readonly after?: (caseId: string | undefined, n: number) => Promise<void> | undefined;
}

/** The real store, with look-ups held by `holds`: how the test forces an interleaving of two processes. */
function held(store: Store, holds: Holds): Store {
  const counts = new Map<string | undefined, number>();
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'findRelated')
        return async (...args: Parameters<Store['findRelated']>) => {
          const id = args[0].excludeCaseId;
          const n = counts.get(id) ?? 0;
          counts.set(id, n + 1);
          await holds.before?.(id, n);
          const answer = await target.findRelated(...args);
          await holds.after?.(id, n);
          return answer;
        };
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function processOn(store: Store): Pipeline {
  return new Pipeline({
    store,
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain(),
    log: silentLogger,
    backoffMs: 1,
  });
}

describe('two processes on one SQLite file, the case committed second followed by a burst of related alerts', () => {
  const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const alerts = { kind: 'alerts' as const, source: 'test' };
  /** The beaconing alert (same VPN gateway) again under another id, detected `minutes` later. */
  const beaconing = (n: number, minutes: number): string => {
    const base = chain[1] as Record<string, unknown>;
    const id = `b1000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
    const at = new Date(Date.parse(base.TimeGenerated as string) + minutes * 60_000).toISOString();
    return JSON.stringify({
      ...base,
      SystemAlertId: id,
      _ItemId: id,
      TimeGenerated: at,
      StartTime: at,
      EndTime: at,
      ProcessingEndTime: at,
    });
  };

  it('still revises it to list the case that missed it when more than ten related cases committed after it saw it', async () => {
    // Arrange: B's first case looks up before A's case commits, and its re-check reads after eleven more cases of B saw it
    const file = join(dir, 'burst.db');
    const first = beaconing(0, 0);
    const firstId = (JSON.parse(first) as { SystemAlertId: string }).SystemAlertId;
    const lookedUp = signal();
    const otherCommitted = signal();
    const recheckReached = signal();
    const burstDone = signal();
    const a = processOn(connect(file));
    const b = processOn(
      held(connect(file), {
        // The first look-up is answered before A's case commits, and A commits before B's write.
        after: (caseId, n) => {
          if (caseId !== firstId || n !== 0) return undefined;
          lookedUp.fire();
          return otherCommitted.done;
        },
        // The re-check reads once the burst has committed.
        before: (caseId, n) => {
          if (caseId !== firstId || n !== 1) return undefined;
          recheckReached.fire();
          return burstDone.done;
        },
      }),
    );

    // Act
    const outFirst = b.ingestText(first, alerts);
    await lookedUp.done;
    const outOther = await a.ingestText(JSON.stringify(chain[0]), alerts);
    otherCommitted.fire();
    await recheckReached.done;
    const burst = await Promise.all(Array.from({ length: 11 }, (_, i) => b.ingestText(beaconing(i + 1, i + 1), alerts)));
    burstDone.fire();
    await outFirst;

    // Assert: the burst saw both; the case committed second was revised to list the one that missed it
    const otherId = outOther.items[0]?.caseId as string;
    const tenantId = outOther.items[0]?.tenantId as string;
    const reader = connect(file);
    const storedOther = await reader.getCase(tenantId, otherId);
    const storedFirst = await reader.getCase(tenantId, firstId);
    expect(burst.every((o) => o.items[0]?.result?.killChain.relatedCaseIds.includes(firstId))).toBe(true);
    expect(storedOther?.result.killChain.relatedCaseIds).toEqual([]);
    expect(storedFirst?.revision).toBe(2);
    expect(storedFirst?.result.killChain.relatedCaseIds).toEqual([otherId]);
    expect(storedFirst?.result.killChain.multiStage).toBe(true);
  });
});
