/**
 * A revision written in several batches whose later batch meets a case document another process
 * changed (412): here a reader's getCase did one of the writer's batches and failed the next, so
 * the document still owes index rows when the writer reads it back. The put must not answer
 * success while rows are owed: nothing would come back to finish them, and the case would stay
 * unfound under keys it has. The interleaving is driven by the writer's retry `sleep` (no timers),
 * the faults are 503s from a proxy in front of the real server (the failed batch never reaches it).
 */
import { StoreUnavailableError } from '../../shared/errors';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import type { CaseRecord } from '../../shared/store/port';
import { cosmosBehindProxy } from '../helpers/cosmosBehindProxy';
import { caseRecord, MULTI_BATCH_REVISION, sighting } from './fixtures';

const { AT, WINDOW, OLD, KEPT, GONE, NEW } = MULTI_BATCH_REVISION;
const ATTEMPTS = 4;

const cosmos = cosmosBehindProxy('revision-handover');

/** A store on the proxy, as another worker would open it; `onRetry` runs (once) where the first retry would wait. */
async function openStore(onRetry?: () => Promise<void>): Promise<CosmosStore> {
  let pending = onRetry;
  const store = await openCosmosStore({
    endpoint: cosmos.proxy.endpoint,
    key: cosmos.server.key,
    database: cosmos.database,
    createIfMissing: true,
    retry: {
      attempts: ATTEMPTS,
      sleep: async () => {
        const run = pending;
        pending = undefined;
        await run?.();
      },
    },
  });
  return cosmos.track(store);
}

/**
 * Writes revision 1, then revision 2 by a writer whose second batch fails once; while it waits to
 * retry, a reader's getCase does that batch and fails the third. The writer's retry then meets the
 * reader's etag (412) and reads the case back, its first `faults` batches failing (503).
 */
async function writerMeetingAReadersRepair(faults: number): Promise<{ put: Promise<CaseRecord>; readerSaw: number | undefined }> {
  let readerSaw: number | undefined;
  const reader = await openStore();
  const writer = await openStore(async () => {
    cosmos.proxy.inject({ status: 503, kinds: ['batch'], skip: 1 });
    readerSaw = (await reader.getCase('t', 'case-1'))?.revision;
    // The writer's retry of its second batch reaches the server (412); what follows fails `faults` times.
    cosmos.proxy.inject({ status: 503, kinds: ['batch'], skip: 1 }, faults);
  });
  const first = await writer.putCase(
    caseRecord('t', 'case-1'),
    OLD.map((k) => sighting('t', 'case-1', k, AT)),
    undefined,
  );
  cosmos.proxy.reset();
  cosmos.proxy.inject({ status: 503, kinds: ['batch'], skip: 1 });
  const put = writer.putCase(
    caseRecord('t', 'case-1', { revision: 2 }),
    [...KEPT, ...NEW].map((k) => sighting('t', 'case-1', k, AT)),
    first.etag,
  );
  // Settled here (the reader ran meanwhile); the test awaits `put` itself for its outcome.
  await put.catch(() => undefined);
  return { put, readerSaw };
}

/** The keys among `keys` that findRelated finds case-1 under. */
async function foundKeys(store: CosmosStore, keys: readonly string[]): Promise<string[]> {
  const { sightings, saturated } = await store.findRelated({ tenantId: 't', keys, ...WINDOW, limitPerKey: 5 });
  expect(saturated).toEqual([]);
  return [...new Set(sightings.filter((s) => s.caseId === 'case-1').map((s) => s.entityKey))].sort();
}

describe('Cosmos store: a writer whose later batch meets a case document a reader changed', () => {
  it('finishes the rows still owed itself, with its own retries: one transient fault in that hand-over costs nothing', async () => {
    // Arrange + act: one 503 on the writer's first batch after the hand-over
    const { put, readerSaw } = await writerMeetingAReadersRepair(1);
    const written = await put;
    const other = await openStore();
    cosmos.proxy.reset();
    const read = await other.getCase('t', 'case-1');
    const readCost = cosmos.proxy.counts();

    // Assert: the put answers the stored etag, nothing is owed, and the index is the revision's
    expect(readerSaw).toBe(2);
    expect(read?.revision).toBe(2);
    expect(written.etag).toBe(read?.etag);
    expect(readCost).toMatchObject({ point: 1, batch: 0 });
    expect(await foundKeys(other, [...KEPT, ...NEW])).toEqual([...KEPT, ...NEW].sort());
    expect(await foundKeys(other, GONE)).toEqual([]);
  });

  it('answers StoreUnavailableError while rows are still owed, and the redelivery’s read finishes them', async () => {
    // Arrange + act: every attempt of the writer's hand-over fails
    const { put, readerSaw } = await writerMeetingAReadersRepair(ATTEMPTS);
    const failure = await put.catch((err: unknown) => err);
    const redelivery = await openStore();
    const missingBefore = NEW.length - (await foundKeys(redelivery, NEW)).length;
    const read = await redelivery.getCase('t', 'case-1');

    // Assert: the put failed (so the delivery comes back); its read then made the index agree with the case
    expect(readerSaw).toBe(2);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(missingBefore).toBeGreaterThan(0);
    expect(read?.revision).toBe(2);
    expect(await foundKeys(redelivery, [...KEPT, ...NEW])).toEqual([...KEPT, ...NEW].sort());
    expect(await foundKeys(redelivery, GONE)).toEqual([]);
  });
});
