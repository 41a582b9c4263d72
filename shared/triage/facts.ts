/**
 * Facts about a case's entities under a tenant policy: internal/external,
 * maintenance terminal, DMZ management device, indicator hits, command lines.
 * Computed once per (case, policy, indicator set) and shared by classification,
 * scoring and the first report.
 */
import { type NetworkMatcher, type ParsedIp, parseIp } from '../config/networks';
import { keyValue } from '../correlation/plan';
import type { Case, Entity } from '../model/domain';
import { bareHash, type CompiledPolicy } from './compiled';
import { type IndicatorHit, type IndicatorSet, lookupEntity } from './indicators';

/** Where an IP sits from the tenant's point of view. */
export const IP_SCOPES = ['internal', 'dmz', 'external'] as const;
/** An IP scope. */
export type IpScope = (typeof IP_SCOPES)[number];

/** Facts about one entity. */
export interface EntityFacts {
  readonly entity: Entity;
  /** The key's value (`203.0.113.77`, `vpn01.corp.contoso.example`). */
  readonly value: string;
  /** For IPs: internal (policy `network.internal`, or RFC 1918/4193 when the list is empty), DMZ, or external. */
  readonly scope?: IpScope;
  /** Matches `network.maintenanceHosts` (host name or IP/CIDR). */
  readonly maintenance: boolean;
  /** Matches `network.dmzManagementDevices`. */
  readonly dmzManagement: boolean;
  /** Known-bad match (tenant blacklist or global indicator set). */
  readonly indicator?: IndicatorHit;
}

/** Facts about a case. */
export interface CaseFacts {
  readonly entities: readonly EntityFacts[];
  readonly indicatorHits: readonly IndicatorHit[];
  /**
   * Whether the activity ran on a maintenance terminal (which lowers command execution from
   * critical to medium). Conservative, so a real attack is never downgraded: every entity the
   * activity may have run on must match `network.maintenanceHosts`. Those entities are the host
   * entities when the case has any (each matched by its name, or by its address when it is
   * named by one; the model ties no IP entity to a host, so an IP entity of the case never makes
   * a host a maintenance terminal: it may be the peer, not the host); with no host entity, the
   * IP entities (all of them must match); with neither, false.
   */
  readonly maintenanceTerminal: boolean;
  /**
   * Labels of the entities the activity may have run on (`maintenanceTerminal`'s subjects: the
   * hosts, else the IPs) that are maintenance terminals.
   */
  readonly maintenanceMatches: readonly string[];
  /**
   * Labels of the entities the activity may have run on (the hosts, else the IPs) that are not
   * maintenance terminals: what keeps `maintenanceTerminal` false, named in the reason.
   */
  readonly nonMaintenanceSubjects: readonly string[];
  /** Labels of DMZ management devices among the entities. */
  readonly dmzManagementDevices: readonly string[];
  /** Command lines of process entities (raw, attacker-controlled). */
  readonly commandLines: readonly string[];
  readonly hosts: readonly EntityFacts[];
  readonly ips: readonly EntityFacts[];
  readonly accounts: readonly EntityFacts[];
  /** Some IP entity is external. */
  readonly hasExternalIp: boolean;
  /** There are IP entities and all are internal or DMZ. */
  readonly internalOnly: boolean;
}

const PRIVATE_RANGES: ReadonlySet<string> = new Set(['private', 'uniqueLocal', 'loopback', 'linkLocal']);
const URL_HOST_RE = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^/:?#[\]]+)/i;

function ipScope(ip: ParsedIp, p: CompiledPolicy): IpScope {
  if (p.dmz.matchesIp(ip)) return 'dmz';
  if (p.internal.hasAddresses) return p.internal.matchesIp(ip) ? 'internal' : 'external';
  // No internal ranges in the policy: fall back to the private address ranges.
  return PRIVATE_RANGES.has(ip.range) ? 'internal' : 'external';
}

function domainListed(domain: string, listed: ReadonlySet<string>): string | undefined {
  let d = domain.toLowerCase().replace(/\.$/, '');
  // A listed domain also covers its subdomains.
  for (;;) {
    if (listed.has(d)) return d;
    const dot = d.indexOf('.');
    if (dot < 0) return undefined;
    d = d.slice(dot + 1);
  }
}

function policyHit(e: Entity, value: string, parsed: ParsedIp | undefined, p: CompiledPolicy): IndicatorHit | undefined {
  switch (e.kind) {
    case 'ip':
      return parsed && p.blacklistIps.matchesIp(parsed) ? { key: e.key, source: 'policy:blacklists.ip' } : undefined;
    case 'domain': {
      const d = p.blacklistDomains.size > 0 ? domainListed(value, p.blacklistDomains) : undefined;
      return d ? { key: e.key, source: 'policy:blacklists.domain', description: `listed domain ${d}` } : undefined;
    }
    case 'url': {
      const host = p.blacklistDomains.size > 0 ? URL_HOST_RE.exec(value)?.[1] : undefined;
      const d = host ? domainListed(host, p.blacklistDomains) : undefined;
      return d ? { key: e.key, source: 'policy:blacklists.domain', description: `URL on listed domain ${d}` } : undefined;
    }
    case 'filehash':
      return p.blacklistHashes.has(bareHash(value)) ? { key: e.key, source: 'policy:blacklists.filehash' } : undefined;
    default:
      return undefined;
  }
}

function commandLineOf(e: Entity): string | undefined {
  const v = e.fields.commandLine ?? e.fields.CommandLine;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function hostMatches(e: Entity, list: NetworkMatcher): boolean {
  if (list.empty) return false;
  if (list.matchesHost(keyValue(e.key))) return true;
  for (const k of e.altKeys) if (list.matchesHost(keyValue(k))) return true;
  return false;
}

/** A host entity named by its address (`host:10.20.9.3`) is that address: it matches the list's IPs and CIDRs. */
function hostAddressMatches(e: Entity, list: NetworkMatcher): boolean {
  // A list of host names only (the usual maintenance list) cannot match an address: no parse.
  if (!list.hasAddresses) return false;
  const ip = parseIp(keyValue(e.key));
  return ip !== undefined && list.matchesIp(ip);
}

/**
 * What a policy says about an ip or host entity, a function of its kind, key and alt keys only
 * (the global indicator set is looked up per case, as it is not the policy's).
 */
export interface PolicyEntityFacts {
  readonly kind: 'ip' | 'host';
  /** The alt keys it was worked out with (a host's names are matched through them too). */
  readonly altKeys: readonly string[];
  /** The key's value (`keyValue`). */
  readonly value: string;
  readonly scope: IpScope | undefined;
  readonly maintenance: boolean;
  readonly dmzManagement: boolean;
  /** The policy blacklist hit (ips only). */
  readonly policyHit: IndicatorHit | undefined;
}

/** Bound of a policy's entity memo: more keys than this just restart it. */
const ENTITY_MEMO_LIMIT = 10_000;

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function computePolicyEntityFacts(e: Entity, kind: 'ip' | 'host', p: CompiledPolicy): PolicyEntityFacts {
  const value = keyValue(e.key);
  if (kind === 'ip') {
    const parsed = parseIp(value);
    return {
      kind,
      altKeys: e.altKeys,
      value,
      scope: parsed ? ipScope(parsed, p) : undefined,
      maintenance: parsed ? p.maintenanceHosts.matchesIp(parsed) : false,
      dmzManagement: parsed ? p.dmzManagementDevices.matchesIp(parsed) : false,
      policyHit: policyHit(e, value, parsed, p),
    };
  }
  return {
    kind,
    altKeys: e.altKeys,
    value,
    scope: undefined,
    maintenance: hostMatches(e, p.maintenanceHosts) || hostAddressMatches(e, p.maintenanceHosts),
    dmzManagement: hostMatches(e, p.dmzManagementDevices),
    policyHit: undefined,
  };
}

/**
 * The policy's facts about an ip or host entity, memoised per compiled policy by key. An entry is
 * used only for the same kind and alt keys, so an entity spelt differently is worked out afresh.
 */
export function policyEntityFacts(e: Entity, kind: 'ip' | 'host', p: CompiledPolicy): PolicyEntityFacts {
  const known = p.entityFacts.get(e.key);
  if (known !== undefined && known.kind === kind && sameKeys(known.altKeys, e.altKeys)) return known;
  const facts = computePolicyEntityFacts(e, kind, p);
  if (p.entityFacts.size >= ENTITY_MEMO_LIMIT) p.entityFacts.clear();
  p.entityFacts.set(e.key, facts);
  return facts;
}

/** Computes the facts of a case (uncached; see `factsOf`). */
export function computeFacts(c: Case, p: CompiledPolicy, indicators: IndicatorSet | undefined): CaseFacts {
  const entities: EntityFacts[] = [];
  const hits: IndicatorHit[] = [];
  const commandLines: string[] = [];
  // The per-kind lists and flags are gathered in the one pass over the entities (in entity
  // order, as filtering afterwards would give): this runs once per case on the hot path.
  const hosts: EntityFacts[] = [];
  const ips: EntityFacts[] = [];
  const accounts: EntityFacts[] = [];
  const dmzManagementDevices: string[] = [];
  let scopedIps = 0;
  let hasExternalIp = false;
  for (const e of c.entities) {
    let value: string;
    let scope: IpScope | undefined;
    let maintenance = false;
    let dmzManagement = false;
    let ownHit: IndicatorHit | undefined;
    if (e.kind === 'ip' || e.kind === 'host') {
      const pf = policyEntityFacts(e, e.kind, p);
      value = pf.value;
      scope = pf.scope;
      maintenance = pf.maintenance;
      dmzManagement = pf.dmzManagement;
      ownHit = pf.policyHit;
    } else {
      value = keyValue(e.key);
      if (e.kind === 'process') {
        const cl = commandLineOf(e);
        if (cl) commandLines.push(cl);
      }
      ownHit = policyHit(e, value, undefined, p);
    }
    const indicator = ownHit ?? lookupEntity(indicators, e);
    if (indicator) hits.push(indicator);
    const f: { -readonly [K in keyof EntityFacts]: EntityFacts[K] } = { entity: e, value, maintenance, dmzManagement };
    if (scope) f.scope = scope;
    if (indicator) f.indicator = indicator;
    entities.push(f);
    if (dmzManagement) dmzManagementDevices.push(e.label);
    if (e.kind === 'host') {
      hosts.push(f);
    } else if (e.kind === 'ip') {
      ips.push(f);
      if (scope !== undefined) {
        scopedIps++;
        if (scope === 'external') hasExternalIp = true;
      }
    } else if (e.kind === 'account') {
      accounts.push(f);
    }
  }
  // Where the activity ran: the host entities; only without any, the IP entities (see CaseFacts).
  const maintenanceMatches: string[] = [];
  const nonMaintenanceSubjects: string[] = [];
  for (const f of hosts.length === 0 ? ips : hosts) (f.maintenance ? maintenanceMatches : nonMaintenanceSubjects).push(f.entity.label);
  return {
    entities,
    indicatorHits: hits,
    maintenanceTerminal: maintenanceMatches.length > 0 && nonMaintenanceSubjects.length === 0,
    maintenanceMatches,
    nonMaintenanceSubjects,
    dmzManagementDevices,
    commandLines,
    hosts,
    ips,
    accounts,
    hasExternalIp,
    internalOnly: scopedIps > 0 && !hasExternalIp,
  };
}

interface FactsEntry {
  readonly case: Case;
  readonly policy: CompiledPolicy;
  readonly indicators: IndicatorSet | undefined;
  readonly facts: CaseFacts;
}

/**
 * The last few cases' facts. Classification and scoring of one case ask for the same facts a
 * few calls apart (other cases may be triaged in between when the pipeline runs concurrently),
 * so a short ring of recent entries serves them; a WeakMap did too, at the price of an
 * ephemeron-table insert per case and its clean-up by the GC. A miss only recomputes (facts
 * are pure); the ring keeps at most RECENT cases alive a little longer.
 */
const RECENT = 16;
const recent: (FactsEntry | undefined)[] = [];
let next = 0;

/** The facts of a case, cached for the last few (case object, policy, indicator set) asked. */
export function factsOf(c: Case, p: CompiledPolicy, indicators: IndicatorSet | undefined): CaseFacts {
  for (const e of recent) if (e !== undefined && e.case === c && e.policy === p && e.indicators === indicators) return e.facts;
  const facts = computeFacts(c, p, indicators);
  recent[next] = { case: c, policy: p, indicators, facts };
  next = (next + 1) % RECENT;
  return facts;
}
