import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { canonicalIp, NetworkMatcher, parseIp } from '../../../shared/config/networks';

const dotted = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
/** The dotted quad of an IPv6 address's last two groups. */
const dotted4 = (hi: number, lo: number): string => [hi >>> 8, hi & 255, lo >>> 8, lo & 255].join('.');

/** Every IPv4 block ipaddr.js names in `range()`, as [first address, prefix length]. */
const SPECIAL_BLOCKS: readonly [number, number][] = [
  [0x00000000, 8],
  [0xffffffff, 32],
  [0xe0000000, 4],
  [0xa9fe0000, 16],
  [0x7f000000, 8],
  [0x64400000, 10],
  [0x0a000000, 8],
  [0xac100000, 12],
  [0xc0a80000, 16],
  [0xc0000000, 24],
  [0xc0000200, 24],
  [0xc0586300, 24],
  [0xc6120000, 15],
  [0xc6336400, 24],
  [0xcb007100, 24],
  [0xf0000000, 4],
  [0xc0af3000, 24],
  [0xc01fc400, 24],
  [0xc034c100, 24],
];

describe('parseIp', () => {
  it("names the range of every IPv4 address like ipaddr.js's range(), at each special block's edges", () => {
    const edges: number[] = [];
    for (const [first, bits] of SPECIAL_BLOCKS) {
      const last = (first + 2 ** (32 - bits) - 1) >>> 0;
      edges.push(first, last, (first - 1) >>> 0, (last + 1) >>> 0);
    }

    for (const n of edges) expect(parseIp(dotted(n))?.range).toBe(ipaddr.IPv4.parse(dotted(n)).range());
  });

  it("names the range of any IPv4 address like ipaddr.js's range()", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        expect(parseIp(dotted(n))?.range).toBe(ipaddr.IPv4.parse(dotted(n)).range());
      }),
      { numRuns: 5000 },
    );
  });

  it('parses IPv4 into the same address ipaddr.js does, and leaves IPv6 to it', () => {
    const v4 = parseIp('203.0.113.77');
    const v6 = parseIp('2001:db8::1');
    const mapped = parseIp('::ffff:10.0.0.1');

    expect(v4?.addr.toString()).toBe('203.0.113.77');
    expect(v4?.addr.kind()).toBe('ipv4');
    expect(v6?.addr.kind()).toBe('ipv6');
    expect(v6?.range).toBe('reserved');
    expect(mapped?.canon).toBe('10.0.0.1');
    expect(mapped?.range).toBe('private');
    expect(parseIp('10.0.0.256')).toBeUndefined();
  });
});

describe('canonicalIp', () => {
  it('spells the IPv4-compatible ::a.b.c.d as the IPv6 address it is, not as the IPv4-mapped ::ffff:a.b.c.d', () => {
    expect(canonicalIp('::1.2.3.4')).toBe('::102:304');
    expect(canonicalIp('::102:304')).toBe('::102:304');
    expect(canonicalIp('::0.0.0.1')).toBe('::1'); // loopback, not the IPv4 0.0.0.1
    expect(canonicalIp('::1.2.3.4%eth0')).toBe('::102:304%eth0');
  });

  it('unwraps IPv4-mapped IPv6 in either spelling to the IPv4 address', () => {
    expect(canonicalIp('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(canonicalIp('::FFFF:102:304')).toBe('1.2.3.4');
  });

  it('gives any IPv6 address one spelling, however it is written', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }), fc.boolean(), (drawn, zeroHead) => {
        // Half the draws start with six zero groups: the `::a.b.c.d` spelling.
        const parts = zeroHead ? [0, 0, 0, 0, 0, 0, ...drawn.slice(6)] : drawn;
        const addr = new ipaddr.IPv6(parts);
        const quad = dotted4(parts[6] ?? 0, parts[7] ?? 0);
        const spellings = [
          parts.map((p) => p.toString(16).toUpperCase()).join(':'),
          `${parts
            .slice(0, 6)
            .map((p) => p.toString(16))
            .join(':')}:${quad}`,
          addr.toRFC5952String(),
          ...(zeroHead ? [`::${quad}`] : []),
        ];
        const expected = addr.isIPv4MappedAddress() ? addr.toIPv4Address().toString() : addr.toRFC5952String();

        for (const s of spellings) expect(canonicalIp(s)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a dotted quad inside IPv6 that is not plain decimal, as it refuses a bare one', () => {
    expect(canonicalIp('010.1.1.1')).toBeUndefined();
    expect(canonicalIp('::ffff:010.1.1.1')).toBeUndefined(); // ipaddr.js would read 10, a bare IPv4 reader 8
    expect(canonicalIp('::ffff:0x1.2.3.4')).toBeUndefined();
  });

  it('keeps the case of a zone id (Linux interface names are case-sensitive) and lower-cases the address', () => {
    expect(canonicalIp('FE80::0:1%Eth0')).toBe('fe80::1%Eth0');
    expect(canonicalIp('fe80::1%eth0')).not.toBe(canonicalIp('fe80::1%ETH0'));
    expect(canonicalIp('fe80::1%12')).toBe('fe80::1%12'); // Windows: an interface number
  });
});

describe('NetworkMatcher', () => {
  it('matches IPv4 addresses against CIDR blocks exactly as ipaddr.js does, including /0 and /32', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(32), (a, net, bits) => {
        const block = `${dotted(net)}/${bits}`;
        const expected = ipaddr.IPv4.parse(dotted(a)).match(ipaddr.IPv4.parse(dotted(net)), bits);
        const parsed = parseIp(dotted(a));

        expect(parsed && new NetworkMatcher([block]).matchesIp(parsed)).toBe(expected);
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps IPv4 and IPv6 blocks apart and matches IPv6 through ipaddr.js', () => {
    const list = new NetworkMatcher(['10.0.0.0/8', 'fd00::/8', '::/0']);

    expect(list.matchesIp(parseIp('10.1.2.3')!)).toBe(true);
    expect(list.matchesIp(parseIp('11.1.2.3')!)).toBe(false);
    expect(list.matchesIp(parseIp('2001:db8::1')!)).toBe(true);
    expect(new NetworkMatcher(['0.0.0.0/0']).matchesIp(parseIp('fd00::1')!)).toBe(false);
  });

  it('matches host names short or fully qualified, ignoring case, spaces and one trailing dot', () => {
    const list = new NetworkMatcher(['ws-ops-001', 'relay.corp.example.']);

    expect(list.matchesHost('WS-OPS-001.corp.example.')).toBe(true);
    expect(list.matchesHost(' relay.corp.example ')).toBe(true);
    expect(list.matchesHost('relay.corp.example..')).toBe(false);
    expect(list.matchesHost('ws-ops-0011')).toBe(false);
  });
});
