/**
 * Retention of a case whose index rows a later read finishes. Cosmos counts an item's `ttl` from
 * its last write (`_ts`), so a read that replaces the case document to finish its to-do days after
 * the revision was written must write the TTL left, not the whole one again: otherwise the case
 * outlives the payload and outbox documents written with it (and its retention). The reader's
 * clock is injected; the stand-in stamps `_ts` with its own.
 */
import { CosmosClient } from '@azure/cosmos';
import { StoreUnavailableError } from '../../shared/errors';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import { cosmosBehindProxy } from '../helpers/cosmosBehindProxy';
import { caseRecord, notification, sighting } from './fixtures';

const AT = '2024-05-01T10:00:00.000Z';
const DAY_S = 86_400;
const TTL_S = 30 * DAY_S;
const LATER_S = 10 * DAY_S;
/** 150 keys: two batches, the second one owed when it fails. */
const KEYS = Array.from({ length: 150 }, (_, i) => `ip:10.1.${i >> 8}.${i & 255}`);
const REPORT = 'First report for case-1';

interface RawDoc {
  id: string;
  docType: string;
  ttl?: number;
  _ts: number;
  indexTodo?: unknown;
}

const cosmos = cosmosBehindProxy('revision-ttl');
let raw: CosmosClient;

beforeEach(() => {
  raw = new CosmosClient({
    endpoint: cosmos.server.endpoint,
    key: cosmos.server.key,
    connectionPolicy: { enableEndpointDiscovery: false },
  });
});

afterEach(() => {
  raw.dispose();
});

async function openStore(now?: () => number): Promise<CosmosStore> {
  const store = await openCosmosStore({
    endpoint: cosmos.proxy.endpoint,
    key: cosmos.server.key,
    database: cosmos.database,
    createIfMissing: true,
    defaultTtlSeconds: TTL_S,
    retry: { attempts: 1, sleep: async () => {} },
    ...(now ? { now } : {}),
  });
  return cosmos.track(store);
}

async function docs(): Promise<RawDoc[]> {
  const { resources } = await raw.database(cosmos.database).container('cases').items.query<RawDoc>('SELECT * FROM c').fetchAll();
  return resources;
}

describe('Cosmos store: a case whose index rows a later read finishes', () => {
  it('keeps the expiry its revision was written with, and gives the rows it writes the same', async () => {
    // Arrange: a new case with its report to one recipient; its second batch fails
    const writer = await openStore();
    const record = caseRecord('t', 'case-1');
    const withReport = { ...record, result: { ...record.result, firstReport: REPORT } };
    cosmos.proxy.inject({ status: 503, kinds: ['batch'], skip: 1 });
    const failure = await writer
      .putCase(
        withReport,
        KEYS.map((k) => sighting('t', 'case-1', k, AT)),
        undefined,
        [{ ...notification('t', 'case-1', 'soc@contoso.example'), payload: REPORT }],
      )
      .catch((err: unknown) => err);
    const before = await docs();
    const written = before.find((d) => d.docType === 'case');
    const rowsBefore = new Set(before.filter((d) => d.docType === 'sighting').map((d) => d.id));
    // A reader ten days later (its clock against the stand-in's `_ts`)
    const reader = await openStore(() => ((written?._ts ?? 0) + LATER_S) * 1000);

    // Act
    const read = await reader.getCase('t', 'case-1');

    // Assert
    const after = await docs();
    const stored = after.find((d) => d.docType === 'case');
    const repaired = after.filter((d) => d.docType === 'sighting' && !rowsBefore.has(d.id));
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(written?.indexTodo).toBeDefined();
    expect(read?.result.firstReport).toBe(REPORT);
    expect(stored?.indexTodo).toBeUndefined();
    expect(stored?.ttl).toBe(TTL_S - LATER_S);
    expect(repaired.length).toBe(KEYS.length - rowsBefore.size);
    expect(repaired.length).toBeGreaterThan(0);
    expect(new Set(repaired.map((d) => d.ttl))).toEqual(new Set([TTL_S - LATER_S]));
    // What the first batch wrote keeps its TTL (counted from that batch)
    expect(after.filter((d) => d.docType === 'payload' || d.docType === 'outbox').map((d) => d.ttl)).toEqual([TTL_S, TTL_S]);
  });
});
