/**
 * IP/CIDR/host-name matching for policy lists (internal ranges, maintenance
 * hosts, blacklists). Uses ipaddr.js, never regexes, for address parsing.
 */
import ipaddr from 'ipaddr.js';

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

// Dotted-quad IPv4 already in canonical form (no leading zeros): by far the most common
// spelling, and ipaddr.js validation costs ~5 µs per address (it tries IPv6 first).
const CANONICAL_IPV4_RE = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const CANONICAL_MEMO_LIMIT = 10_000;
const canonicalMemo = new Map<string, string | null>();

/**
 * Canonical text of an IP address, one spelling per address, or undefined: IPv4 dotted decimal;
 * IPv6 in RFC 5952 form (`::1.2.3.4` and `::102:304` are both `::102:304`), with its zone id as
 * sent (`fe80::1%eth0`); IPv4-mapped IPv6 (`::ffff:1.2.3.4`, `::ffff:102:304`) unwrapped to the
 * IPv4 address, because that is how a dual-stack socket reports an IPv4 peer, so the same host
 * seen by an IPv4 and a dual-stack sensor correlates and IPv4 lists and blocks match it. A
 * dotted quad, bare or inside IPv6, must be plain decimal (`010` and `0x1` are refused).
 * On the hot path of parsing and triage: canonical IPv4 is answered by a pattern, other
 * spellings from a bounded memo.
 */
export function canonicalIp(text: string): string | undefined {
  if (CANONICAL_IPV4_RE.test(text)) return text;
  const hit = canonicalMemo.get(text);
  if (hit !== undefined) return hit ?? undefined;
  const c = parseCanonicalIp(text);
  if (canonicalMemo.size >= CANONICAL_MEMO_LIMIT) canonicalMemo.clear();
  canonicalMemo.set(text, c ?? null);
  return c;
}

// IPv6 text ending in a dotted quad (`::ffff:192.0.2.1`, `64:ff9b::192.0.2.1`), zone id apart.
const EMBEDDED_V4_RE = /^(.*:)([^:%]*\.[^:%]*)(%.*)?$/;

function parseCanonicalIp(text: string): string | undefined {
  let t = text.trim();
  if (!ipaddr.isValid(t)) return undefined;
  // ipaddr.isValid accepts shorthand like "10.1" (classful); only accept four-part IPv4 and real IPv6.
  if (!t.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(t)) return undefined;
  const v4 = t.includes(':') ? EMBEDDED_V4_RE.exec(t) : null;
  if (v4) {
    const [, head, quad = '', zone = ''] = v4;
    // ipaddr.js reads the embedded quad's parts with parseInt: `0x1` as 1, `010` as 10 (where a bare
    // IPv4 `010` would be octal 8). Refused like a bare IPv4 that is not plain decimal.
    if (!ipaddr.IPv4.isValidFourPartDecimal(quad)) return undefined;
    // `::a.b.c.d` is RFC 4291's (deprecated) IPv4-compatible address 0:0:0:0:0:0:a.b.c.d (`::102:304`),
    // but ipaddr.js reads it as the IPv4-mapped ::ffff:a.b.c.d, another address. Written with its zero
    // groups it takes ipaddr.js's general grammar and keeps its value.
    if (head === '::') t = `0:0:0:0:0:0:${quad}${zone}`;
  }
  // The zone id keeps its case (ipaddr.js keeps it; RFC 5952 lower-cases only the hex digits): it names
  // an interface of the host that saw the address, and Linux interface names are case-sensitive (`eth0`
  // and `ETH0` can be two interfaces), so folding case could merge two different link-local peers.
  // Windows zone ids are interface numbers, where case does not arise.
  let addr = ipaddr.parse(t);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();
}

function parseCidr(text: string): Cidr | undefined {
  try {
    return ipaddr.parseCIDR(text.trim());
  } catch {
    return undefined;
  }
}

const HOST_RE = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/i;

/** True for an IP, a CIDR block or a DNS-style host name. */
export function isValidNetworkOrHost(text: string): boolean {
  return canonicalIp(text) !== undefined || parseCidr(text) !== undefined || HOST_RE.test(text.trim());
}

/** A parsed, canonical IP address. */
export interface ParsedIp {
  /** Canonical text (`canonicalIp`). */
  readonly canon: string;
  readonly addr: ipaddr.IPv4 | ipaddr.IPv6;
  /** ipaddr.js range name (`private`, `loopback`, `unicast`, …). */
  readonly range: string;
  /** An IPv4 address as an unsigned 32-bit number (for CIDR matching by arithmetic); undefined for IPv6. */
  readonly v4: number | undefined;
}

/** An IPv4 address's octets as an unsigned 32-bit number. */
function v4Number(octets: readonly number[]): number {
  return (((octets[0] ?? 0) << 24) | ((octets[1] ?? 0) << 16) | ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)) >>> 0;
}

/** Whether IPv4 number `n` is inside the block `net`/`bits` (a shift by 32 is a shift by 0 in JS, hence /0 apart). */
function inV4Block(n: number, net: number, bits: number): boolean {
  return bits === 0 || (n ^ net) >>> (32 - bits) === 0;
}

interface V4Range {
  readonly name: string;
  readonly net: number;
  readonly bits: number;
}

/**
 * ipaddr.js's own IPv4 special ranges (what `IPv4#range()` matches against), as numbers, in the
 * order `range()` tries them (first match wins). Read from ipaddr.js rather than copied, so the
 * names stay whatever the installed version says; undefined if its table is not the expected
 * shape, and `range()` is asked instead.
 */
const V4_SPECIAL_RANGES: readonly V4Range[] | undefined = (() => {
  const table = (ipaddr.IPv4.prototype as unknown as { SpecialRanges?: unknown }).SpecialRanges;
  if (typeof table !== 'object' || table === null) return undefined;
  const out: V4Range[] = [];
  for (const [name, value] of Object.entries(table)) {
    if (!Array.isArray(value)) return undefined;
    // A single [address, bits] pair or a list of them (as ipaddr.subnetMatch accepts).
    const subnets: unknown[] = value[0] !== undefined && !Array.isArray(value[0]) ? [value] : value;
    for (const subnet of subnets) {
      if (!Array.isArray(subnet)) return undefined;
      const [net, bits] = subnet;
      if (!(net instanceof ipaddr.IPv4) || typeof bits !== 'number') return undefined;
      out.push({ name, net: v4Number(net.toByteArray()), bits });
    }
  }
  return out;
})();

/**
 * The ipaddr.js range name of an IPv4 address (`private`, `loopback`, …, `unicast`): `IPv4#range()`
 * by arithmetic, ≈ 20× cheaper, and parseIp runs for every new address of every case.
 */
function v4RangeOf(n: number, addr: ipaddr.IPv4): string {
  if (V4_SPECIAL_RANGES === undefined) return addr.range();
  for (const r of V4_SPECIAL_RANGES) if (inV4Block(n, r.net, r.bits)) return r.name;
  return 'unicast';
}

/** The octets of a canonical dotted quad (`canonicalIp` output for IPv4: digits and dots only). */
function dottedOctets(canon: string): number[] {
  const octets = [0, 0, 0, 0];
  let i = 0;
  for (let k = 0; k < canon.length; k++) {
    const ch = canon.charCodeAt(k);
    if (ch === 46 /* . */) i++;
    else octets[i] = (octets[i] ?? 0) * 10 + (ch - 48);
  }
  return octets;
}

/** Parses the canonical text of an IP (`canonicalIp` output). */
function parseCanonical(canon: string): ParsedIp {
  if (!canon.includes(':')) {
    // IPv4: built from its octets, not through ipaddr.parse (which tries IPv6 grammar first, ≈ 1.5 µs).
    const octets = dottedOctets(canon);
    const addr = new ipaddr.IPv4(octets);
    const v4 = v4Number(octets);
    return { canon, addr, range: v4RangeOf(v4, addr), v4 };
  }
  const addr = ipaddr.parse(canon);
  return { canon, addr, range: addr.range(), v4: undefined };
}

/** Bound of the parse memo: recurring addresses (scanners, gateways) hit it; a flood of unique ones just resets it. */
const MEMO_LIMIT = 10_000;
const memo = new Map<string, ParsedIp | null>();

/** Parses an IP (memoised); undefined when the text is not an IP address. */
export function parseIp(text: string): ParsedIp | undefined {
  const hit = memo.get(text);
  if (hit !== undefined) return hit ?? undefined;
  const canon = canonicalIp(text);
  const parsed: ParsedIp | null = canon ? parseCanonical(canon) : null;
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(text, parsed);
  return parsed ?? undefined;
}

/**
 * A compiled list of IPs, CIDR blocks and host names (policy lists: internal ranges,
 * maintenance hosts, blacklists, …). Host names match both the short name and the FQDN
 * (`ws-ops-001` matches `ws-ops-001.corp.example`). IPs are matched parsed (`parseIp`):
 * triage checks one address against several lists, so it is parsed once, not per list.
 */
export class NetworkMatcher {
  private readonly ips = new Set<string>();
  /** IPv6 blocks, matched by ipaddr.js. */
  private readonly v6Cidrs: Cidr[] = [];
  /**
   * IPv4 blocks as [network number, prefix length]: triage checks every IP against five lists
   * per case, and arithmetic is ~20× cheaper than ipaddr.js's octet-wise match.
   */
  private readonly v4Cidrs: (readonly [number, number])[] = [];
  private readonly hosts = new Set<string>();

  /** Compiles the list; invalid entries are ignored (policy validation reports them). */
  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const ip = canonicalIp(e);
      if (ip) {
        this.ips.add(ip);
        continue;
      }
      try {
        const cidr = ipaddr.parseCIDR(e.trim());
        const [net, bits] = cidr;
        if (net.kind() === 'ipv4') this.v4Cidrs.push([v4Number(net.toByteArray()), bits]);
        else this.v6Cidrs.push(cidr);
        continue;
      } catch {
        // not a CIDR: a host name
      }
      this.hosts.add(e.trim().toLowerCase().replace(/\.$/, ''));
    }
  }

  /** Whether the list is empty. */
  get empty(): boolean {
    return !this.hasAddresses && this.hosts.size === 0;
  }

  /** Whether the list has IP or CIDR entries. */
  get hasAddresses(): boolean {
    return this.ips.size > 0 || this.v4Cidrs.length > 0 || this.v6Cidrs.length > 0;
  }

  /** Matches a parsed IP. */
  matchesIp(ip: ParsedIp): boolean {
    if (this.ips.has(ip.canon)) return true;
    const v4 = ip.v4;
    if (v4 !== undefined) {
      for (const [net, bits] of this.v4Cidrs) if (inV4Block(v4, net, bits)) return true;
      return false;
    }
    for (const [net, bits] of this.v6Cidrs) if (ip.addr.match(net, bits)) return true;
    return false;
  }

  /** Matches a host name, short or fully qualified. */
  matchesHost(host: string): boolean {
    if (this.hosts.size === 0) return false;
    const lower = host.trim().toLowerCase();
    // Drops one trailing dot (`/\.$/` without a regex: this runs for every host key of every case).
    const h = lower.endsWith('.') ? lower.slice(0, -1) : lower;
    if (this.hosts.has(h)) return true;
    const dot = h.indexOf('.');
    return dot > 0 && this.hosts.has(h.slice(0, dot));
  }
}
