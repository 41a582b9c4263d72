/**
 * The Cosmos store on the local stand-in beside a raw SDK client on the same database, so a test can write and
 * read documents as another build would (the format-version suites). One stand-in per file, one database per test.
 */
import { type Container, CosmosClient } from '@azure/cosmos';
import { createLogger, type Logger } from '../../shared/log';
import { type CosmosStore, openCosmosStore } from '../../shared/store/cosmos';
import { type CosmosTestServer, startCosmosServer } from './cosmosServer';

/** A stored document as the SDK returns it. */
export interface RawDoc {
  id: string;
  docType?: string;
  fv?: unknown;
  [field: string]: unknown;
}

/** What a newer build might store: a higher version and a field this build does not know. */
export const NEWER_SHAPE = { fv: 2, shape: 'v2' };

/** The per-test database and what the tests do with it (see cosmosWithRawAccess). */
export interface CosmosWithRawAccess {
  readonly server: CosmosTestServer;
  /** This test's database name. */
  readonly database: string;
  /** The JSON log lines of the stores this test opened with `logger()` (emptied before each test). */
  readonly lines: Record<string, unknown>[];
  /** A logger writing into `lines`. */
  logger(): Logger;
  /** A fresh store instance (no cached etags or payloads) on this test's database, closed after the test; `endpoint` to put a proxy between. */
  open(log?: Logger, endpoint?: string): Promise<CosmosStore>;
  /** A container of this test's database, through the raw client. */
  container(name: 'cases' | 'parked'): Container;
  /** Every document of a container, through the raw client. */
  docs(name: 'cases' | 'parked'): Promise<RawDoc[]>;
}

/** Registers the stand-in (beforeAll/afterAll) and a database per test (beforeEach/afterEach), named `prefix-N`. */
export function cosmosWithRawAccess(prefix: string): CosmosWithRawAccess {
  let server: CosmosTestServer | undefined;
  let raw: CosmosClient | undefined;
  let databases = 0;
  let database = '';
  const lines: Record<string, unknown>[] = [];
  const opened: CosmosStore[] = [];
  const started = (): CosmosTestServer => {
    if (!server) throw new Error('the Cosmos stand-in is not started (used outside a test?)');
    return server;
  };
  beforeAll(async () => {
    server = await startCosmosServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    database = `${prefix}-${++databases}`;
    lines.length = 0;
    const s = started();
    raw = new CosmosClient({ endpoint: s.endpoint, key: s.key, connectionPolicy: { enableEndpointDiscovery: false } });
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    raw?.dispose();
  });
  const logger = (): Logger =>
    createLogger({ level: 'info', sink: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const container = (name: 'cases' | 'parked'): Container => {
    if (!raw) throw new Error('no raw client (used outside a test?)');
    return raw.database(database).container(name);
  };
  return {
    get server() {
      return started();
    },
    get database() {
      return database;
    },
    lines,
    logger,
    async open(log = logger(), endpoint = started().endpoint) {
      const store = await openCosmosStore({
        endpoint,
        key: started().key,
        database,
        createIfMissing: true,
        retry: { attempts: 1, sleep: async () => {} },
        log,
      });
      opened.push(store);
      return store;
    },
    container,
    async docs(name) {
      const { resources } = await container(name).items.query<RawDoc>('SELECT * FROM c').fetchAll();
      return resources;
    },
  };
}

/** A raw document as a replace sends it: without the system properties the server sets. */
export function body(doc: RawDoc): RawDoc {
  return Object.fromEntries(Object.entries(doc).filter(([k]) => !k.startsWith('_'))) as RawDoc;
}
