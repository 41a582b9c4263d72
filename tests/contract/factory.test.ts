import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/errors';
import { silentLogger } from '../../shared/log';
import { cosmosSettingsFromEnv } from '../../shared/store/cosmos';
import { openStoreFromEnv, storeKindFromEnv } from '../../shared/store/factory';
import { SqliteStore } from '../../shared/store/sqlite';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';
import { caseRecord } from './fixtures';

function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('store selection from the environment', () => {
  it('opens the embedded SQLite store by default, at SQLITE_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'triage-factory-'));
    const file = join(dir, 'data', 'triage.db');

    const store = await openStoreFromEnv({ SQLITE_FILE: file }, silentLogger);
    await store.close();

    expect(store).toBeInstanceOf(SqliteStore);
    expect(statSync(file).isFile()).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sizes the SQLite correlation index from SQLITE_INDEX_DAYS, and names the setting when it is not a positive number', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'triage-factory-'));
    const file = join(dir, 'triage.db');

    const store = await openStoreFromEnv({ SQLITE_FILE: file, SQLITE_INDEX_DAYS: '2' }, silentLogger);
    const horizon = (store as SqliteStore).indexStats.horizon;
    await store.close();
    const refused = await openStoreFromEnv({ SQLITE_FILE: file, SQLITE_INDEX_DAYS: 'a week' }, silentLogger).catch((err: unknown) => err);

    expect(Date.now() - Date.parse(horizon)).toBeGreaterThan(2 * 86_400_000 - 60_000);
    expect(Date.now() - Date.parse(horizon)).toBeLessThan(2 * 86_400_000 + 60_000);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).setting).toBe('SQLITE_INDEX_DAYS');
    rmSync(dir, { recursive: true, force: true });
  });

  it('names STORE when it is neither sqlite nor cosmos', () => {
    expect(configErrorOf(() => storeKindFromEnv({ STORE: 'postgres' })).setting).toBe('STORE');
  });

  it.each([
    [{}, 'COSMOS_ENDPOINT'],
    [{ COSMOS_ENDPOINT: 'not a url' }, 'COSMOS_ENDPOINT'],
    [{ COSMOS_ENDPOINT: 'http://cosmos.example:8081', COSMOS_DATABASE: 'triage' }, 'COSMOS_ENDPOINT'],
    [{ COSMOS_ENDPOINT: 'https://acct.documents.azure.com:443/' }, 'COSMOS_DATABASE'],
    [{ COSMOS_ENDPOINT: 'https://localhost:8081', COSMOS_DATABASE: 'triage', COSMOS_USE_KEY: 'true' }, 'COSMOS_KEY'],
    [
      { COSMOS_ENDPOINT: 'https://acct.documents.azure.com', COSMOS_DATABASE: 'triage', COSMOS_RETENTION_DAYS: '0' },
      'COSMOS_RETENTION_DAYS',
    ],
  ])('fails fast on Cosmos settings %j, naming %s', (env, setting) => {
    expect(configErrorOf(() => cosmosSettingsFromEnv(env)).setting).toBe(setting);
  });

  it('reads managed-identity settings without a key, and retention as TTL seconds', () => {
    const settings = cosmosSettingsFromEnv({
      COSMOS_ENDPOINT: 'https://acct.documents.azure.com:443/',
      COSMOS_DATABASE: 'triage',
      COSMOS_KEY: 'ignored without COSMOS_USE_KEY',
      COSMOS_RETENTION_DAYS: '90',
    });

    expect(settings).toEqual({
      endpoint: 'https://acct.documents.azure.com:443/',
      database: 'triage',
      allowSelfSigned: false,
      createIfMissing: false,
      defaultTtlSeconds: 90 * 86_400,
    });
  });

  it('fails before any network call when STORE=cosmos lacks a setting', async () => {
    await expect(openStoreFromEnv({ STORE: 'cosmos', COSMOS_DATABASE: 'triage' }, silentLogger)).rejects.toMatchObject({
      name: 'ConfigError',
      setting: 'COSMOS_ENDPOINT',
    });
  });

  describe('against the local stand-in over HTTPS with its self-signed certificate', () => {
    let server: CosmosTestServer;

    beforeAll(async () => {
      server = await startCosmosServer({ https: true });
    });

    afterAll(async () => {
      await server.close();
    });

    const env = () => ({
      STORE: 'cosmos',
      COSMOS_ENDPOINT: server.endpoint,
      COSMOS_DATABASE: 'factory',
      COSMOS_USE_KEY: 'true',
      COSMOS_KEY: server.key,
      COSMOS_CREATE_IF_MISSING: 'true',
    });

    it('connects when COSMOS_ALLOW_SELF_SIGNED=true', async () => {
      const store = await openStoreFromEnv({ ...env(), COSMOS_ALLOW_SELF_SIGNED: 'true' }, silentLogger);

      const saved = await store.putCase(caseRecord('t', 'case-1'), [], undefined);

      expect((await store.getCase('t', 'case-1'))?.etag).toBe(saved.etag);
      await store.close();
    });

    it('refuses the self-signed certificate otherwise', async () => {
      await expect(openStoreFromEnv(env(), silentLogger)).rejects.toMatchObject({ code: expect.stringMatching(/CERT/) });
    });
  });
});
