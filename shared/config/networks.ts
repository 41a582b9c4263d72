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
 * Canonical text of an IP address (IPv4 dotted, IPv6 RFC 5952 compressed, IPv4-mapped IPv6
 * unwrapped), or undefined. On the hot path of parsing and triage: canonical IPv4 is answered
 * by a pattern, other spellings from a bounded memo.
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

function parseCanonicalIp(text: string): string | undefined {
  const t = text.trim();
  if (!ipaddr.isValid(t)) return undefined;
  // ipaddr.isValid accepts shorthand like "10.1" (classful); only accept four-part IPv4 and real IPv6.
  if (!t.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(t)) return undefined;
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
}

/** Bound of the parse memo: recurring addresses (scanners, gateways) hit it; a flood of unique ones just resets it. */
const MEMO_LIMIT = 10_000;
const memo = new Map<string, ParsedIp | null>();

/** Parses an IP (memoised); undefined when the text is not an IP address. */
export function parseIp(text: string): ParsedIp | undefined {
  const hit = memo.get(text);
  if (hit !== undefined) return hit ?? undefined;
  const canon = canonicalIp(text);
  let parsed: ParsedIp | null = null;
  if (canon) {
    const addr = ipaddr.parse(canon);
    parsed = { canon, addr, range: addr.range() };
  }
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
  private readonly cidrs: Cidr[] = [];
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
        this.cidrs.push(ipaddr.parseCIDR(e.trim()));
        continue;
      } catch {
        // not a CIDR: a host name
      }
      this.hosts.add(e.trim().toLowerCase().replace(/\.$/, ''));
    }
  }

  /** Whether the list is empty. */
  get empty(): boolean {
    return this.ips.size === 0 && this.cidrs.length === 0 && this.hosts.size === 0;
  }

  /** Whether the list has IP or CIDR entries. */
  get hasAddresses(): boolean {
    return this.ips.size > 0 || this.cidrs.length > 0;
  }

  /** Matches a parsed IP. */
  matchesIp(ip: ParsedIp): boolean {
    if (this.ips.has(ip.canon)) return true;
    const kind = ip.addr.kind();
    for (const [net, bits] of this.cidrs) if (net.kind() === kind && ip.addr.match(net, bits)) return true;
    return false;
  }

  /** Matches a host name, short or fully qualified. */
  matchesHost(host: string): boolean {
    if (this.hosts.size === 0) return false;
    const h = host.trim().toLowerCase().replace(/\.$/, '');
    if (this.hosts.has(h)) return true;
    const dot = h.indexOf('.');
    return dot > 0 && this.hosts.has(h.slice(0, dot));
  }
}
