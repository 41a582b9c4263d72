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
import { type Case, ENTITY_KINDS, type Entity, type EntityKind, type KillChainPhase, type KillChainVerdict } from '../model/domain';
import { MAX_KEY_VALUE_CHARS } from '../model/entities';
import { isoString, parseInstant } from '../model/instant';
import type { CorrelationPlan } from '../pipeline/brain';
import type { EntitySighting, RelatedQuery } from '../store/port';

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
  /** The policy's `directory` section compiled; undefined (the usual tenant) when it maps nothing: then no alias is derived. */
  readonly directory?: AccountDirectory;
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
    directory: compileAccountDirectory(policy.directory),
  };
}

/**
 * What the pipeline must look up for a case: the keys and alt keys of its ip,
 * host and account entities minus the non-correlating ones (reported in
 * `ignored` with why), the window and this case's own phases. With a policy
 * `directory`, an account's alias keys (`accountAliasKeys`) count as alt keys: they
 * are looked up and stored like its own, and a non-correlating entry matches an
 * account through them too (`account:svc-scan@contoso.com` also stops `CONTOSO\svc-scan`).
 */
export function buildCorrelationPlan(c: Case, phases: readonly KillChainPhase[], settings: CorrelationSettings): CorrelationPlan {
  const keys = new Set<string>();
  const ignored: { key: string; why: string }[] = [];
  const dir = settings.directory;
  for (const entity of c.entities) {
    if (!CORRELATING_KINDS.has(entity.kind)) continue;
    // Only a tenant with a directory pays for aliases; for the others the entity is used as is (nothing allocated).
    const e = dir !== undefined && entity.kind === 'account' ? withAliasKeys(entity, dir) : entity;
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

/**
 * A tenant's `directory` section compiled: which UPN suffixes a NetBIOS domain has and which domain a suffix
 * belongs to, all lower-case as account keys spell them (`account:contoso\alice`, `account:alice@contoso.com`).
 */
export interface AccountDirectory {
  /** NetBIOS domain → its UPN suffixes, in policy order. */
  readonly suffixesOf: ReadonlyMap<string, readonly string[]>;
  /** UPN suffix → its NetBIOS domain. */
  readonly domainOf: ReadonlyMap<string, string>;
}

/** Compiles a policy's `directory` section; undefined when it maps nothing, so a tenant without one pays nothing. */
export function compileAccountDirectory(directory: TenantPolicy['directory']): AccountDirectory | undefined {
  if (directory === undefined || directory.domains.length === 0) return undefined;
  const suffixesOf = new Map<string, readonly string[]>();
  const domainOf = new Map<string, string>();
  for (const d of directory.domains) {
    // The schema lower-cases and refuses ambiguity; lower-cased again (first entry wins) for a policy built in code.
    const domain = d.netbios.toLowerCase();
    const suffixes = d.upnSuffixes.map((s) => s.toLowerCase());
    if (!suffixesOf.has(domain)) suffixesOf.set(domain, suffixes);
    for (const s of suffixes) if (!domainOf.has(s)) domainOf.set(s, domain);
  }
  return { suffixesOf, domainOf };
}

/** The two spellings of an account that an alias translates between. */
type AccountForm =
  | { readonly form: 'nt'; readonly domain: string; readonly name: string }
  | { readonly form: 'upn'; readonly name: string; readonly suffix: string };

const ACCOUNT_PREFIX = 'account:';
/** Account key values that are identifiers, not names: never aliased. */
const ID_ACCOUNT_PREFIXES = ['aad:', 'sid:'];
/** An account key too long to keep verbatim (`makeKey` in `shared/model/entities.ts`): its spelling cannot be read. */
const HASHED_ACCOUNT_PREFIX = 'account:~sha256:';

/**
 * The spelling of an account key: `account:<ntdomain>\<name>` or `account:<name>@<suffix>` (as `shared/model/entities.ts`
 * builds them), else undefined: a bare `account:<name>` ("administrator" exists everywhere), an object id or SID.
 */
function accountFormOf(key: string): AccountForm | undefined {
  if (!key.startsWith(ACCOUNT_PREFIX)) return undefined;
  const v = key.slice(ACCOUNT_PREFIX.length);
  for (const p of ID_ACCOUNT_PREFIXES) if (v.startsWith(p)) return undefined;
  const slash = v.indexOf('\\');
  if (slash >= 0) {
    const name = v.slice(slash + 1);
    // `a\b\c` (a domain field that held a backslash) or a name with `@` is no plain NT spelling: no alias from it.
    return slash > 0 && name.length > 0 && !name.includes('\\') && !name.includes('@')
      ? { form: 'nt', domain: v.slice(0, slash), name }
      : undefined;
  }
  const at = v.indexOf('@');
  return at > 0 && at === v.lastIndexOf('@') && at < v.length - 1
    ? { form: 'upn', name: v.slice(0, at), suffix: v.slice(at + 1) }
    : undefined;
}

/**
 * The alias keys the tenant's directory gives an account entity (its own keys left out), in derivation order:
 * - known in NT form only (`account:contoso\alice`, no UPN key): `account:alice@<suffix>` for EVERY UPN suffix of
 *   its domain. All, not the first only: the opposite direction below maps every listed suffix back to the domain,
 *   so this keeps the relation symmetric: `CONTOSO\alice` links with `alice@contoso.onmicrosoft.com` whichever
 *   arrived first and even when that case was stored before the policy had a directory, and a link made through
 *   the directory always shows up under one of the case's own alias keys (which is how `noteDirectoryAliases`
 *   can say so). The price is one key (one store row) per suffix, at most 20 (schema bound), usually one or two;
 * - known by UPN only (`account:alice@contoso.com`, no NT key): `account:<domain>\alice` for the domain of its suffix.
 * An account that carries both spellings gets nothing (the alert's own NT domain wins over one derived from a
 * suffix), nor does one with a hashed key (its spelling cannot be read), a bare name, an object id or a SID.
 */
export function accountAliasKeys(e: Entity, dir: AccountDirectory): string[] {
  if (e.kind !== 'account') return [];
  const forms: AccountForm[] = [];
  let hasNt = false;
  let hasUpn = false;
  for (let i = -1; i < e.altKeys.length; i++) {
    const key = i < 0 ? e.key : (e.altKeys[i] as string);
    // A hashed key may be the UPN or the NT spelling: an alias could contradict it.
    if (key.startsWith(HASHED_ACCOUNT_PREFIX)) return [];
    const f = accountFormOf(key);
    if (f === undefined) continue;
    forms.push(f);
    if (f.form === 'nt') hasNt = true;
    else hasUpn = true;
  }
  const out: string[] = [];
  const add = (value: string): void => {
    // A longer value would be keyed by its hash on the other side (`makeKey`): no real account name is that long.
    if (value.length > MAX_KEY_VALUE_CHARS) return;
    const k = `${ACCOUNT_PREFIX}${value}`;
    if (!out.includes(k)) out.push(k);
  };
  for (const f of forms) {
    switch (f.form) {
      case 'nt':
        if (!hasUpn) for (const s of dir.suffixesOf.get(f.domain) ?? []) add(`${f.name}@${s}`);
        break;
      case 'upn': {
        const domain = hasNt ? undefined : dir.domainOf.get(f.suffix);
        if (domain !== undefined) add(`${domain}\\${f.name}`);
        break;
      }
      default: {
        const never: never = f;
        return never;
      }
    }
  }
  return out;
}

/** The entity with its alias keys appended to its alt keys, or the entity itself when it gets none. */
function withAliasKeys(e: Entity, dir: AccountDirectory): Entity {
  const aliases = accountAliasKeys(e, dir);
  return aliases.length === 0 ? e : { ...e, altKeys: [...e.altKeys, ...aliases] };
}

/**
 * The case as correlation sees it under a directory: each account entity with its alias keys among its alt keys,
 * so `correlateCase` counts rows found through an alias as rows of that entity (as `buildCorrelationPlan` put the
 * aliases in the plan). The case itself when there is no directory or no alias applies; never changes `c`.
 */
export function withAccountAliases(c: Case, dir: AccountDirectory | undefined): Case {
  if (dir === undefined) return c;
  let entities: Entity[] | undefined;
  for (let i = 0; i < c.entities.length; i++) {
    const e = c.entities[i] as Entity;
    if (e.kind !== 'account') continue;
    const aliased = withAliasKeys(e, dir);
    if (aliased === e) continue;
    entities ??= c.entities.slice();
    entities[i] = aliased;
  }
  return entities === undefined ? c : { ...c, entities };
}

/** Alias keys named in a verdict's detail; more are counted. */
const MAX_LISTED_ALIASES = 3;

/**
 * The verdict with its detail saying which directory aliases linked it: every alias key of this case's accounts
 * under which a related case (of `verdict.relatedCaseIds`, on an entity not ignored) was found, as
 * `through directory alias account:alice@contoso.com for account:contoso\alice`. The verdict itself when none did.
 * Because aliases are symmetric (see `accountAliasKeys`), a link that exists only thanks to the directory is
 * always found under an alias key of this case too. The converse does not hold: every case stores its alias rows
 * under the same keys as natural ones, so two alerts spelling the account the same way also meet under an alias
 * and are named as well. From the rows alone the two cannot be told apart (a row does not say whether it is an
 * alias): the note says the directory links them, not that only it does.
 */
export function noteDirectoryAliases(
  verdict: KillChainVerdict,
  c: Case,
  sightings: readonly EntitySighting[],
  dir: AccountDirectory,
): KillChainVerdict {
  if (verdict.relatedCaseIds.length === 0 || verdict.detail === undefined) return verdict;
  // alias key → the key of the entity it is an alias of
  const aliasOf = new Map<string, string>();
  for (const e of c.entities) {
    if (e.kind !== 'account' || verdict.ignoredEntities.some((i) => i.key === e.key)) continue;
    for (const a of accountAliasKeys(e, dir)) if (!aliasOf.has(a)) aliasOf.set(a, e.key);
  }
  // An alias that is also a key of one of the case's entities (both spellings as two entities) linked nothing new.
  for (const e of c.entities) {
    aliasOf.delete(e.key);
    for (const k of e.altKeys) aliasOf.delete(k);
  }
  if (aliasOf.size === 0) return verdict;
  const related = new Set(verdict.relatedCaseIds);
  const used: string[] = [];
  for (const s of sightings) {
    if (s.caseId === c.caseId || !related.has(s.caseId) || !aliasOf.has(s.entityKey) || used.includes(s.entityKey)) continue;
    used.push(s.entityKey);
  }
  if (used.length === 0) return verdict;
  const shown = used.slice(0, MAX_LISTED_ALIASES).map((a) => `${a} for ${aliasOf.get(a)}`);
  const more = used.length > MAX_LISTED_ALIASES ? `, +${used.length - MAX_LISTED_ALIASES} more` : '';
  return { ...verdict, detail: `${verdict.detail}; through directory alias ${shown.join(', ')}${more}` };
}
