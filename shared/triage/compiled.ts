/**
 * A tenant policy compiled for the hot path: network matchers, blacklists, the
 * rule map, the kill-chain mapping and the correlation settings. Compiled once
 * per policy object (WeakMap), so a policy reload (new object) recompiles and an
 * unloaded policy is garbage-collected with its compiled form.
 */
import { Duration } from 'luxon';
import { NetworkMatcher } from '../config/networks';
import type { TenantPolicy } from '../config/policy';
import { compileKillChain, type KillChainMapping } from '../correlation/killchain';
import { type CorrelationSettings, compileCorrelationSettings } from '../correlation/plan';
import type { NistLevel } from '../model/domain';
import { assessScenario, findScenario } from '../severity/nist';
import type { PolicyEntityFacts } from './facts';

/** One entry of the tenant's rule map (`rules.K4-1`). */
export interface RuleRef {
  /** The key as written in the policy (`K4-1`, a GUID). */
  readonly key: string;
  /** Lower-cased key for matching. */
  readonly lower: string;
  readonly entry: TenantPolicy['rules'][string];
}

/** The compiled form of a tenant policy. */
export interface CompiledPolicy {
  readonly policy: TenantPolicy;
  readonly internal: NetworkMatcher;
  readonly dmz: NetworkMatcher;
  readonly maintenanceHosts: NetworkMatcher;
  readonly dmzManagementDevices: NetworkMatcher;
  readonly blacklistIps: NetworkMatcher;
  /** Lower-cased domains, no trailing dot. */
  readonly blacklistDomains: ReadonlySet<string>;
  /** Lower-cased hash values without algorithm prefix. */
  readonly blacklistHashes: ReadonlySet<string>;
  /** Rules by lower-cased key (exact rule id / code match). */
  readonly rulesByKey: ReadonlyMap<string, RuleRef>;
  /** Rules for name-prefix matching, longest key first (so `K1-10` wins over `K1-1`). */
  readonly rulesByLength: readonly RuleRef[];
  readonly killChain: KillChainMapping;
  readonly correlation: CorrelationSettings;
  /** First-report SLA (`sla.notifyWithin`) in ms. */
  readonly notifyWithinMs: number;
  /**
   * NIST threat level by scenario name (`null`: no such scenario), filled as names are asked:
   * scoring asks for the same few scenarios case after case.
   */
  readonly threatLevels: Map<string, NistLevel | null>;
  /**
   * What this policy says about ip and host entities, by entity key (see `facts.ts`, `PolicyEntityFacts`),
   * filled as keys are seen: the same addresses and hosts come back case after case, and working it out
   * costs an address parse and half a dozen list matches. Bounded (cleared when full).
   */
  readonly entityFacts: Map<string, PolicyEntityFacts>;
}

const cache = new WeakMap<TenantPolicy, CompiledPolicy>();

/** Strips an algorithm prefix (`sha256:abc` → `abc`) and lower-cases a hash. */
export function bareHash(h: string): string {
  const t = h.trim().toLowerCase();
  const i = t.lastIndexOf(':');
  return i < 0 ? t : t.slice(i + 1);
}

/** The threat level of a scenario under a compiled policy (the tenant's own scenario, else the built-in one); memoised. */
export function threatLevelOf(p: CompiledPolicy, scenarioName: string): NistLevel | undefined {
  let level = p.threatLevels.get(scenarioName);
  if (level === undefined) {
    const scenario = findScenario(scenarioName, p.policy);
    level = scenario ? assessScenario(scenario).level : null;
    // Names come from the policy and the playbooks, but bound the memo anyway.
    if (p.threatLevels.size >= 1000) p.threatLevels.clear();
    p.threatLevels.set(scenarioName, level);
  }
  return level ?? undefined;
}

/** The compiled form of a policy (cached per policy object). */
export function compilePolicy(policy: TenantPolicy): CompiledPolicy {
  const hit = cache.get(policy);
  if (hit) return hit;
  const rules = Object.entries(policy.rules).map(([key, entry]) => ({ key, lower: key.trim().toLowerCase(), entry }));
  const compiled: CompiledPolicy = {
    policy,
    internal: new NetworkMatcher(policy.network.internal),
    dmz: new NetworkMatcher(policy.network.dmz),
    maintenanceHosts: new NetworkMatcher(policy.network.maintenanceHosts),
    dmzManagementDevices: new NetworkMatcher(policy.network.dmzManagementDevices),
    blacklistIps: new NetworkMatcher(policy.blacklists.ip),
    blacklistDomains: new Set(policy.blacklists.domain.map((d) => d.trim().toLowerCase().replace(/\.$/, ''))),
    blacklistHashes: new Set(policy.blacklists.filehash.map(bareHash)),
    rulesByKey: new Map(rules.map((r) => [r.lower, r])),
    rulesByLength: [...rules].sort((a, b) => b.lower.length - a.lower.length || a.lower.localeCompare(b.lower)),
    killChain: compileKillChain(policy.killChain),
    correlation: compileCorrelationSettings(policy),
    notifyWithinMs: Duration.fromISO(policy.sla.notifyWithin).as('milliseconds'),
    threatLevels: new Map(),
    entityFacts: new Map(),
  };
  cache.set(policy, compiled);
  return compiled;
}
