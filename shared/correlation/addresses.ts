/**
 * Hot-path address matching. Same semantics as `NetworkMatcher`
 * (shared/config/networks.ts: IPs in any spelling, CIDR blocks, host names short
 * or fully qualified), but an IP is parsed ONCE and then matched against many
 * lists: `NetworkMatcher.matchesIp` parses its argument on every call (~2.5 µs),
 * and triage checks each IP against six lists (internal, DMZ, maintenance, DMZ
 * management, blacklist, non-correlating). Parsing reuses `canonicalIp` so the
 * accepted spellings cannot drift from the policy validator's.
 */
import ipaddr from 'ipaddr.js';
import { canonicalIp } from '../config/networks';

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

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A compiled list of IPs, CIDR blocks and host names (see the module comment). */
export class AddressList {
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
