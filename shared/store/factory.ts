/**
 * Chooses and opens the Store from the environment.
 *
 * - `STORE=sqlite` (default): `SQLITE_FILE` (default `./data/triage.db`; `:memory:` for a throw-away store);
 *   `SQLITE_KEEP_REVISIONS=false` stops appending every revision to the audit table;
 *   `SQLITE_INDEX_DAYS` (default 30) is how many days of detection time the in-memory correlation
 *   index holds (≈ 0.4 KB of heap per stored alert; older lookups read the log instead).
 * - `STORE=cosmos`: `COSMOS_ENDPOINT`, `COSMOS_DATABASE` (required); managed identity
 *   (DefaultAzureCredential) unless `COSMOS_USE_KEY=true` with `COSMOS_KEY` (local emulator /
 *   stand-in only); `COSMOS_ALLOW_SELF_SIGNED=true` accepts the local stand-in's self-signed TLS
 *   certificate (never set it against Azure); `COSMOS_CREATE_IF_MISSING=true` creates the database
 *   and containers (local runs; in Azure, Bicep creates them); `COSMOS_RETENTION_DAYS` sets item TTL.
 *
 * Missing or invalid settings fail fast with ConfigError naming the setting.
 * Each adapter is loaded only when chosen: @azure/cosmos alone costs ~170 ms of start-up,
 * which the embedded default (and `triage replay`) should not pay.
 */
import { ConfigError } from '../errors';
import type { Logger } from '../log';
import type { Store } from './port';

/** The store kinds `STORE` accepts. */
export const STORE_KINDS = ['sqlite', 'cosmos'] as const;
/** A store kind. */
export type StoreKind = (typeof STORE_KINDS)[number];

/** Reads `STORE` (default sqlite); anything else is a ConfigError. */
export function storeKindFromEnv(env: NodeJS.ProcessEnv): StoreKind {
  const raw = (env.STORE ?? '').trim().toLowerCase() || 'sqlite';
  const kind = STORE_KINDS.find((k) => k === raw);
  if (!kind) throw new ConfigError('STORE', `must be one of ${STORE_KINDS.join(', ')} (got ${JSON.stringify(env.STORE)})`);
  return kind;
}

/** Options the environment cannot carry. */
export interface StoreFactoryOptions {
  /** Per-tenant retention in seconds (the tenant policy's `retention.days`); Cosmos applies it as item TTL. */
  readonly ttlSecondsForTenant?: (tenantId: string) => number | undefined;
}

/** Opens the store the environment asks for. */
export async function openStoreFromEnv(env: NodeJS.ProcessEnv, log: Logger, options: StoreFactoryOptions = {}): Promise<Store> {
  const kind = storeKindFromEnv(env);
  switch (kind) {
    case 'sqlite': {
      // Lazy require: a dynamic import() would be emitted as an ESM import that cannot resolve an extension-less path.
      const { openSqliteStore } = require('./sqlite') as typeof import('./sqlite');
      const file = env.SQLITE_FILE?.trim() || './data/triage.db';
      log.info('store.opening', { store: kind, file });
      const days = env.SQLITE_INDEX_DAYS?.trim();
      const indexHorizonDays = days ? Number(days) : undefined;
      if (indexHorizonDays !== undefined && !(Number.isFinite(indexHorizonDays) && indexHorizonDays > 0)) {
        throw new ConfigError('SQLITE_INDEX_DAYS', `must be a positive number of days, got "${days}"`);
      }
      return openSqliteStore({
        file,
        log,
        keepRevisions: !/^(0|false|no|off)$/i.test(env.SQLITE_KEEP_REVISIONS?.trim() ?? ''),
        ...(indexHorizonDays !== undefined ? { indexHorizonDays } : {}),
      });
    }
    case 'cosmos': {
      const { cosmosSettingsFromEnv, openCosmosStore } = require('./cosmos') as typeof import('./cosmos');
      const settings = cosmosSettingsFromEnv(env);
      log.info('store.opening', {
        store: kind,
        endpoint: settings.endpoint,
        database: settings.database,
        auth: settings.key ? 'key' : 'managed-identity',
      });
      return openCosmosStore({
        ...settings,
        log,
        ...(options.ttlSecondsForTenant ? { ttlSecondsForTenant: options.ttlSecondsForTenant } : {}),
      });
    }
    default: {
      const never: never = kind;
      return never;
    }
  }
}
