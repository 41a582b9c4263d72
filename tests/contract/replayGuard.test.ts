import { hmacHeaders, InMemoryReplayGuard, type ReplayGuard, verifyHmac } from '../../shared/auth/hmac';
import { StoreReplayGuard } from '../../shared/auth/storeReplayGuard';
import { AuthenticationError } from '../../shared/errors';
import { openCosmosStore } from '../../shared/store/cosmos';
import type { Store } from '../../shared/store/port';
import { openSqliteStore } from '../../shared/store/sqlite';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';

/** Two guards standing for two instances of a scaled-out app (one shared guard in-process), judged on a settable clock. */
interface Instances {
  readonly a: ReplayGuard;
  readonly b: ReplayGuard;
  setNow(ms: number): void;
  close(): Promise<void>;
}

const START = Date.parse('2026-11-20T00:00:00Z');

function overStore(store: Store): Instances {
  let now = START;
  const clock = () => now;
  return {
    a: new StoreReplayGuard(store, clock),
    b: new StoreReplayGuard(store, clock),
    setNow: (ms) => {
      now = ms;
    },
    close: () => store.close(),
  };
}

let cosmos: CosmosTestServer;
let databases = 0;

beforeAll(async () => {
  cosmos = await startCosmosServer();
});

afterAll(async () => {
  await cosmos.close();
});

const subjects: [string, () => Promise<Instances>][] = [
  [
    'in-memory',
    async () => {
      let now = START;
      const guard = new InMemoryReplayGuard(100, () => now);
      const setNow = (ms: number): void => {
        now = ms;
      };
      return { a: guard, b: guard, setNow, close: async () => {} };
    },
  ],
  ['store-backed (SQLite)', async () => overStore(openSqliteStore({ file: ':memory:' }))],
  [
    'store-backed (Cosmos)',
    async () =>
      overStore(
        await openCosmosStore({ endpoint: cosmos.endpoint, key: cosmos.key, database: `replay-${++databases}`, createIfMissing: true }),
      ),
  ],
];

describe.each(subjects)('%s HMAC replay guard', (_name, open) => {
  let g: Instances;
  beforeEach(async () => {
    g = await open();
  });
  afterEach(async () => {
    await g.close();
  });

  it('accepts a signature once across instances sharing the store, and again only after it expired', async () => {
    const expires = START + 300_000;

    const first = await g.a.checkAndRemember('sha256=abc', expires);
    const replayElsewhere = await g.b.checkAndRemember('sha256=abc', expires);
    const other = await g.b.checkAndRemember('sha256=def', expires);
    g.setNow(expires + 1);
    const afterExpiry = await g.a.checkAndRemember('sha256=abc', expires + 300_000);

    expect([Boolean(first), replayElsewhere, Boolean(other), Boolean(afterExpiry)]).toEqual([true, false, true, true]);
  });

  it('accepts a released signature again, on any instance, and refuses it again after that use', async () => {
    const expires = START + 300_000;
    const hold = await g.a.checkAndRemember('sha256=abc', expires);
    if (!hold) throw new Error('expected a first use');

    await hold.release();
    const retry = await g.b.checkAndRemember('sha256=abc', expires);
    const replayOfRetry = await g.a.checkAndRemember('sha256=abc', expires);

    expect(retry).toBeTruthy();
    expect(replayOfRetry).toBe(false);
  });

  it('does not let a stale hold free a signature that someone else now holds', async () => {
    const stale = await g.a.checkAndRemember('sha256=abc', START + 1_000);
    if (!stale) throw new Error('expected a first use');
    g.setNow(START + 1_000); // the first entry has expired (expiry instant included)
    const current = await g.b.checkAndRemember('sha256=abc', START + 301_000);

    await stale.release();
    await stale.release();
    const replay = await g.a.checkAndRemember('sha256=abc', START + 301_000);

    expect(current).toBeTruthy();
    expect(replay).toBe(false);
  });

  it('releases only its own signature', async () => {
    const abc = await g.a.checkAndRemember('sha256=abc', START + 300_000);
    if (!abc) throw new Error('expected a first use');
    await g.a.checkAndRemember('sha256=def', START + 300_000);

    await abc.release();

    expect(await g.b.checkAndRemember('sha256=def', START + 300_000)).toBe(false);
  });

  it('judges expiry at the instant it is given, not at its own clock', async () => {
    await g.a.checkAndRemember('sha256=abc', START + 300_000);
    g.setNow(START + 400_000); // the guard's own clock: a slow store call, long after the request was checked

    const replay = await g.b.checkAndRemember('sha256=abc', START + 300_000, START + 299_999);

    expect(replay).toBe(false);
  });

  it('refuses a replay verifyHmac sees at the last instant its timestamp is accepted (ts + window exactly)', async () => {
    const secret = 'k'.repeat(32);
    const cfg = { keys: [{ id: 'default', secret: Buffer.from(secret) }] };
    const ts = Math.floor(START / 1000);
    const body = '{"x":1}';
    const headers = hmacHeaders({ secret }, body, ts * 1000);
    const request = { headers: (n: string) => headers[n] ?? null, rawBody: body };
    await verifyHmac(request, cfg, g.a, ts * 1000);
    const edge = (ts + 300) * 1000;
    g.setNow(edge);

    const replay = verifyHmac(request, cfg, g.b, edge);

    await expect(replay).rejects.toThrow(AuthenticationError);
    await expect(replay).rejects.toThrow(/replay/);
  });
});
