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
  /** An entity seen in more than this many other cases within the window (under any of its keys) is infrastructure. */
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
 * `directory`, an account's alias keys (`accountAliasKeys`) are looked up (appended to
 * `lookup`) but never stored (`keys` holds the case's own spellings only, as without a
 * directory): a row always says how an alert spelt the account, so removing a mapping
 * ends every link made through it at once. A non-correlating entry matches an account
 * through its aliases too (`account:svc-scan@contoso.com` also stops `CONTOSO\svc-scan`).
 */
export function buildCorrelationPlan(c: Case, phases: readonly KillChainPhase[], settings: CorrelationSettings): CorrelationPlan {
  const keys = new Set<string>();
  const ignored: { key: string; why: string }[] = [];
  const dir = settings.directory;
  // The accounts' alias keys; stays undefined (nothing allocated) for a tenant without a directory.
  let aliases: string[] | undefined;
  for (const entity of c.entities) {
    if (!CORRELATING_KINDS.has(entity.kind)) continue;
    // Only a tenant with a directory pays for aliases; for the others the entity is used as is (nothing allocated).
    const e = dir !== undefined && entity.kind === 'account' ? withAliasKeys(entity, dir) : entity;
    const why = builtinNonCorrelating(e) ?? settings.nonCorrelating.why(e);
    if (why) {
      ignored.push({ key: e.key, why });
      continue;
    }
    // Stored under its own spellings only: the aliases (appended past them by `withAliasKeys`) are looked up.
    keys.add(entity.key);
    for (const k of entity.altKeys) keys.add(k);
    if (e !== entity) {
      aliases ??= [];
      for (let i = entity.altKeys.length; i < e.altKeys.length; i++) aliases.push(e.altKeys[i] as string);
    }
  }
  const all = [...keys];
  const lookup = lookupKeys(all);
  // An alias that is another entity's own key (both spellings as two entities), or another account's alias, is looked up once.
  if (aliases !== undefined) for (const a of aliases) if (!lookup.includes(a)) lookup.push(a);
  return {
    keys: all,
    lookup,
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
  const suffixesOf = new Map<string, string[]>();
  const domainOf = new Map<string, string>();
  for (const d of directory.domains) {
    // The schema lower-cases and refuses ambiguity; lower-cased again (first owner of a suffix wins) for a policy built
    // in code. Both maps are built from the same pairs, so they partition the accounts into the same classes (see
    // `accountAliasKeys`): a domain listed twice gets the suffixes of both entries, a suffix belongs to one domain.
    const domain = d.netbios.toLowerCase();
    for (const raw of d.upnSuffixes) {
      const s = raw.toLowerCase();
      if (domainOf.has(s)) continue;
      domainOf.set(s, domain);
      const list = suffixesOf.get(domain);
      if (list === undefined) suffixesOf.set(domain, [s]);
      else list.push(s);
    }
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
 * builds them), else undefined: a bare `account:<name>` ("administrator" exists everywhere), an object id, a SID or a
 * hashed key.
 */
function accountFormOf(key: string): AccountForm | undefined {
  if (!key.startsWith(ACCOUNT_PREFIX) || key.startsWith(HASHED_ACCOUNT_PREFIX)) return undefined;
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
 * The alias keys the tenant's directory gives an account entity: the rest of the equivalence class of each of its
 * readable spellings (its own keys left out), in derivation order. The directory makes `<domain>\name` and
 * `name@<suffix>` for every suffix of that domain one account:
 * - `account:contoso\alice` → `account:alice@<suffix>` for every UPN suffix of CONTOSO;
 * - `account:alice@<suffix>` → `account:contoso\alice` (the domain of the suffix) and `account:alice@<other suffix>` for
 *   every other suffix of that domain.
 * Aliases are only looked up, never stored, so a link through the directory is found only by the case that looks
 * its alias up: the relation is symmetric (the later case of a pair finds the earlier whichever came first, and also
 * one stored before the directory existed) only because every spelling expands to its whole class. For that reason
 * an account that carries both spellings expands each of them too (`CONTOSO\alice` + `alice@contoso.com` looks up
 * `alice@contoso.onmicrosoft.com`), even one whose own NT domain differs from the mapped one (`CORP\alice` +
 * `alice@contoso.com` looks up `contoso\alice`): `CONTOSO\alice` on its own looks `alice@contoso.com` up and finds it
 * anyway, so leaving it out would only make the link depend on arrival order.
 * Never aliased (each is its own class): a bare `account:<name>` ("administrator" exists everywhere), an object id,
 * a SID, a hashed key (its spelling cannot be read), an unmapped domain or suffix. The price is at most one look-up
 * key per suffix of the domain (at most 20, schema bound; usually one or two).
 */
export function accountAliasKeys(e: Entity, dir: AccountDirectory): string[] {
  if (e.kind !== 'account') return [];
  const out: string[] = [];
  const add = (value: string): void => {
    // A longer value would be keyed by its hash on the other side (`makeKey`): no real account name is that long.
    if (value.length > MAX_KEY_VALUE_CHARS) return;
    const k = `${ACCOUNT_PREFIX}${value}`;
    // One of the entity's own keys (two UPNs of one domain on one entity) is looked up as such, not as an alias.
    if (k === e.key || e.altKeys.includes(k) || out.includes(k)) return;
    out.push(k);
  };
  for (let i = -1; i < e.altKeys.length; i++) {
    // A hashed key has no readable spelling: it is left as is (accountFormOf refuses it), the other keys are expanded.
    const f = accountFormOf(i < 0 ? e.key : (e.altKeys[i] as string));
    if (f === undefined) continue;
    switch (f.form) {
      case 'nt':
        for (const s of dir.suffixesOf.get(f.domain) ?? []) add(`${f.name}@${s}`);
        break;
      case 'upn': {
        const domain = dir.domainOf.get(f.suffix);
        if (domain === undefined) break;
        add(`${domain}\\${f.name}`);
        for (const s of dir.suffixesOf.get(domain) ?? []) if (s !== f.suffix) add(`${f.name}@${s}`);
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
 * aliases in the plan's `lookup`), for linking and for its infrastructure threshold alike. The case itself when there
 * is no directory or no alias applies; never changes `c` (the case is stored under its own keys only).
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
 * The verdict with its detail saying which directory aliases linked it, as
 * `through directory alias account:alice@contoso.com for account:contoso\alice`: every alias key of this case's
 * accounts (on an entity not ignored) under which a related case (of `verdict.relatedCaseIds`) was found, when that
 * key is none of this case's own keys (`plan.keys`) and the related case was not also found under one of that account's own keys,
 * i.e. the account links the two only through the directory. The verdict itself when no alias did.
 * This is exact because aliases are only looked up, never stored (`buildCorrelationPlan`): a row under an alias key
 * is another case's own spelling, so two alerts spelling the account alike meet under their own key and are not
 * named, and every link the directory alone makes is found under an alias of this case (`accountAliasKeys` expands
 * every spelling to its whole class).
 */
export function noteDirectoryAliases(
  verdict: KillChainVerdict,
  c: Case,
  plan: CorrelationPlan,
  sightings: readonly EntitySighting[],
  dir: AccountDirectory,
): KillChainVerdict {
  if (verdict.relatedCaseIds.length === 0 || verdict.detail === undefined) return verdict;
  // The case's own keys, as the plan looks them up: a row under one of them links without the directory. Not every
  // key of its entities: those of an entity the policy leaves out are looked up only as another account's alias.
  const own = new Set(plan.keys);
  // alias key → the account it is an alias of (an alias that is another entity's own key linked nothing new)
  const aliasOf = new Map<string, Entity>();
  for (const e of c.entities) {
    if (e.kind !== 'account' || verdict.ignoredEntities.some((i) => i.key === e.key)) continue;
    for (const a of accountAliasKeys(e, dir)) if (!own.has(a) && !aliasOf.has(a)) aliasOf.set(a, e);
  }
  if (aliasOf.size === 0) return verdict;
  const related = new Set(verdict.relatedCaseIds);
  // Related case → this case's own keys it was found under.
  const foundUnderOwn = new Map<string, Set<string>>();
  for (const s of sightings) {
    if (s.caseId === c.caseId || !related.has(s.caseId) || !own.has(s.entityKey)) continue;
    const keys = foundUnderOwn.get(s.caseId);
    if (keys === undefined) foundUnderOwn.set(s.caseId, new Set([s.entityKey]));
    else keys.add(s.entityKey);
  }
  const used: string[] = [];
  for (const s of sightings) {
    const e = aliasOf.get(s.entityKey);
    if (e === undefined || s.caseId === c.caseId || !related.has(s.caseId) || used.includes(s.entityKey)) continue;
    // The related case also carries a spelling of this account that the case itself has: it is linked without the alias.
    const mine = foundUnderOwn.get(s.caseId);
    if (mine !== undefined && (mine.has(e.key) || e.altKeys.some((k) => mine.has(k)))) continue;
    used.push(s.entityKey);
  }
  if (used.length === 0) return verdict;
  const shown = used.slice(0, MAX_LISTED_ALIASES).map((a) => `${a} for ${aliasOf.get(a)?.key}`);
  const more = used.length > MAX_LISTED_ALIASES ? `, +${used.length - MAX_LISTED_ALIASES} more` : '';
  return { ...verdict, detail: `${verdict.detail}; through directory alias ${shown.join(', ')}${more}` };
}
