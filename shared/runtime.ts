/**
 * Composition root: builds the pipeline and its ports from the environment,
 * once per process. Azure Functions and the local host (`triage serve`) share it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EntraAuthConfig, entraConfigFromEnv } from './auth/entra';
import { type HmacAuthConfig, hmacConfigFromEnv, type ReplayGuard } from './auth/hmac';
import { StoreReplayGuard } from './auth/storeReplayGuard';
import { PolicyRegistry } from './config/policy';
import { type Settings, settingsFromEnv } from './config/settings';
import { loadIndicatorFiles } from './enrichment/indicators';
import { ConfigError } from './errors';
import { createLogger, type Logger } from './log';
import { type ChannelSender, FileChannel, OutboxDispatcher } from './notify/outbox';
import { Pipeline } from './pipeline/pipeline';
import { openStoreFromEnv } from './store/factory';
import type { Store } from './store/port';
import { createBrain } from './triage/brain';
import { checkPolicy } from './triage/checkPolicy';

/** Everything a trigger needs. */
export interface Runtime {
  readonly settings: Settings;
  readonly store: Store;
  readonly policies: PolicyRegistry;
  readonly pipeline: Pipeline;
  readonly log: Logger;
  /** Request authentication; each part is absent when not configured. */
  readonly auth: { readonly entra?: EntraAuthConfig; readonly hmac?: HmacAuthConfig; readonly replayGuard: ReplayGuard };
  /** Product version (package.json). */
  readonly version: string;
  /**
   * Delivers outbox entries through the runtime's channel (absent when delivery is off: empty
   * OUTBOX_FILE and no channel given). The pipeline sends through it right after each commit; the
   * `outboxDrain` timer and `triage serve`'s drain loop send what is due later through the same one.
   */
  readonly dispatcher?: OutboxDispatcher;
  /** Closes the store. */
  close(): Promise<void>;
}

/**
 * App Service hands a Key Vault reference it could not resolve (no access, wrong name) to the app
 * as its literal text, `@Microsoft.KeyVault(…)`. Taken as a value, that text would become, say, the
 * HMAC secret, known to anyone who can read the app's configuration. Such a setting is refused.
 */
function refuseUnresolvedReferences(env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (value?.trimStart().startsWith('@Microsoft.KeyVault(')) {
      throw new ConfigError(name, 'is an unresolved Key Vault reference (grant the app identity "Key Vault Secrets User" on the vault)');
    }
  }
}

/** Builds a runtime from an environment; invalid policy files or settings throw (fail fast). */
export async function createRuntime(
  env: NodeJS.ProcessEnv = process.env,
  options?: { log?: Logger; store?: Store; channel?: ChannelSender },
): Promise<Runtime> {
  const log = options?.log ?? createLogger();
  refuseUnresolvedReferences(env);
  const settings = settingsFromEnv(env);
  const entra = entraConfigFromEnv(env);
  const hmac = hmacConfigFromEnv(env);
  // An explicit POLICY_DIR must exist; the shipped default may be absent (then a warning below).
  const policies = PolicyRegistry.fromDirectory(settings.policyDir, {
    check: checkPolicy,
    ...(env.POLICY_DIR !== undefined ? { required: 'POLICY_DIR' } : {}),
  });
  const indicators = loadIndicatorFiles(settings.indicatorFiles);
  // A tenant's own policy sets its retention; tenants without one keep COSMOS_RETENTION_DAYS.
  const ttlSecondsForTenant = (tenantId: string): number | undefined => {
    const rp = policies.resolve(tenantId);
    return rp.source === 'tenant' ? rp.policy.retention.days * 86_400 : undefined;
  };
  const store = options?.store ?? (await openStoreFromEnv(env, log, { ttlSecondsForTenant }));
  // The embedded channel appends to OUTBOX_FILE; a caller may supply another sender (tests, other channels).
  const channel = options?.channel ?? (settings.outboxFile ? new FileChannel(settings.outboxFile) : undefined);
  const dispatcher = channel ? new OutboxDispatcher(store, channel, log) : undefined;
  const clock = (): Date => new Date();
  const pipeline = new Pipeline({
    store,
    policies,
    brain: createBrain({ indicators, now: clock }),
    clock, // one time source for the steps and the first report's deadline
    log,
    maxBodyBytes: settings.maxBodyBytes,
    recheckAfterCommit: settings.correlationRecheck,
    ...(dispatcher ? { dispatcher } : {}),
  });
  log.info('runtime.ready', {
    store: env.STORE ?? 'sqlite',
    tenants: policies.tenants().length,
    indicators: indicators.size,
  });
  if (policies.tenants().length === 0) {
    log.warn('runtime.no_policies', { policyDir: settings.policyDir, reason: 'every tenant is triaged with the documented defaults' });
  }
  const auth = { ...(entra ? { entra } : {}), ...(hmac ? { hmac } : {}), replayGuard: new StoreReplayGuard(store) };
  return {
    settings,
    store,
    policies,
    pipeline,
    log,
    auth,
    version: VERSION,
    ...(dispatcher ? { dispatcher } : {}),
    close: () => store.close(),
  };
}

const VERSION: string = (() => {
  // dist/shared/runtime.js sits two levels below package.json; the production bundle beside its own.
  for (const file of [join(__dirname, 'package.json'), join(__dirname, '..', '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name?.startsWith('sentinel-triage') && pkg.version) return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
})();

let current: Promise<Runtime> | undefined;

/** The process-wide runtime, created on first use from `process.env`. */
export function getRuntime(): Promise<Runtime> {
  if (!current) {
    current = createRuntime();
    // A failed start must not be cached forever: the next invocation tries again.
    current.catch(() => {
      current = undefined;
    });
  }
  return current;
}

/** Replaces the process-wide runtime (local host, tests). */
export function setRuntime(rt: Runtime | undefined): void {
  current = rt ? Promise.resolve(rt) : undefined;
}
