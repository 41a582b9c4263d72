/**
 * Entities: from the three wire spellings (SecurityAlert `Entities` with `$id`/`$ref`,
 * incident `relatedEntities`, generic `entities`) to domain `Entity` with canonical keys.
 *
 * Canonical keys (`key` = `kind:canonical`; `altKeys` = other spellings used for correlation):
 *
 * | kind      | key                                                         | altKeys |
 * |-----------|-------------------------------------------------------------|---------|
 * | ip        | `ip:203.0.113.77`, `ip:2001:db8::1`: one spelling per address (`canonicalIp`: RFC 5952, so `::1.2.3.4` = `::102:304`; IPv4-mapped IPv6 unwrapped to IPv4; a zone id kept as sent, case included: `fe80::1%eth0`) | – |
 * | host      | `host:<fqdn>` when a DNS domain or FQDN is known, else `host:<short>`; hosts known only by cloud id: `host:azure:<AzureID>`, `host:mde:<MdatpDeviceId>`, `host:oms:<OMSAgentID>` | `host:<short>`, `host:<ntdomain>\<short>` (NetBIOS form, because Windows logs name hosts that way; a HostName written `DOMAIN\name` is read as that name in that NT domain), cloud ids |
 * | account   | first of `account:<upn>`, `account:<ntdomain>\<name>`, `account:aad:<object id>`, `account:sid:<SID>`; a bare `account:<name>` only when nothing else is known | the others of that list (a bare name is never an altKey: "administrator" exists everywhere) |
 * | url       | `url:<url as given, trimmed>` (never fetched)               | `domain:<host>` or `ip:<address>` of its host |
 * | domain    | `domain:<name>` lower-cased, trailing dot removed (also DNS resolution entities) | – |
 * | filehash  | `filehash:<md5|sha1|sha256|sha256ac|sha384|sha512>:<lower-case hex>` (hex length checked per algorithm; "Unknown" inferred from length) | – |
 * | file      | `file:<directory>\<name>` lower-cased (`/` kept for POSIX directories) | – |
 * | process   | `process:<host>|<pid>|<creation time>` (host canonical name, empty parts when unknown); with neither pid nor creation time `process:<host>|cmd:<16 hex of sha256(command line)>` | – |
 * | mailbox   | `mailbox:<primary address>` lower-cased                     | `account:<upn>` |
 * | cloud-app | `cloud-app:<app id>` or `cloud-app:<name>` lower-cased      | `cloud-app:<name>` |
 *
 * A canonical value longer than MAX_KEY_VALUE_CHARS is keyed `kind:~sha256:<hex>` so store
 * keys stay bounded. Entities of kinds the product does not model (azure-resource, malware,
 * registry-key, security-group, network-connection, mail-message, iotdevice, …) are skipped:
 * they are context, not correlation keys, and refusing them would refuse most Defender alerts.
 * A modelled entity that is invalid (bad address, bad hash, no identifier) is an issue with
 * its exact path and the whole alert is rejected (parked): the SOC never silently loses data.
 */
import { createHash } from 'node:crypto';
import { canonicalIp } from '../config/networks';
import type { InputIssue } from '../errors';
import { ENTITY_KINDS, type Entity, type EntityKind } from './domain';
import {
  childPath,
  decodeJsonInString,
  jsonTypeOf,
  MAX_ENTITIES_PER_ALERT,
  MAX_ENTITY_NESTING,
  MAX_STRING_CHARS,
  normaliseIsoDate,
} from './inputs/common';

/** Longest string kept in `Entity.fields` (longer values are truncated, not rejected). */
export const MAX_FIELD_CHARS = 2_000;
/** Longest canonical value kept verbatim in a key; longer ones are hashed. */
export const MAX_KEY_VALUE_CHARS = 1_024;
/** Longest entity label. */
export const MAX_LABEL_CHARS = 200;
/** Deepest `$ref` chain followed when checking for cycles. */
export const MAX_REF_DEPTH = 256;

/**
 * The only names `Entity.fields` may carry (bounded set of useful scalars). Downstream
 * code reads e.g. `fields.address` (ip), `fields.hostName`/`fields.fqdn` (host),
 * `fields.upn`/`fields.accountName` (account), `fields.commandLine` (process).
 */
export const ENTITY_FIELD_NAMES = [
  'address',
  'countryCode',
  'asn',
  'hostName',
  'dnsDomain',
  'fqdn',
  'ntDomain',
  'netBiosName',
  'osFamily',
  'osVersion',
  'azureId',
  'accountName',
  'upn',
  'upnSuffix',
  'sid',
  'aadUserId',
  'displayName',
  'url',
  'domain',
  'algorithm',
  'hashValue',
  'directory',
  'fileName',
  'processId',
  'commandLine',
  'creationTime',
  'imageFile',
  'mailbox',
  'appId',
  'appName',
  'instanceName',
] as const;
/** A field name allowed in `Entity.fields`. */
export type EntityFieldName = (typeof ENTITY_FIELD_NAMES)[number];

type Scalar = string | number | boolean;
type Fields = Partial<Record<EntityFieldName, Scalar>>;
type Obj = Record<string, unknown>;

/**
 * A JSON path not yet spelt out: a path string, or a step (member name or index) below another path.
 * Walks over `Entities` pass these instead of strings because a path is needed only when an issue is
 * reported: building (and quoting) one for every entity, field and nested object was ≈ 10 % of parsing
 * an alert. `pathText` spells one out exactly as `childPath` would have.
 */
type PathRef = string | PathStep;
interface PathStep {
  readonly up: PathRef;
  readonly key: string | number;
}

function below(up: PathRef, key: string | number): PathStep {
  return { up, key };
}

/** The JSON path text of `p` (`$[0].Entities[3].Address`). */
function pathText(p: PathRef): string {
  if (typeof p === 'string') return p;
  const keys: (string | number)[] = [];
  let at: PathRef = p;
  for (; typeof at !== 'string'; at = at.up) keys.push(at.key);
  let out = at;
  for (let i = keys.length - 1; i >= 0; i--) out = childPath(out, keys[i] as string | number);
  return out;
}

const KIND_ALIASES: Readonly<Record<string, EntityKind>> = {
  ip: 'ip',
  host: 'host',
  account: 'account',
  url: 'url',
  domain: 'domain',
  dns: 'domain',
  dnsresolution: 'domain',
  filehash: 'filehash',
  process: 'process',
  file: 'file',
  mailbox: 'mailbox',
  cloudapplication: 'cloud-app',
  cloudapp: 'cloud-app',
};

/** Maps a wire entity type (`ip`, `Ip`, `CloudApplication`, `cloud-application`, `dns`, …) to an EntityKind, or undefined. */
export function entityKindOf(type: string): EntityKind | undefined {
  const k = type.toLowerCase().replace(/[^a-z0-9]/g, '');
  // Own keys only: `Type: "constructor"` must be an unknown type, not Object.prototype.constructor.
  return Object.hasOwn(KIND_ALIASES, k) ? KIND_ALIASES[k] : undefined;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Builds `kind:value`, hashing values too long to be a store key. */
function makeKey(kind: string, value: string): string {
  return value.length > MAX_KEY_VALUE_CHARS ? `${kind}:~sha256:${sha256(value)}` : `${kind}:${value}`;
}

function label(s: string): string {
  return s.length > MAX_LABEL_CHARS ? `${s.slice(0, MAX_LABEL_CHARS - 1)}…` : s;
}

function put(fields: Fields, name: EntityFieldName, v: Scalar | undefined): void {
  if (v === undefined || v === '') return;
  fields[name] = typeof v === 'string' && v.length > MAX_FIELD_CHARS ? v.slice(0, MAX_FIELD_CHARS) : v;
}

function stripDot(s: string): string {
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/** Canonical DNS name: lower-cased, trailing dot removed. */
export function canonicalDomain(name: string): string {
  return stripDot(name.trim().toLowerCase());
}

/**
 * Whether a DNS-style name has an empty label (`.`, `.corp`, `a..b`, `host..`). One trailing
 * dot is the DNS root and allowed; anything else would yield keys such as `host:` or `host:.`.
 */
function hasEmptyLabel(name: string): boolean {
  // What `split('.').includes('')` says, without the array: empty, or a dot at either end or doubled.
  const s = stripDot(name);
  return s === '' || s.startsWith('.') || s.endsWith('.') || s.includes('..');
}

/**
 * Case-insensitive view of one entity's properties, with issue reporting at exact paths.
 * Sentinel spells the same field `HostName` (SecurityAlert) and `hostName` (incident).
 */
class Props {
  private readonly lower = new Map<string, string>();
  /** Whether an issue was already recorded for this entity. */
  private reported = false;

  constructor(
    readonly obj: Obj,
    readonly path: PathRef,
    readonly issues: InputIssue[],
  ) {
    for (const k of Object.keys(obj)) {
      const l = k.toLowerCase();
      if (!this.lower.has(l)) this.lower.set(l, k);
    }
  }

  /** The actual key of the first present name (names given lower-case). */
  key(...names: string[]): string | undefined {
    for (const n of names) {
      const k = this.lower.get(n);
      if (k !== undefined && this.obj[k] !== undefined && this.obj[k] !== null) return k;
    }
    return undefined;
  }

  /** Path of a field (its actual spelling when present). */
  at(name: string): PathRef {
    return below(this.path, this.lower.get(name) ?? name);
  }

  /** Reads a scalar as a trimmed non-empty string; wrong types and over-long strings are issues. */
  str(...names: string[]): string | undefined {
    const k = this.key(...names);
    if (k === undefined) return undefined;
    const v = this.obj[k];
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') {
      this.issues.push({ path: childPath(pathText(this.path), k), reason: `expected string, got ${jsonTypeOf(v)}` });
      this.reported = true;
      return undefined;
    }
    if (v.length > MAX_STRING_CHARS) {
      this.issues.push({ path: childPath(pathText(this.path), k), reason: `string longer than ${MAX_STRING_CHARS} characters` });
      this.reported = true;
      return undefined;
    }
    const t = v.trim();
    return t === '' ? undefined : t;
  }

  /** Records an issue on a field. */
  issue(name: string, reason: string): undefined {
    this.issues.push({ path: pathText(this.at(name)), reason });
    this.reported = true;
    return undefined;
  }

  /** Records an issue on the entity itself, unless a field of it was already reported (one cause, one issue). */
  issueHere(reason: string): undefined {
    if (!this.reported) this.issues.push({ path: pathText(this.path), reason });
    this.reported = true;
    return undefined;
  }
}

/** Relations an entity may point at (SecurityAlert nested objects, incident `…EntityId`). */
type Relation = 'host' | 'account' | 'imagefile';
type RelationResolver = (rel: Relation) => Entity | undefined;
const noRelations: RelationResolver = () => undefined;

// Host names: no whitespace, path or credential separators. Deliberately permissive
// (NetBIOS names, underscores) — the point is to refuse garbage, not to police DNS.
const HOST_RE = /^[^\s\\/@:*?"<>|,;]+$/;

interface HostParts {
  readonly primary: string;
  readonly alt: string[];
  readonly fields: Fields;
}

/**
 * `DOMAIN\\name` in a host-name field, as some providers write a host (the way accounts come): the
 * name and its NT domain, or undefined when the text is not of that form. Split rather than refused,
 * since refusing it parked the whole alert (no triage, no notification) for a well-known spelling.
 */
function splitNtHost(v: string | undefined): { domain: string; name: string } | undefined {
  const i = v === undefined ? -1 : v.indexOf('\\');
  if (v === undefined || i <= 0 || i !== v.lastIndexOf('\\') || i === v.length - 1) return undefined;
  const domain = v.slice(0, i);
  const name = v.slice(i + 1);
  return HOST_RE.test(domain) && HOST_RE.test(name) ? { domain, name } : undefined;
}

/** Reports a `DOMAIN\\name` host name whose NT domain contradicts NTDomain; true when it did. */
function ntConflict(p: Props, field: string, v: string, domain: string, nt: string | undefined): boolean {
  if (nt === undefined || nt.toLowerCase() === domain.toLowerCase()) return false;
  p.issue(field, `host name ${quote(v)} names NT domain ${quote(domain)}, but NTDomain is ${quote(nt)}`);
  return true;
}

/** Reports an invalid host-name field; true when it did. */
function invalidHostName(p: Props, field: string, v: string | undefined): boolean {
  if (v === undefined || (HOST_RE.test(v) && v.length <= 253 && !hasEmptyLabel(v))) return false;
  p.issue(field, `invalid host name ${quote(v)}`);
  return true;
}

function hostParts(p: Props): HostParts | undefined {
  let hn = p.str('hostname');
  let nb = p.str('netbiosname');
  const fq = p.str('fqdn');
  const dd = p.str('dnsdomain');
  let nt = p.str('ntdomain');
  // HostName first, then NetBiosName (whose NT domain is checked against the one HostName gave).
  const hnSplit = splitNtHost(hn);
  if (hnSplit !== undefined) {
    if (ntConflict(p, 'hostname', hn as string, hnSplit.domain, nt)) return undefined;
    nt ??= hnSplit.domain;
    hn = hnSplit.name;
  }
  const nbSplit = splitNtHost(nb);
  if (nbSplit !== undefined) {
    if (ntConflict(p, 'netbiosname', nb as string, nbSplit.domain, nt)) return undefined;
    nt ??= nbSplit.domain;
    nb = nbSplit.name;
  }
  const az = p.str('azureid');
  const mde = p.str('mdatpdeviceid');
  const oms = p.str('omsagentid');
  // Each name checked (and reported) in turn, no short-circuit: one rejection names every bad field.
  let bad = invalidHostName(p, 'hostname', hn);
  if (invalidHostName(p, 'netbiosname', nb)) bad = true;
  if (invalidHostName(p, 'fqdn', fq)) bad = true;
  if (invalidHostName(p, 'dnsdomain', dd)) bad = true;
  if (bad) return undefined;
  let short = (hn ?? nb) ? canonicalDomain((hn ?? nb) as string) : undefined;
  let fqdn = fq ? canonicalDomain(fq) : undefined;
  const domain = dd ? canonicalDomain(dd) : undefined;
  // A name with neither `.` nor `:` is never an address (canonicalIp takes four-part IPv4 and IPv6 only): the
  // usual short host name skips the address parse.
  const shortIsIp = short !== undefined && (short.includes('.') || short.includes(':')) && canonicalIp(short) !== undefined;
  if (short?.includes('.') && !shortIsIp) {
    fqdn ??= short;
    short = short.slice(0, short.indexOf('.'));
  }
  if (!fqdn && short && domain && !shortIsIp) fqdn = `${short}.${domain}`;
  if (!short && fqdn) short = fqdn.slice(0, fqdn.indexOf('.') < 0 ? undefined : fqdn.indexOf('.'));
  const cloud: string[] = [];
  if (az) cloud.push(`azure:${az.toLowerCase()}`);
  if (mde) cloud.push(`mde:${mde.toLowerCase()}`);
  if (oms) cloud.push(`oms:${oms.toLowerCase()}`);
  const primary = fqdn ?? short ?? cloud[0];
  if (primary === undefined) return undefined;
  const alt: string[] = [];
  if (short && short !== primary) alt.push(short);
  if (nt && short) alt.push(`${nt.toLowerCase()}\\${short}`);
  for (const c of cloud) if (c !== primary) alt.push(c);
  const fields: Fields = {};
  put(fields, 'hostName', short);
  put(fields, 'dnsDomain', domain ?? (fqdn && short && fqdn.length > short.length ? fqdn.slice(short.length + 1) : undefined));
  put(fields, 'fqdn', fqdn);
  put(fields, 'ntDomain', nt);
  put(fields, 'netBiosName', nb);
  put(fields, 'osFamily', p.str('osfamily'));
  put(fields, 'osVersion', p.str('osversion'));
  put(fields, 'azureId', az);
  return { primary, alt, fields };
}

function buildHost(p: Props): Entity | undefined {
  const h = hostParts(p);
  if (!h) return p.issueHere('host entity without HostName, FQDN, NetBiosName or AzureID');
  return {
    kind: 'host',
    key: makeKey('host', h.primary),
    altKeys: h.alt.map((a) => makeKey('host', a)),
    label: label(h.primary),
    fields: h.fields,
  };
}

function buildIp(p: Props): Entity | undefined {
  const a = p.str('address');
  if (a === undefined) return p.issueHere('ip entity without Address');
  const ip = canonicalIp(a);
  if (ip === undefined) return p.issue('address', `invalid IP address ${quote(a)}`);
  const fields: Fields = { address: ip };
  const locKey = p.key('location');
  const loc = locKey === undefined ? undefined : p.obj[locKey];
  if (isObj(loc)) {
    const lp = new Props(loc, p.at('location'), p.issues);
    put(fields, 'countryCode', lp.str('countrycode'));
    put(fields, 'asn', lp.str('asn'));
  }
  return { kind: 'ip', key: `ip:${ip}`, altKeys: [], label: ip, fields };
}

const SID_RE = /^S-\d+(-\d+)+$/i;

/**
 * Whether a UPN can be keyed: no whitespace, and an `@` (if any) with a non-empty local part and
 * domain on each side, exactly once. A UPN field without any `@` is keyed as given, as before: some
 * on-premises writers put the bare account name there, and refusing it would park a real alert.
 */
function isUpn(upn: string): boolean {
  const at = upn.indexOf('@');
  return !/\s/.test(upn) && (at === -1 || (at > 0 && at === upn.lastIndexOf('@') && at < upn.length - 1));
}

function buildAccount(p: Props): Entity | undefined {
  let name = p.str('name', 'accountname');
  let nt = p.str('ntdomain');
  let upn = p.str('upn', 'userprincipalname');
  // The field the UPN was read from, as spelt in the input, so an invalid UPN is reported where it is.
  let upnField = p.key('upn', 'userprincipalname');
  const upnSuffix = p.str('upnsuffix');
  const sid = p.str('sid');
  const aad = p.str('aaduserid');
  if (name?.includes('\\')) {
    const i = name.indexOf('\\');
    nt ??= name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name?.includes('@')) {
    if (upn === undefined) {
      upn = name;
      upnField = p.key('name', 'accountname');
    }
    name = name.slice(0, name.indexOf('@'));
  }
  if (!upn && name && upnSuffix) {
    upn = `${name}@${upnSuffix}`;
    upnField = p.key('upnsuffix');
  }
  if (sid !== undefined && !SID_RE.test(sid)) return p.issue('sid', `invalid SID ${quote(sid)}`);
  if (upn !== undefined && !isUpn(upn)) return p.issue(upnField ?? 'upn', `invalid user principal name ${quote(upn)}`);
  const keys: string[] = [];
  if (upn) keys.push(upn.toLowerCase());
  if (nt && name) keys.push(`${nt.toLowerCase()}\\${name.toLowerCase()}`);
  if (aad) keys.push(`aad:${aad.toLowerCase()}`);
  if (sid) keys.push(`sid:${sid.toUpperCase()}`);
  if (keys.length === 0 && name) keys.push(name.toLowerCase());
  const primary = keys[0];
  if (primary === undefined) return p.issueHere('account entity without Name, UPN, AadUserId or Sid');
  const fields: Fields = {};
  put(fields, 'accountName', name);
  put(fields, 'upn', upn?.toLowerCase());
  put(fields, 'upnSuffix', upnSuffix);
  put(fields, 'ntDomain', nt);
  put(fields, 'sid', sid?.toUpperCase());
  put(fields, 'aadUserId', aad?.toLowerCase());
  put(fields, 'displayName', p.str('displayname'));
  return {
    kind: 'account',
    key: makeKey('account', primary),
    altKeys: keys.slice(1).map((k) => makeKey('account', k)),
    label: label(primary),
    fields,
  };
}

function urlHostKey(u: string): string | undefined {
  let host: string;
  try {
    host = new URL(u).hostname;
  } catch {
    return undefined;
  }
  if (host === '') return undefined;
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  const ip = canonicalIp(bare);
  return ip ? `ip:${ip}` : makeKey('domain', canonicalDomain(bare));
}

function buildUrl(p: Props): Entity | undefined {
  const u = p.str('url');
  if (u === undefined) return p.issueHere('url entity without Url');
  const alt = urlHostKey(u);
  return { kind: 'url', key: makeKey('url', u), altKeys: alt ? [alt] : [], label: label(u), fields: { url: u.slice(0, MAX_FIELD_CHARS) } };
}

function buildDomain(p: Props): Entity | undefined {
  const d = p.str('domainname', 'domain', 'name');
  if (d === undefined) return p.issueHere('domain entity without DomainName');
  const c = canonicalDomain(d);
  // The field it was read from, as spelt (`Name` of a DnsResolution entity): naming `domain` pointed at nothing.
  if (c === '' || !HOST_RE.test(c) || c.length > 253 || hasEmptyLabel(c))
    return p.issue(p.key('domainname', 'domain', 'name') ?? 'domainname', `invalid domain name ${quote(d)}`);
  return { kind: 'domain', key: makeKey('domain', c), altKeys: [], label: label(c), fields: { domain: c } };
}

const HASH_HEX_LENGTHS: Readonly<Record<string, number>> = { md5: 32, sha1: 40, sha256: 64, sha256ac: 64, sha384: 96, sha512: 128 };
const HASH_BY_LENGTH: Readonly<Record<number, string>> = { 32: 'md5', 40: 'sha1', 64: 'sha256' };
const HEX_RE = /^[0-9a-f]+$/;

function buildFileHash(p: Props): Entity | undefined {
  const v = p.str('value', 'hashvalue');
  if (v === undefined) return p.issueHere('file hash entity without Value');
  const field = p.key('value') ? 'value' : 'hashvalue';
  const hex = v.toLowerCase();
  if (!HEX_RE.test(hex)) return p.issue(field, `not a hexadecimal hash ${quote(v)}`);
  const given = p
    .str('algorithm')
    ?.toLowerCase()
    .replace(/[^a-z0-9]/g, '');
  let algo = given;
  if (algo === undefined || algo === 'unknown') {
    algo = Object.hasOwn(HASH_BY_LENGTH, hex.length) ? HASH_BY_LENGTH[hex.length] : undefined;
    if (algo === undefined) return p.issue(field, `cannot tell the algorithm of a ${hex.length}-digit hash`);
  }
  // Own keys only: `Algorithm: "constructor"` must be unsupported, not Object.prototype.constructor.
  const expected = Object.hasOwn(HASH_HEX_LENGTHS, algo) ? HASH_HEX_LENGTHS[algo] : undefined;
  if (expected === undefined) return p.issue('algorithm', `unsupported hash algorithm ${quote(given ?? '')}`);
  if (hex.length !== expected) return p.issue(field, `expected ${expected} hex digits for ${algo.toUpperCase()}, got ${hex.length}`);
  const canon = `${algo}:${hex}`;
  return { kind: 'filehash', key: `filehash:${canon}`, altKeys: [], label: canon, fields: { algorithm: algo, hashValue: hex } };
}

function buildFile(p: Props): Entity | undefined {
  const dir = p.str('directory');
  const name = p.str('name', 'filename');
  if (dir === undefined && name === undefined) return p.issueHere('file entity without Name or Directory');
  const sep = dir?.includes('/') && !dir.includes('\\') ? '/' : '\\';
  const d = dir?.replace(/[\\/]+$/, '');
  const value = (d ? (name ? `${d}${sep}${name}` : d) : (name as string)).toLowerCase();
  const fields: Fields = {};
  put(fields, 'directory', dir);
  put(fields, 'fileName', name);
  return { kind: 'file', key: makeKey('file', value), altKeys: [], label: label(value), fields };
}

function buildProcess(p: Props, rel: RelationResolver): Entity | undefined {
  const pid = p.str('processid');
  const cmd = p.str('commandline');
  const created = p.str('creationtimeutc', 'creationtime');
  const createdIso = created === undefined ? undefined : normaliseIsoDate(created);
  if (created !== undefined && createdIso === undefined) {
    return p.issue(
      p.key('creationtimeutc') ? 'creationtimeutc' : 'creationtime',
      `expected an ISO 8601 date-time with time zone, got ${quote(created)}`,
    );
  }
  if (pid !== undefined && /\s/.test(pid)) return p.issue('processid', `invalid process id ${quote(pid)}`);
  const hostEntity = rel('host');
  const host = hostEntity ? hostEntity.key.slice('host:'.length) : hostParts(p)?.primary;
  const account = rel('account');
  const image = rel('imagefile');
  const imageName = image ? String(image.fields.fileName ?? image.label) : undefined;
  if (pid === undefined && cmd === undefined && image === undefined)
    return p.issueHere('process entity without ProcessId, CommandLine or ImageFile');
  const canon =
    pid !== undefined || createdIso !== undefined
      ? `${host ?? ''}|${pid ?? ''}|${createdIso ?? ''}`
      : `${host ?? ''}|cmd:${sha256(cmd ?? image?.key ?? '').slice(0, 16)}`;
  const fields: Fields = {};
  put(fields, 'processId', pid);
  put(fields, 'commandLine', cmd);
  put(fields, 'creationTime', createdIso);
  put(fields, 'hostName', host);
  put(fields, 'accountName', account?.label);
  put(fields, 'imageFile', imageName);
  const display = `${imageName ?? 'process'}${pid !== undefined ? ` (pid ${pid})` : ''}${host ? ` on ${host}` : ''}`;
  return { kind: 'process', key: makeKey('process', canon), altKeys: [], label: label(display), fields };
}

function buildMailbox(p: Props): Entity | undefined {
  const addr = p.str('mailboxprimaryaddress', 'primaryaddress', 'address');
  const upn = p.str('upn');
  const primary = (addr ?? upn)?.toLowerCase();
  if (primary === undefined) return p.issueHere('mailbox entity without MailboxPrimaryAddress or Upn');
  if (/\s/.test(primary)) {
    // The field it was read from, as spelt (`Address` of a generic mailbox): naming `mailboxprimaryaddress` pointed at nothing.
    const field = addr !== undefined ? p.key('mailboxprimaryaddress', 'primaryaddress', 'address') : p.key('upn');
    return p.issue(field ?? 'upn', `invalid mailbox address ${quote(primary)}`);
  }
  const fields: Fields = { mailbox: primary };
  put(fields, 'upn', upn?.toLowerCase());
  put(fields, 'displayName', p.str('displayname'));
  return {
    kind: 'mailbox',
    key: makeKey('mailbox', primary),
    altKeys: upn ? [makeKey('account', upn.toLowerCase())] : [],
    label: label(primary),
    fields,
  };
}

function buildCloudApp(p: Props): Entity | undefined {
  const appId = p.str('appid');
  const name = p.str('name', 'appname');
  if (appId === undefined && name === undefined) return p.issueHere('cloud application entity without AppId or Name');
  const primary = (appId ?? (name as string)).toLowerCase();
  const fields: Fields = {};
  put(fields, 'appId', appId);
  put(fields, 'appName', name);
  put(fields, 'instanceName', p.str('instancename'));
  const alt = appId !== undefined && name !== undefined ? [makeKey('cloud-app', name.toLowerCase())] : [];
  return { kind: 'cloud-app', key: makeKey('cloud-app', primary), altKeys: alt, label: label(name ?? primary), fields };
}

function buildEntity(kind: EntityKind, p: Props, rel: RelationResolver): Entity | undefined {
  switch (kind) {
    case 'ip':
      return buildIp(p);
    case 'host':
      return buildHost(p);
    case 'account':
      return buildAccount(p);
    case 'url':
      return buildUrl(p);
    case 'domain':
      return buildDomain(p);
    case 'filehash':
      return buildFileHash(p);
    case 'file':
      return buildFile(p);
    case 'process':
      return buildProcess(p, rel);
    case 'mailbox':
      return buildMailbox(p);
    case 'cloud-app':
      return buildCloudApp(p);
    default: {
      const never: never = kind;
      return never;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SecurityAlert `Entities`: JSON inside a string, Newtonsoft `$id` / `$ref` references.
// ---------------------------------------------------------------------------------------------

interface Def {
  readonly node: Obj;
  readonly path: PathRef;
}

const REL_PROPS: Readonly<Record<Relation, string>> = { host: 'host', account: 'account', imagefile: 'imagefile' };

/**
 * Reads SecurityAlert `Entities` (a JSON array inside a string, or the already decoded array).
 * `$ref`s are resolved (`"Host": {"$ref": "2"}`); dangling refs, cycles, duplicate `$id`s and
 * invalid entities are pushed to `issues` with paths into the string's content
 * (`$.records[0].Entities[1].$ref: dangling $ref "42"`). Entities defined inline inside
 * another (a process's `Host`) are returned too.
 */
export function readSecurityAlertEntities(value: unknown, path: string, issues: InputIssue[]): Entity[] {
  const list = decodeJsonInString(value, path, issues, 'array');
  if (!Array.isArray(list) || list.length === 0) return [];
  if (list.length > MAX_ENTITIES_PER_ALERT) {
    issues.push({ path, reason: `${list.length} entities exceed the limit of ${MAX_ENTITIES_PER_ALERT} per alert` });
    return [];
  }
  const defs = new Map<string, Def>();
  indexDefs(list, path, 0, defs, issues);
  checkRefs(list, path, defs, issues);
  // Conversion continues after ref problems so one rejection names every invalid entity;
  // the cache below marks a node before following its relations, so cycles terminate.

  const cache = new Map<Obj, Entity | null>();
  const out: Entity[] = [];
  const resolve = (v: unknown): Def | undefined => {
    if (!isObj(v) || !('$ref' in v)) return undefined;
    const ref = v.$ref;
    // Any other type was reported by checkRefs; String() of `{"toString": 1}` threw, and the row was parked
    // as "could not be read" instead of with its issues.
    return typeof ref === 'string' || typeof ref === 'number' ? defs.get(String(ref)) : undefined;
  };
  const convert = (node: Obj, nodePath: PathRef, depth: number): Entity | undefined => {
    const cached = cache.get(node);
    if (cached !== undefined) return cached ?? undefined;
    // Relations are followed by recursion: a process inline in a process's `Host`, thousands deep (a 1 MB
    // string holds ~25,000 levels), overflowed the stack and the row was parked as "could not be read"
    // without its issues. A chain this deep was already reported by indexDefs / checkRefs.
    if (depth > MAX_REF_DEPTH) return undefined;
    cache.set(node, null);
    const typeKey = 'Type' in node ? 'Type' : 'type' in node ? 'type' : undefined;
    const type = typeKey === undefined ? undefined : node[typeKey];
    if (typeof type !== 'string') {
      issues.push({
        path: childPath(pathText(nodePath), typeKey ?? 'Type'),
        reason: type === undefined ? 'entity without Type' : `expected string, got ${jsonTypeOf(type)}`,
      });
      return undefined;
    }
    const kind = entityKindOf(type);
    if (kind === undefined) return undefined;
    const p = new Props(node, nodePath, issues);
    const e = buildEntity(kind, p, (rel) => {
      const k = p.key(REL_PROPS[rel]);
      if (k === undefined) return undefined;
      const v = node[k];
      if (!isObj(v)) return undefined;
      const target = '$ref' in v ? resolve(v) : { node: v, path: below(nodePath, k) };
      return target ? convert(target.node, target.path, depth + 1) : undefined;
    });
    cache.set(node, e ?? null);
    if (e) out.push(e);
    return e;
  };
  const top: Entity[] = [];
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    if (!isObj(item)) {
      issues.push({ path: childPath(path, i), reason: `expected an entity object, got ${jsonTypeOf(item)}` });
      continue;
    }
    const target = '$ref' in item ? resolve(item) : { node: item, path: below(path, i) };
    if (!target) continue;
    const e = convert(target.node, target.path, 0);
    if (e) top.push(e);
  }
  // Entities defined only inline (nested `$id` objects never listed at the top level).
  for (const d of defs.values()) if (!cache.has(d.node) && 'Type' in d.node) convert(d.node, d.path, 0);
  // Top-level order first, then nested-only entities in the order they were met.
  const seen = new Set(top);
  for (const e of out) if (!seen.has(e)) top.push(e);
  return top;
}

function indexDefs(node: unknown, path: PathRef, depth: number, defs: Map<string, Def>, issues: InputIssue[]): void {
  if (depth > MAX_ENTITY_NESTING) {
    issues.push({ path: pathText(path), reason: `entities nested deeper than ${MAX_ENTITY_NESTING} levels` });
    return;
  }
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const v: unknown = node[i];
      if (typeof v === 'object' && v !== null) indexDefs(v, below(path, i), depth + 1, defs, issues);
    }
    return;
  }
  if (!isObj(node)) return;
  const id = node.$id;
  if (id !== undefined) {
    if (typeof id !== 'string' && typeof id !== 'number')
      issues.push({ path: childPath(pathText(path), '$id'), reason: `expected string, got ${jsonTypeOf(id)}` });
    else if (defs.has(String(id))) issues.push({ path: childPath(pathText(path), '$id'), reason: `duplicate $id ${quote(String(id))}` });
    else defs.set(String(id), { node, path });
  }
  for (const k of Object.keys(node)) {
    const v = node[k];
    if (typeof v === 'object' && v !== null) indexDefs(v, below(path, k), depth + 1, defs, issues);
  }
}

/** Depth-first walk over nested objects and `$ref` edges: reports dangling refs and cycles. */
function checkRefs(list: readonly unknown[], path: string, defs: Map<string, Def>, issues: InputIssue[]): void {
  const state = new Map<Obj, 1 | 2>(); // 1 = on the current walk, 2 = done
  const visit = (node: unknown, nodePath: PathRef, depth: number): void => {
    if (depth > MAX_REF_DEPTH) {
      issues.push({ path: pathText(nodePath), reason: `$ref chain deeper than ${MAX_REF_DEPTH}` });
      return;
    }
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (typeof v === 'object' && v !== null) visit(v, below(nodePath, i), depth + 1);
      }
      return;
    }
    if (!isObj(node)) return;
    if ('$ref' in node) {
      const ref = node.$ref;
      if (typeof ref !== 'string' && typeof ref !== 'number') {
        issues.push({ path: childPath(pathText(nodePath), '$ref'), reason: `expected string, got ${jsonTypeOf(ref)}` });
        return;
      }
      const target = defs.get(String(ref));
      if (!target) {
        issues.push({ path: childPath(pathText(nodePath), '$ref'), reason: `dangling $ref ${quote(String(ref))}` });
        return;
      }
      if (state.get(target.node) === 1) {
        issues.push({
          path: childPath(pathText(nodePath), '$ref'),
          reason: `$ref cycle: ${quote(String(ref))} refers back to an entity that contains this reference`,
        });
        return;
      }
      visit(target.node, target.path, depth + 1);
      return;
    }
    const s = state.get(node);
    if (s === 2) return;
    state.set(node, 1);
    for (const k of Object.keys(node)) {
      const v = node[k];
      if (typeof v === 'object' && v !== null) visit(v, below(nodePath, k), depth + 1);
    }
    state.set(node, 2);
  };
  for (let i = 0; i < list.length; i++) visit(list[i], below(path, i), 0);
}

// ---------------------------------------------------------------------------------------------
// Incident `relatedEntities`: `{ id, name, kind: 'Ip'|'Host'|…, properties: {…} }`.
// ---------------------------------------------------------------------------------------------

const INCIDENT_REL_PROPS: Readonly<Record<Relation, string>> = {
  host: 'hostentityid',
  account: 'accountentityid',
  imagefile: 'imagefileentityid',
};

/**
 * Reads an incident's `relatedEntities` (`path` is the array's path). A process's
 * `hostEntityId` / `accountEntityId` / `imageFileEntityId` are looked up among the
 * related entities by `id` or `name`.
 */
export function readIncidentEntities(list: readonly unknown[], path: string, issues: InputIssue[]): Entity[] {
  if (list.length > MAX_ENTITIES_PER_ALERT) {
    issues.push({ path, reason: `${list.length} entities exceed the limit of ${MAX_ENTITIES_PER_ALERT} per incident` });
    return [];
  }
  const byId = new Map<string, number>();
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (!isObj(item)) continue;
    if (typeof item.id === 'string') byId.set(item.id.toLowerCase(), i);
    if (typeof item.name === 'string') byId.set(item.name.toLowerCase(), i);
  }
  const cache = new Map<number, Entity | null>();
  const convert = (i: number): Entity | undefined => {
    const cached = cache.get(i);
    if (cached !== undefined) return cached ?? undefined;
    cache.set(i, null);
    const itemPath = childPath(path, i);
    const item = list[i];
    if (!isObj(item)) {
      issues.push({ path: itemPath, reason: `expected an entity object, got ${jsonTypeOf(item)}` });
      return undefined;
    }
    if (typeof item.kind !== 'string') {
      issues.push({
        path: childPath(itemPath, 'kind'),
        reason: item.kind === undefined ? 'required (expected string)' : `expected string, got ${jsonTypeOf(item.kind)}`,
      });
      return undefined;
    }
    const kind = entityKindOf(item.kind);
    if (kind === undefined) return undefined;
    const props = item.properties;
    if (!isObj(props)) {
      issues.push({
        path: childPath(itemPath, 'properties'),
        reason: props === undefined ? 'required (expected object)' : `expected object, got ${jsonTypeOf(props)}`,
      });
      return undefined;
    }
    const p = new Props(props, childPath(itemPath, 'properties'), issues);
    const e = buildEntity(kind, p, (rel) => {
      const ref = p.str(INCIDENT_REL_PROPS[rel]);
      const j =
        ref === undefined ? undefined : (byId.get(ref.toLowerCase()) ?? byId.get(ref.slice(ref.lastIndexOf('/') + 1).toLowerCase()));
      return j === undefined || j === i ? undefined : convert(j);
    });
    cache.set(i, e ?? null);
    return e;
  };
  const out: Entity[] = [];
  for (let i = 0; i < list.length; i++) {
    const e = convert(i);
    if (e) out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generic alert `entities`: `{ kind: <EntityKind>, …camelCase fields }` (see inputs/generic.ts).
// ---------------------------------------------------------------------------------------------

const KNOWN_KINDS: ReadonlySet<string> = new Set(ENTITY_KINDS);

/** Reads a generic alert's `entities` (`path` is the array's path). Kinds must be EntityKind values exactly. */
export function readGenericEntities(list: readonly unknown[], path: string, issues: InputIssue[]): Entity[] {
  if (list.length > MAX_ENTITIES_PER_ALERT) {
    issues.push({ path, reason: `${list.length} entities exceed the limit of ${MAX_ENTITIES_PER_ALERT} per alert` });
    return [];
  }
  const out: Entity[] = [];
  for (let i = 0; i < list.length; i++) {
    const itemPath = childPath(path, i);
    const item = list[i];
    if (!isObj(item)) {
      issues.push({ path: itemPath, reason: `expected an entity object, got ${jsonTypeOf(item)}` });
      continue;
    }
    const kind = item.kind;
    if (typeof kind !== 'string' || !KNOWN_KINDS.has(kind)) {
      issues.push({ path: childPath(itemPath, 'kind'), reason: `expected one of ${ENTITY_KINDS.join(', ')}` });
      continue;
    }
    const e = buildEntity(kind as EntityKind, new Props(item, itemPath, issues), noRelations);
    if (e) out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Deduplication
// ---------------------------------------------------------------------------------------------

interface Acc {
  kind: EntityKind;
  key: string;
  label: string;
  alt: Set<string>;
  fields: Record<string, Scalar>;
}

function absorb(into: Acc, e: { key: string; altKeys: Iterable<string>; fields: Readonly<Record<string, Scalar>> }): void {
  if (e.key !== into.key) into.alt.add(e.key);
  for (const a of e.altKeys) if (a !== into.key) into.alt.add(a);
  for (const [k, v] of Object.entries(e.fields)) if (!(k in into.fields)) into.fields[k] = v;
}

/**
 * Deduplicates entities by key (first occurrence wins, altKeys and missing fields merged).
 * Then an entity whose key is an altKey of exactly one other entity of the same kind is
 * folded into it (`host:vpn01` into `host:vpn01.corp.contoso.example`, `account:contoso\\x`
 * into `account:x@contoso.example`): within one case these are the same thing.
 */
export function mergeEntities(lists: readonly (readonly Entity[])[]): Entity[] {
  // Fast path (the usual alert): one list, keys unique, no key spelled as another's altKey.
  if (lists.length === 1) {
    const list = lists[0] as readonly Entity[];
    const keys = new Set<string>();
    let clash = false;
    for (const e of list) {
      if (keys.has(e.key)) clash = true;
      keys.add(e.key);
    }
    for (let i = 0; i < list.length && !clash; i++) for (const a of (list[i] as Entity).altKeys) if (keys.has(a)) clash = true;
    if (!clash) return [...list];
  }
  const byKey = new Map<string, Acc>();
  for (const list of lists) {
    for (const e of list) {
      const have = byKey.get(e.key);
      if (have) absorb(have, e);
      else byKey.set(e.key, { kind: e.kind, key: e.key, label: e.label, alt: new Set(e.altKeys), fields: { ...e.fields } });
    }
  }
  if (byKey.size > 1) {
    const claims = new Map<string, Acc[]>();
    for (const acc of byKey.values()) {
      for (const a of acc.alt) {
        const l = claims.get(a);
        if (l) l.push(acc);
        else claims.set(a, [acc]);
      }
    }
    for (const acc of [...byKey.values()]) {
      const owners = claims.get(acc.key)?.filter((o) => o.kind === acc.kind && o !== acc && byKey.has(o.key));
      if (owners?.length !== 1) continue;
      const owner = owners[0] as Acc;
      // Never fold the other way round later (owner into acc): acc disappears now.
      byKey.delete(acc.key);
      absorb(owner, { key: acc.key, altKeys: acc.alt, fields: acc.fields });
    }
  }
  const out: Entity[] = [];
  for (const a of byKey.values()) {
    a.alt.delete(a.key);
    out.push({ kind: a.kind, key: a.key, altKeys: [...a.alt], label: a.label, fields: a.fields });
  }
  return out;
}
