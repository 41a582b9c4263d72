/**
 * IP/CIDR/host-name matching for policy lists (internal ranges, maintenance
 * hosts, blacklists). Uses ipaddr.js, never regexes, for address parsing.
 */
import ipaddr from 'ipaddr.js';

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Canonical text of an IP address (IPv4 dotted, IPv6 RFC 5952 compressed, IPv4-mapped IPv6 unwrapped), or undefined. */
export function canonicalIp(text: string): string | undefined {
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

/**
 * A compiled list of IPs, CIDR blocks and host names. Host names match both the
 * short name and the FQDN (`ws-ops-001` matches `ws-ops-001.corp.example`).
 */
export class NetworkMatcher {
  private readonly cidrs: Cidr[] = [];
  private readonly ips = new Set<string>();
  private readonly hosts = new Set<string>();

  /** Compiles the list; invalid entries are ignored (policy validation reports them). */
  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const ip = canonicalIp(e);
      if (ip) {
        this.ips.add(ip);
        continue;
      }
      const c = parseCidr(e);
      if (c) {
        this.cidrs.push(c);
        continue;
      }
      this.hosts.add(e.trim().toLowerCase().replace(/\.$/, ''));
    }
  }

  /** Whether this list is empty. */
  get empty(): boolean {
    return this.cidrs.length === 0 && this.ips.size === 0 && this.hosts.size === 0;
  }

  /** Matches an IP address (any spelling). */
  matchesIp(ip: string): boolean {
    const canon = canonicalIp(ip);
    if (!canon) return false;
    if (this.ips.has(canon)) return true;
    const addr = ipaddr.parse(canon);
    return this.cidrs.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
  }

  /** Matches a host name, short or fully qualified. */
  matchesHost(host: string): boolean {
    const h = host.trim().toLowerCase().replace(/\.$/, '');
    if (this.hosts.has(h)) return true;
    const short = h.split('.')[0] ?? h;
    return this.hosts.has(short);
  }
}
