/**
 * A case revision with more index operations than one transactional batch holds is written in
 * several batches. A batch failing after the first (which commits the case) must not leave the
 * correlation index disagreeing with the case for good: the case document lists what it still
 * owes, and the redelivery's read (or the next revision) finishes it. The fault is a 503 from a
 * proxy in front of the real server, so the failed batch reaches it not at all, as an atomic
 * batch failing on Azure would leave it.
 */
import { StoreUnavailableError } from '../../shared/errors';
import { createLogger, type Logger } from '../../shared/log';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import { cosmosBehindProxy } from '../helpers/cosmosBehindProxy';
import { caseRecord, MULTI_BATCH_REVISION, sighting } from './fixtures';

const { AT, WINDOW, OLD, KEPT, GONE, NEW } = MULTI_BATCH_REVISION;
const ATTEMPTS = 4;

const cosmos = cosmosBehindProxy('revision-index');
let store: CosmosStore;

beforeEach(async () => {
  store = cosmos.track(await openStore());
});

/** A store on the proxy, as another worker would open it; waits between attempts are skipped, not slept. */
function openStore(log?: Logger): Promise<CosmosStore> {
  return openCosmosStore({
    endpoint: cosmos.proxy.endpoint,
    key: cosmos.server.key,
    database: cosmos.database,
    createIfMissing: true,
    retry: { attempts: ATTEMPTS, sleep: async () => {} },
    ...(log ? { log } : {}),
  });
}

/** Writes revision 1 under OLD, then tries revision 2 under KEPT + NEW with its second batch failing every attempt. */
async function revisionFailingInItsSecondBatch(): Promise<unknown> {
  await store.putCase(
    caseRecord('t', 'case-1'),
    OLD.map((k) => sighting('t', 'case-1', k, AT)),
    undefined,
  );
  const read = await store.getCase('t', 'case-1');
  cosmos.proxy.reset();
  cosmos.proxy.inject({ status: 503, kinds: ['batch'], skip: 1 }, ATTEMPTS);
  return store
    .putCase(
      caseRecord('t', 'case-1', { revision: 2 }),
      [...KEPT, ...NEW].map((k) => sighting('t', 'case-1', k, AT)),
      read?.etag,
    )
    .catch((err: unknown) => err);
}

/** The case ids findRelated answers per key, for `keys`. */
async function casesByKey(reader: CosmosStore, keys: readonly string[]): Promise<Map<string, string[]>> {
  const { sightings, saturated } = await reader.findRelated({ tenantId: 't', keys, ...WINDOW, limitPerKey: 5 });
  expect(saturated).toEqual([]);
  const byKey = new Map<string, string[]>();
  for (const s of sightings) byKey.set(s.entityKey, [...(byKey.get(s.entityKey) ?? []), s.caseId]);
  return byKey;
}

describe('Cosmos store: a revision written in several batches', () => {
  it('answers a failed later batch as StoreUnavailableError, and the redelivery’s read makes the index agree with the case', async () => {
    const failure = await revisionFailingInItsSecondBatch();
    const redelivery = await openStore();
    // The fault fell between batches: some rows of keys the case no longer has were still there.
    const before = await casesByKey(redelivery, GONE);

    const read = await redelivery.getCase('t', 'case-1');
    cosmos.proxy.reset();
    const again = await redelivery.getCase('t', 'case-1');
    const readAgain = cosmos.proxy.counts();
    const gone = await casesByKey(redelivery, GONE);
    const kept = await casesByKey(redelivery, [...KEPT, ...NEW]);
    await redelivery.close();

    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(before.size).toBeGreaterThan(0);
    expect(read?.revision).toBe(2);
    expect(read?.fingerprint).toBe('fp-case-1-2');
    // Nothing is owed any more: the next read is one point read, no batch.
    expect(again?.etag).toBe(read?.etag);
    expect(readAgain).toMatchObject({ point: 1, batch: 0 });
    expect(gone.size).toBe(0);
    expect([...kept.keys()].sort()).toEqual([...KEPT, ...NEW].sort());
    expect([...kept.values()].every((ids) => ids.length === 1 && ids[0] === 'case-1')).toBe(true);
  });

  it('answers a read whose repair fails with the case as stored, and leaves the repair to the next read', async () => {
    await revisionFailingInItsSecondBatch();
    const events: string[] = [];
    const reader = await openStore(
      createLogger({ level: 'info', sink: (line) => events.push((JSON.parse(line) as { event: string }).event) }),
    );
    cosmos.proxy.inject({ status: 503, kinds: ['batch'] });

    const first = await reader.getCase('t', 'case-1');
    const goneAfterFirst = await casesByKey(reader, GONE);
    const second = await reader.getCase('t', 'case-1');
    const goneAfterSecond = await casesByKey(reader, GONE);
    const kept = await casesByKey(reader, [...KEPT, ...NEW]);
    await reader.close();

    expect(first?.revision).toBe(2);
    expect(goneAfterFirst.size).toBeGreaterThan(0);
    expect(second?.revision).toBe(2);
    expect(goneAfterSecond.size).toBe(0);
    expect(kept.size).toBe(KEPT.length + NEW.length);
    expect(events.filter((e) => e.startsWith('store.index.'))).toEqual(['store.index.unfinished', 'store.index.finished']);
  });

  it('has a revision written on top of an unfinished one delete the rows the unfinished one still owed', async () => {
    await revisionFailingInItsSecondBatch();
    const other = await openStore();
    // findCase answers the document as stored (it does not finish it), so the put takes the to-do over.
    const unfinished = await other.findCase('case-1');

    await other.putCase(
      caseRecord('t', 'case-1', { revision: 3 }),
      KEPT.slice(0, 5).map((k) => sighting('t', 'case-1', k, AT)),
      unfinished?.etag,
    );
    const found = await casesByKey(other, [...OLD, ...NEW]);
    await other.close();

    expect(unfinished?.revision).toBe(2);
    expect([...found.keys()].sort()).toEqual(KEPT.slice(0, 5).sort());
  });
});
