/**
 * Which entity keys of a case link it to other cases, and which must not
 * (scanners, DNS servers, the VPN gateway, SYSTEM …).
 *
 * Correlating kinds: `ip`, `host`, `account` only. Other kinds are left out on
 * purpose: `filehash`/`process`/`file` of common binaries (powershell.exe, its
 * hash, cmd.exe) appear in unrelated command-execution alerts on every host;
 * `domain`/`url`/`cloud-app` of SaaS and CDN names would link unrelated cases
 * below the infrastructure threshold; `mailbox` duplicates the account. They are
 * not listed in `ignored` (that list is for entities a tenant would expect to link).
 */
import { Duration } from 'luxon';
import { NetworkMatcher, parseIp } from '../config/networks';
import type { TenantPolicy } from '../config/policy';
import { type Case, ENTITY_KINDS, type Entity, type EntityKind, type KillChainPhase } from '../model/domain';
import { isoString, parseInstant } from '../model/instant';
import type { CorrelationPlan } from '../pipeline/brain';
import type { RelatedQuery } from '../store/port';

/** Entity kinds whose keys are used to find related cases. */
export const CORRELATING_KINDS: ReadonlySet<EntityKind> = new Set<EntityKind>(['ip', 'host', 'account']);

/** Accounts that exist on every Windows machine: they never identify an attacker or a victim. */
const BUILTIN_ACCOUNTS: ReadonlySet<string> = new Set([
  'system',
  'localsystem',
  'local system',
  'local service',
  'localservice',
  'network service',
  'networkservice',
  'anonymous logon',
  '-',
  '',
]);
/** Domains whose accounts are all built-in virtual accounts (`NT AUTHORITY\SYSTEM`, `Window Manager\DWM-1`, `Font Driver Host\UMFD-0`). */
const BUILTIN_ACCOUNT_DOMAINS = ['nt authority\\', 'window manager\\', 'font driver host\\'];
const BUILTIN_HOSTS: ReadonlySet<string> = new Set(['localhost', 'localhost.localdomain', '-', '']);
/** ipaddr.js ranges that never identify one machine. */
const BUILTIN_IP_RANGES: ReadonlyMap<string, string> = new Map([
  ['loopback', 'loopback address'],
  ['unspecified', 'unspecified address'],
  ['linkLocal', 'link-local address'],
  ['multicast', 'multicast address'],
  ['broadcast', 'broadcast address'],
]);

const ENTITY_KEY_RE = new RegExp(`^(${ENTITY_KINDS.join('|')}):(.*)$`, 'i');

/** The value part of an entity key (`ip:10.0.0.1` → `10.0.0.1`). */
export function keyValue(key: string): string {
  const i = key.indexOf(':');
  return i < 0 ? key : key.slice(i + 1);
}

function isBuiltinAccount(key: string): boolean {
  const v = keyValue(key).toLowerCase();
  if (BUILTIN_ACCOUNTS.has(v)) return true;
  for (const d of BUILTIN_ACCOUNT_DOMAINS) if (v.startsWith(d)) return true;
  return false;
}

/** Why a built-in rule excludes this entity from correlation, or undefined. */
export function builtinNonCorrelating(e: Entity): string | undefined {
  switch (e.kind) {
    case 'ip': {
      const parsed = parseIp(keyValue(e.key));
      const what = parsed ? BUILTIN_IP_RANGES.get(parsed.range) : undefined;
      return what ? `built-in: ${what}` : undefined;
    }
    case 'host': {
      // The alt keys too: `localhost.corp.example` carries the short key `host:localhost`, which would
      // link every machine that calls itself localhost, whatever its domain.
      if (BUILTIN_HOSTS.has(keyValue(e.key).toLowerCase())) return 'built-in: local host name';
      for (const k of e.altKeys) if (BUILTIN_HOSTS.has(keyValue(k).toLowerCase())) return 'built-in: local host name';
      return undefined;
    }
    case 'account': {
      if (isBuiltinAccount(e.key)) return 'built-in: well-known system account';
      for (const k of e.altKeys) if (isBuiltinAccount(k)) return 'built-in: well-known system account';
      return undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The tenant's `network.nonCorrelating` list, compiled. Entries are either entity
 * keys (`account:svc-scan@contoso.example`, `host:dns01`, `ip:10.0.0.0/24`) or plain
 * IPs, CIDR blocks and host names (matched against ip and host entities, host names
 * short or fully qualified).
 */
export class NonCorrelatingList {
  private readonly keys = new Map<string, string>();
  private readonly networks: NetworkMatcher;

  /** Compiles the list. */
  constructor(entries: readonly string[]) {
    const networkEntries: string[] = [];
    for (const raw of entries) {
      const entry = raw.trim();
      const m = ENTITY_KEY_RE.exec(entry);
      if (m) {
        const kind = (m[1] ?? '').toLowerCase();
        const value = m[2] ?? '';
        this.keys.set(`${kind}:${value.toLowerCase()}`, entry);
        // `ip:` and `host:` entries may also be CIDRs / short names: match them like plain entries.
        if (kind === 'ip' || kind === 'host') networkEntries.push(value);
      } else {
        networkEntries.push(entry);
      }
    }
    this.networks = new NetworkMatcher(networkEntries);
  }

  /** Why the policy excludes this entity, or undefined. */
  why(e: Entity): string | undefined {
    // Runs for every correlating entity of every case, and most tenants list nothing: skip empty parts.
    if (this.keys.size > 0) {
      const entry = this.keys.get(e.key.toLowerCase()) ?? this.altKeyEntry(e.altKeys);
      if (entry !== undefined) return `policy network.nonCorrelating: ${entry}`;
    }
    if (this.networks.empty) return undefined;
    if (e.kind === 'ip' && this.networks.hasAddresses) {
      const parsed = parseIp(keyValue(e.key));
      if (parsed && this.networks.matchesIp(parsed)) return 'policy network.nonCorrelating: IP/CIDR match';
    }
    if (e.kind === 'host') {
      if (this.networks.matchesHost(keyValue(e.key))) return 'policy network.nonCorrelating: host name match';
      for (const k of e.altKeys) {
        if (this.networks.matchesHost(keyValue(k))) return 'policy network.nonCorrelating: host name match';
      }
    }
    return undefined;
  }

  private altKeyEntry(altKeys: readonly string[]): string | undefined {
    for (const k of altKeys) {
      const entry = this.keys.get(k.toLowerCase());
      if (entry !== undefined) return entry;
    }
    return undefined;
  }
}

/** Correlation settings of a tenant, compiled once per policy. */
export interface CorrelationSettings {
  /** Look-up window around detectedAt, both directions, in ms. */
  readonly windowMs: number;
  /** The window as written in the policy (`P7D`), for explanations. */
  readonly windowText: string;
  /** A key seen in more than this many other cases within the window is infrastructure. */
  readonly infrastructureThreshold: number;
  /** Multi-stage when at least this many distinct phases are seen on one entity. */
  readonly distinctPhases: number;
  /** Multi-stage when a later phase follows an earlier one on the same entity (by detectedAt). */
  readonly progression: boolean;
  readonly nonCorrelating: NonCorrelatingList;
}

/** Compiles a policy's correlation settings (callers cache per policy object). */
export function compileCorrelationSettings(policy: TenantPolicy): CorrelationSettings {
  const c = policy.correlation;
  return {
    windowMs: Duration.fromISO(c.window).as('milliseconds'),
    windowText: c.window,
    infrastructureThreshold: c.infrastructureThreshold,
    distinctPhases: c.escalateWhen.distinctPhases,
    progression: c.escalateWhen.progression,
    nonCorrelating: new NonCorrelatingList(policy.network.nonCorrelating),
  };
}

/**
 * What the pipeline must look up for a case: the keys and alt keys of its ip,
 * host and account entities minus the non-correlating ones (reported in
 * `ignored` with why), the window and this case's own phases.
 */
export function buildCorrelationPlan(c: Case, phases: readonly KillChainPhase[], settings: CorrelationSettings): CorrelationPlan {
  const keys = new Set<string>();
  const ignored: { key: string; why: string }[] = [];
  for (const e of c.entities) {
    if (!CORRELATING_KINDS.has(e.kind)) continue;
    const why = builtinNonCorrelating(e) ?? settings.nonCorrelating.why(e);
    if (why) {
      ignored.push({ key: e.key, why });
      continue;
    }
    keys.add(e.key);
    for (const k of e.altKeys) keys.add(k);
  }
  const all = [...keys];
  return {
    keys: all,
    lookup: lookupKeys(all),
    ignored,
    windowMs: settings.windowMs,
    infrastructureThreshold: settings.infrastructureThreshold,
    phases,
  };
}

/** Host keys that are device ids, not names (`host:azure:…`, `host:mde:…`, `host:oms:…`): never shortened. */
const DEVICE_ID_PREFIXES = ['host:azure:', 'host:mde:', 'host:oms:'];

/**
 * The keys worth a store look-up, out of a plan's keys. Every host entity that has an FQDN or
 * a NetBIOS spelling also carries its short name (`host:vpn01`), and every case indexes all of
 * its spellings, so the short key's sightings are a superset of the FQDN's and the NetBIOS
 * form's: looking up the short key alone finds exactly the same related cases (correlation
 * already treats all spellings of one entity as one), with a third of the rows. A spelling is
 * dropped only when its short key is itself among the keys.
 */
export function lookupKeys(keys: readonly string[]): string[] {
  // A plan usually has a handful of keys: a linear search beats building a set for them.
  const all: { has(k: string): boolean } = keys.length > 16 ? new Set(keys) : { has: (k) => keys.includes(k) };
  return keys.filter((k) => {
    if (!k.startsWith('host:') || isDeviceIdKey(k)) return true;
    const name = k.slice('host:'.length);
    const afterDomain = name.includes('\\') ? name.slice(name.lastIndexOf('\\') + 1) : name;
    const short = afterDomain.includes('.') ? afterDomain.slice(0, afterDomain.indexOf('.')) : afterDomain;
    const shortKey = `host:${short}`;
    return shortKey === k || !all.has(shortKey);
  });
}

function isDeviceIdKey(k: string): boolean {
  for (const p of DEVICE_ID_PREFIXES) if (k.startsWith(p)) return true;
  return false;
}

/**
 * The store query for a case's correlation candidates: the plan's look-up keys within
 * detectedAt ± window (order-independent), the case's own rows left out, and one row past the
 * infrastructure threshold, so a key at the threshold comes back as saturated.
 */
export function relatedQuery(c: Pick<Case, 'tenantId' | 'caseId' | 'detectedAt'>, plan: CorrelationPlan): RelatedQuery {
  const at = parseInstant(c.detectedAt);
  return {
    tenantId: c.tenantId,
    keys: plan.lookup,
    from: isoString(at - plan.windowMs),
    to: isoString(at + plan.windowMs),
    excludeCaseId: c.caseId,
    limitPerKey: plan.infrastructureThreshold + 1,
  };
}
