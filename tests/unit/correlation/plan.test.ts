import { buildCorrelationPlan, compileCorrelationSettings, lookupKeys } from '../../../shared/correlation/plan';
import { account, contosoPolicy, domain, filehash, host, ip, makeCase, proc } from '../../fixtures/brain/factory';

const settings = compileCorrelationSettings(contosoPolicy());

describe('correlation plan', () => {
  it('looks up the keys and alt keys of ip, host and account entities within the policy window', () => {
    const c = makeCase({
      caseId: 'p1',
      entities: [
        host('vpn01.corp.contoso.example'),
        ip('203.0.113.77'),
        account('k.tanaka@contoso.example', ['account:contoso\\k.tanaka']),
      ],
    });

    const plan = buildCorrelationPlan(c, ['exploitation'], settings);

    expect(plan.keys).toEqual([
      'host:vpn01.corp.contoso.example',
      'host:vpn01',
      'ip:203.0.113.77',
      'account:k.tanaka@contoso.example',
      'account:contoso\\k.tanaka',
    ]);
    expect(plan.windowMs).toBe(7 * 24 * 3_600_000);
    expect(plan.infrastructureThreshold).toBe(50);
    expect(plan.phases).toEqual(['exploitation']);
    expect(plan.ignored).toEqual([]);
  });

  it('leaves out process, file-hash and domain entities without listing them as ignored', () => {
    const c = makeCase({ caseId: 'p2', entities: [proc('cmd.exe /c whoami'), filehash('ab'.repeat(32)), domain('cdn.example.net')] });

    const plan = buildCorrelationPlan(c, [], settings);

    expect(plan.keys).toEqual([]);
    expect(plan.ignored).toEqual([]);
  });

  it("ignores the tenant's non-correlating entities by IP, CIDR, entity key and short host name", () => {
    const c = makeCase({
      caseId: 'p3',
      entities: [
        ip('10.0.0.53'),
        ip('10.99.0.7'),
        account('svc-scan@contoso.example'),
        host('dns01.corp.contoso.example'),
        ip('10.0.0.54'),
      ],
    });

    const plan = buildCorrelationPlan(c, [], settings);

    expect(plan.keys).toEqual(['ip:10.0.0.54']);
    expect(plan.ignored).toEqual([
      { key: 'ip:10.0.0.53', why: 'policy network.nonCorrelating: IP/CIDR match' },
      { key: 'ip:10.99.0.7', why: 'policy network.nonCorrelating: IP/CIDR match' },
      { key: 'account:svc-scan@contoso.example', why: 'policy network.nonCorrelating: account:svc-scan@contoso.example' },
      { key: 'host:dns01.corp.contoso.example', why: 'policy network.nonCorrelating: host:dns01' },
    ]);
  });

  it('ignores built-in system accounts and loopback, unspecified and link-local addresses', () => {
    const c = makeCase({
      caseId: 'p4',
      entities: [
        account('NT AUTHORITY\\SYSTEM'),
        account('system'),
        account('Local Service'),
        ip('127.0.0.1'),
        ip('::'),
        ip('169.254.10.1'),
        host('localhost'),
      ],
    });

    const plan = buildCorrelationPlan(c, [], settings);

    expect(plan.keys).toEqual([]);
    expect(plan.ignored.map((i) => i.why)).toEqual([
      'built-in: well-known system account',
      'built-in: well-known system account',
      'built-in: well-known system account',
      'built-in: loopback address',
      'built-in: unspecified address',
      'built-in: link-local address',
      'built-in: local host name',
    ]);
  });

  it('ignores a host that calls itself localhost in any DNS domain: its short key would link every such machine', () => {
    const c = makeCase({ caseId: 'p5', entities: [host('localhost.corp.contoso.example'), host('LOCALHOST.branch.example')] });

    const plan = buildCorrelationPlan(c, [], settings);

    expect(plan.keys).toEqual([]);
    expect(plan.ignored).toEqual([
      { key: 'host:localhost.corp.contoso.example', why: 'built-in: local host name' },
      { key: 'host:localhost.branch.example', why: 'built-in: local host name' },
    ]);
  });

  it('reads the window and thresholds from the policy', () => {
    const s = compileCorrelationSettings(
      contosoPolicy({ correlation: { window: 'PT36H', infrastructureThreshold: 5, escalateWhen: { distinctPhases: 4 } } }),
    );

    expect(s).toMatchObject({
      windowMs: 36 * 3_600_000,
      windowText: 'PT36H',
      infrastructureThreshold: 5,
      distinctPhases: 4,
      progression: true,
    });
  });
});

describe('store look-up keys', () => {
  it('looks a host up by its short name alone when the short name is among its keys', () => {
    const keys = [
      'host:vpn01.corp.contoso.example',
      'host:vpn01',
      'host:contoso\\vpn01',
      'ip:203.0.113.77',
      'account:k.tanaka@contoso.example',
    ];

    expect(lookupKeys(keys)).toEqual(['host:vpn01', 'ip:203.0.113.77', 'account:k.tanaka@contoso.example']);
  });

  it('drops the same spellings in a plan with many keys', () => {
    const hosts = Array.from({ length: 12 }, (_, i) => [`host:ws-${i}.corp.contoso.example`, `host:ws-${i}`]).flat();

    expect(lookupKeys(hosts)).toEqual(Array.from({ length: 12 }, (_, i) => `host:ws-${i}`));
  });

  it('keeps a spelling whose short name is not among the keys, cloud ids, and IP-named hosts', () => {
    const keys = ['host:ws-9.corp.contoso.example', 'host:azure:abc', 'host:10.0.0.5'];

    expect(lookupKeys(keys)).toEqual(keys);
  });
});
