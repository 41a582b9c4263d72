import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../../shared/config/policy';
import { silentLogger } from '../../../shared/log';
import { type IngestOutcome, Pipeline } from '../../../shared/pipeline/pipeline';
import type { RelatedQuery, Store } from '../../../shared/store/port';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT } from '../../helpers/cli';

type Row = Record<string, unknown> & { TenantId: string; SystemAlertId: string; Entities: string };

const chain = readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Row);

/** A SecurityAlert row on its own host, related to nothing in the chain. */
function unrelated(n: number): Row {
  const base = chain[2] as Row;
  const id = `f000000${n}-0000-4000-8000-000000000000`;
  const hosts = (JSON.parse(base.Entities) as Record<string, unknown>[])
    .filter((e) => e.Type === 'host')
    .map((e) => ({ ...e, HostName: `unrelated${n}` }));
  return { ...base, SystemAlertId: id, Entities: JSON.stringify(hosts) };
}

describe('pipeline ordering of Event Hub batches against single deliveries in one process', () => {
  it('correlates a single alert with a related alert of a batch that queued while the single one looked up', async () => {
    // Arrange: C (HTTP, one alert) and D (in Event Hub batch U2) are related (same VPN gateway,
    // two kill-chain phases). C's dedupe read starts batch U1; C's look-up starts batch U2, which
    // queues behind U1. Without ordering, U2 looked up before C wrote, and C wrote after U2's
    // look-up: one connection, so no re-check either, and neither case listed the other.
    const C = chain[0] as Row;
    const D = chain[1] as Row;
    const store = openSqliteStore({ file: ':memory:' });
    let pipeline: Pipeline | undefined;
    let u1: Promise<IngestOutcome> | undefined;
    let u2: Promise<IngestOutcome> | undefined;
    const hub = { kind: 'alerts' as const, source: 'hub' };
    const wrapped: Store = Object.create(store, {
      getCase: {
        value: async (tenantId: string, caseId: string) => {
          const found = await store.getCase(tenantId, caseId);
          if (caseId === C.SystemAlertId && u1 === undefined) u1 = pipeline?.ingest([unrelated(1), unrelated(2)], hub);
          return found;
        },
      },
      findRelated: {
        value: (q: RelatedQuery) => {
          const answer = store.findRelated(q);
          if (q.excludeCaseId === C.SystemAlertId && u2 === undefined) u2 = pipeline?.ingest([D, unrelated(3)], hub);
          return answer;
        },
      },
    });
    pipeline = new Pipeline({
      store: wrapped,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: silentLogger,
      backoffMs: 1,
    });

    // Act
    await pipeline.ingestText(JSON.stringify(C), { kind: 'alerts', source: 'http' });
    await u1;
    await u2;

    // Assert: the batch was interleaved as intended, and one of the pair sees the other.
    expect(u1).toBeDefined();
    expect(u2).toBeDefined();
    const c = await store.getCase(C.TenantId, C.SystemAlertId);
    const d = await store.getCase(D.TenantId, D.SystemAlertId);
    const seen = [...(c?.result.killChain.relatedCaseIds ?? []), ...(d?.result.killChain.relatedCaseIds ?? [])];
    expect(seen).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^(${C.SystemAlertId}|${D.SystemAlertId})$`))]));
    await store.close();
  });
});
