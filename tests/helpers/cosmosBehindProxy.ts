/**
 * The usual arrangement of a Cosmos contract test that injects faults: one stand-in per test file,
 * and per test a fresh counting proxy in front of it (tests/helpers/countingProxy.ts), a fresh
 * database name, and the stores the test opened closed after it. Registers the jest hooks itself.
 */
import { type CosmosTestServer, startCosmosServer } from './cosmosServer';
import { type CountingProxy, startCountingProxy } from './countingProxy';

/** What the hooks set up, read inside a test (or a hook registered after the call). */
export interface CosmosBehindProxy {
  readonly server: CosmosTestServer;
  /** This test's proxy. */
  readonly proxy: CountingProxy;
  /** This test's database name (`<prefix>-<n>`). */
  readonly database: string;
  /** Closes `store` after this test; returns it. */
  track<T extends { close(): Promise<void> }>(store: T): T;
}

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is read before its jest hook ran`);
  return value;
}

/** Registers the hooks (call at the top of a test file) and returns their state. */
export function cosmosBehindProxy(prefix: string): CosmosBehindProxy {
  let server: CosmosTestServer | undefined;
  let proxy: CountingProxy | undefined;
  let database = '';
  let databases = 0;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startCosmosServer();
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(async () => {
    proxy = await startCountingProxy(started(server, 'the stand-in').endpoint);
    database = `${prefix}-${++databases}`;
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await proxy?.close();
  });

  return {
    get server() {
      return started(server, 'the stand-in');
    },
    get proxy() {
      return started(proxy, 'the proxy');
    },
    get database() {
      return database;
    },
    track(store) {
      opened.push(store);
      return store;
    },
  };
}
