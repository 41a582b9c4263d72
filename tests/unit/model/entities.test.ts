import type { InputIssue } from '../../../shared/errors';
import type { Entity } from '../../../shared/model/domain';
import { mergeEntities, readGenericEntities, readIncidentEntities, readSecurityAlertEntities } from '../../../shared/model/entities';

function generic(...items: Record<string, unknown>[]): { entities: Entity[]; issues: InputIssue[] } {
  const issues: InputIssue[] = [];
  const entities = readGenericEntities(items, '$.entities', issues);
  return { entities, issues };
}

function one(item: Record<string, unknown>): Entity {
  const { entities, issues } = generic(item);
  expect(issues).toEqual([]);
  expect(entities).toHaveLength(1);
  return entities[0] as Entity;
}

function sa(entities: unknown[]): { entities: Entity[]; issues: InputIssue[] } {
  const issues: InputIssue[] = [];
  const out = readSecurityAlertEntities(JSON.stringify(entities), '$.Entities', issues);
  return { entities: out, issues };
}

describe('IP entities', () => {
  it('canonicalises IPv6 to RFC 5952 form', () => {
    expect(one({ kind: 'ip', address: '2001:DB8:0:0:0:0:0:1' }).key).toBe('ip:2001:db8::1');
  });

  it('unwraps IPv4-mapped IPv6 to the IPv4 address', () => {
    expect(one({ kind: 'ip', address: '::ffff:192.0.2.7' }).key).toBe('ip:192.0.2.7');
  });

  it('keys every spelling of one IPv6 address the same, whether or not it ends in a dotted quad', () => {
    const keys = ['::1.2.3.4', '::102:304', '0:0:0:0:0:0:102:0304', '::0102:0304'].map((address) => one({ kind: 'ip', address }).key);

    expect(new Set(keys)).toEqual(new Set(['ip:::102:304']));
  });

  it('gives the same address inside a URL and as an IP entity the same key', () => {
    const ip = one({ kind: 'ip', address: '::1.2.3.4' });
    const url = one({ kind: 'url', url: 'http://[::1.2.3.4]/x' });

    expect(url.altKeys).toEqual([ip.key]);
  });

  it('keeps the case of a zone id, which names an interface, and lower-cases only the address', () => {
    expect(one({ kind: 'ip', address: 'FE80::0:1%Eth0' }).key).toBe('ip:fe80::1%Eth0');
    expect(one({ kind: 'ip', address: 'fe80::1%eth0' }).key).not.toBe(one({ kind: 'ip', address: 'fe80::1%ETH0' }).key);
  });

  it('keeps a canonical IPv4 and records the address field', () => {
    const e = one({ kind: 'ip', address: ' 203.0.113.77 ' });
    expect(e.key).toBe('ip:203.0.113.77');
    expect(e.fields.address).toBe('203.0.113.77');
  });

  it('rejects an invalid address at the exact path', () => {
    const { entities, issues } = generic({ kind: 'ip', address: '10.0.0.1' }, { kind: 'ip', address: '999.1.1.1' });

    expect(entities).toHaveLength(1);
    expect(issues).toEqual([{ path: '$.entities[1].address', reason: 'invalid IP address "999.1.1.1"' }]);
  });

  it('rejects classful shorthand such as "10.1"', () => {
    expect(generic({ kind: 'ip', address: '10.1' }).issues[0]?.path).toBe('$.entities[0].address');
  });
});

describe('host entities', () => {
  it('keys by FQDN when the DNS domain is known, with the short and NetBIOS names as altKeys', () => {
    const e = one({ kind: 'host', hostName: 'VPN01', dnsDomain: 'Corp.Contoso.Example.', ntDomain: 'CONTOSO' });

    expect(e.key).toBe('host:vpn01.corp.contoso.example');
    expect(e.altKeys).toEqual(['host:vpn01', 'host:contoso\\vpn01']);
    expect(e.fields).toMatchObject({ hostName: 'vpn01', dnsDomain: 'corp.contoso.example', fqdn: 'vpn01.corp.contoso.example' });
  });

  it('splits an FQDN given as HostName', () => {
    const e = one({ kind: 'host', hostName: 'fs-01.corp.contoso.example' });
    expect(e.key).toBe('host:fs-01.corp.contoso.example');
    expect(e.altKeys).toEqual(['host:fs-01']);
  });

  it('reads a host written DOMAIN\\name as that name in that NT domain, keyed as the same host with NTDomain', () => {
    const written = one({ kind: 'host', hostName: 'CONTOSO\\WS-01', dnsDomain: 'corp.contoso.example' });
    const separate = one({ kind: 'host', hostName: 'WS-01', ntDomain: 'CONTOSO', dnsDomain: 'corp.contoso.example' });

    expect(written.key).toBe('host:ws-01.corp.contoso.example');
    expect(written.altKeys).toEqual(separate.altKeys);
    expect(written.fields).toMatchObject({ hostName: 'ws-01', ntDomain: 'CONTOSO' });
    expect(sa([{ $id: '1', Type: 'host', HostName: 'CORP\\host01' }]).entities[0]?.altKeys).toContain('host:corp\\host01');
  });

  it('refuses a DOMAIN\\name host whose domain contradicts its NTDomain, at the field', () => {
    const { entities, issues } = generic({ kind: 'host', hostName: 'CORP\\ws-01', ntDomain: 'OTHER' });

    expect(entities).toEqual([]);
    expect(issues).toEqual([
      { path: '$.entities[0].hostName', reason: 'host name "CORP\\\\ws-01" names NT domain "CORP", but NTDomain is "OTHER"' },
    ]);
  });

  it('keys by the short name when nothing else is known', () => {
    expect(one({ kind: 'host', hostName: 'ws-hr-007' }).key).toBe('host:ws-hr-007');
  });

  it('rejects a host with no name at the entity path', () => {
    expect(generic({ kind: 'host', osFamily: 'Windows' }).issues).toEqual([
      { path: '$.entities[0]', reason: 'host entity without HostName, FQDN, NetBiosName or AzureID' },
    ]);
  });

  it('refuses a host name with an empty label', () => {
    for (const name of ['.', '..', '.corp', 'a..b', 'ws-01..']) {
      const { entities, issues } = generic({ kind: 'host', hostName: name });

      expect(entities).toEqual([]);
      expect(issues).toEqual([{ path: '$.entities[0].hostName', reason: `invalid host name ${JSON.stringify(name)}` }]);
    }
  });

  it('refuses an FQDN, NetBIOS name or DNS domain with an empty label at that field', () => {
    const cases = [
      { fqdn: 'ws-01..corp.example' },
      { hostName: 'ws-01', netBiosName: '.ws-01' },
      { hostName: 'ws-01', dnsDomain: '.corp.example' },
    ];

    const paths = cases.map((c) => generic({ kind: 'host', ...c }).issues.map((i) => i.path));

    expect(paths).toEqual([['$.entities[0].fqdn'], ['$.entities[0].netBiosName'], ['$.entities[0].dnsDomain']]);
  });

  it('refuses a SecurityAlert HostName "." at its path instead of keying it "host:"', () => {
    const { entities, issues } = sa([{ $id: '1', HostName: '.', Type: 'host' }]);

    expect(entities).toEqual([]);
    expect(issues).toEqual([{ path: '$.Entities[0].HostName', reason: 'invalid host name "."' }]);
  });

  it('still accepts one trailing dot (DNS root) on a host name and an FQDN', () => {
    expect(one({ kind: 'host', hostName: 'ws-01.' }).key).toBe('host:ws-01');
    expect(one({ kind: 'host', fqdn: 'WS-01.Corp.Example.' }).key).toBe('host:ws-01.corp.example');
  });
});

describe('account entities', () => {
  it('keys by UPN with the NetBIOS form, AAD object id and SID as altKeys', () => {
    const e = one({
      kind: 'account',
      name: 'K.Tanaka',
      upnSuffix: 'contoso.example',
      ntDomain: 'CONTOSO',
      aadUserId: 'ABCDEF01-2345-4678-9abc-def012345678',
      sid: 's-1-5-21-1-2-3-1104',
    });

    expect(e.key).toBe('account:k.tanaka@contoso.example');
    expect(e.altKeys).toEqual([
      'account:contoso\\k.tanaka',
      'account:aad:abcdef01-2345-4678-9abc-def012345678',
      'account:sid:S-1-5-21-1-2-3-1104',
    ]);
  });

  it('reads DOMAIN\\name spelt in the name', () => {
    expect(one({ kind: 'account', name: 'CONTOSO\\svc-backup' }).key).toBe('account:contoso\\svc-backup');
  });

  it('rejects a malformed SID', () => {
    expect(generic({ kind: 'account', name: 'x', sid: 'not-a-sid' }).issues[0]?.path).toBe('$.entities[0].sid');
  });

  it('refuses a UPN without a local part', () => {
    const byName = generic({ kind: 'account', name: '@corp.example' });
    const byUpn = generic({ kind: 'account', upn: '@corp.example' });

    expect(byName.entities).toEqual([]);
    expect(byName.issues).toEqual([{ path: '$.entities[0].name', reason: 'invalid user principal name "@corp.example"' }]);
    expect(byUpn.issues).toEqual([{ path: '$.entities[0].upn', reason: 'invalid user principal name "@corp.example"' }]);
  });

  it('refuses a UPN without a domain', () => {
    expect(generic({ kind: 'account', name: 'alice@' }).issues).toEqual([
      { path: '$.entities[0].name', reason: 'invalid user principal name "alice@"' },
    ]);
  });

  it('keys a UPN field without any @ as given, so a bare account name there does not park the alert', () => {
    expect(one({ kind: 'account', upn: 'alice' }).key).toBe('account:alice');
  });

  it('refuses a UPN with more than one @, naming the field it came from', () => {
    expect(generic({ kind: 'account', upn: 'a@b@c' }).issues).toEqual([
      { path: '$.entities[0].upn', reason: 'invalid user principal name "a@b@c"' },
    ]);
    expect(generic({ kind: 'account', name: 'a', upnSuffix: 'b@c' }).issues).toEqual([
      { path: '$.entities[0].upnSuffix', reason: 'invalid user principal name "a@b@c"' },
    ]);
  });

  it('names a SecurityAlert UserPrincipalName as spelt when the UPN is invalid', () => {
    const { entities, issues } = sa([{ $id: '1', Name: 'alice', UserPrincipalName: 'alice@', Type: 'account' }]);

    expect(entities).toEqual([]);
    expect(issues).toEqual([{ path: '$.Entities[0].UserPrincipalName', reason: 'invalid user principal name "alice@"' }]);
  });
});

describe('file hashes, files, urls, domains, mailboxes, cloud apps', () => {
  it('lower-cases the hash and checks its length per algorithm', () => {
    const sha = 'A'.repeat(64);
    expect(one({ kind: 'filehash', algorithm: 'SHA256', value: sha }).key).toBe(`filehash:sha256:${'a'.repeat(64)}`);
    expect(generic({ kind: 'filehash', algorithm: 'MD5', value: 'ab'.repeat(20) }).issues).toEqual([
      { path: '$.entities[0].value', reason: 'expected 32 hex digits for MD5, got 40' },
    ]);
    expect(generic({ kind: 'filehash', algorithm: 'SHA1', value: 'zz'.repeat(20) }).issues[0]?.reason).toMatch(/not a hexadecimal hash/);
  });

  it('refuses hash Algorithm "constructor" as an unsupported hash algorithm', () => {
    const { entities, issues } = generic({ kind: 'filehash', algorithm: 'constructor', value: 'a'.repeat(64) });

    expect(entities).toEqual([]);
    expect(issues).toEqual([{ path: '$.entities[0].algorithm', reason: 'unsupported hash algorithm "constructor"' }]);
  });

  it('infers the algorithm of an "Unknown" hash from its length', () => {
    expect(one({ kind: 'filehash', algorithm: 'Unknown', value: 'b'.repeat(40) }).key).toBe(`filehash:sha1:${'b'.repeat(40)}`);
  });

  it('joins directory and name into a lower-cased file key', () => {
    expect(one({ kind: 'file', directory: 'C:\\Temp\\', name: 'X.exe' }).key).toBe('file:c:\\temp\\x.exe');
    expect(one({ kind: 'file', directory: '/usr/bin', name: 'curl' }).key).toBe('file:/usr/bin/curl');
  });

  it('keeps a URL as given and adds its host as a domain altKey (never fetched)', () => {
    const e = one({ kind: 'url', url: ' https://Evil.Example./path?q=1 ' });
    expect(e.key).toBe('url:https://Evil.Example./path?q=1');
    expect(e.altKeys).toEqual(['domain:evil.example']);
  });

  it('adds an ip altKey for a URL whose host is an address', () => {
    expect(one({ kind: 'url', url: 'http://[2001:db8::0:1]:8080/' }).altKeys).toEqual(['ip:2001:db8::1']);
  });

  it('lower-cases domains and drops the trailing dot', () => {
    expect(one({ kind: 'domain', domain: 'Bad.Example.' }).key).toBe('domain:bad.example');
  });

  it('refuses a domain with an empty label', () => {
    for (const domain of ['..', '.bad.example', 'bad..example']) {
      expect(generic({ kind: 'domain', domain }).issues).toEqual([
        { path: '$.entities[0].domain', reason: `invalid domain name ${JSON.stringify(domain)}` },
      ]);
    }
  });

  it('keys mailboxes by address and cloud apps by app id', () => {
    expect(one({ kind: 'mailbox', address: 'K.Tanaka@Contoso.Example' }).key).toBe('mailbox:k.tanaka@contoso.example');
    const app = one({ kind: 'cloud-app', appId: '20893', name: 'Dropbox' });
    expect(app.key).toBe('cloud-app:20893');
    expect(app.altKeys).toEqual(['cloud-app:dropbox']);
  });

  it('rejects an unknown generic kind at its path', () => {
    expect(generic({ kind: 'registry-key', key: 'HKLM' }).issues[0]?.path).toBe('$.entities[0].kind');
  });
});

describe('fields', () => {
  it('keeps only the documented scalars and truncates long strings at 2,000 characters', () => {
    const e = one({ kind: 'process', processId: 42, commandLine: 'x'.repeat(5_000), hostName: 'ws-01', secret: 'dropped' });

    expect(String(e.fields.commandLine)).toHaveLength(2_000);
    expect(e.fields.processId).toBe('42');
    expect(e.fields).not.toHaveProperty('secret');
  });

  it('rejects a string longer than 32 KB at its path', () => {
    expect(generic({ kind: 'url', url: `https://a.example/${'a'.repeat(40_000)}` }).issues).toEqual([
      { path: '$.entities[0].url', reason: 'string longer than 32768 characters' },
    ]);
  });
});

describe('SecurityAlert $id / $ref', () => {
  it('resolves nested refs so the process carries its host, account and image file', () => {
    const { entities, issues } = sa([
      { $id: '2', HostName: 'ws-fin-023', DnsDomain: 'corp.contoso.example', Type: 'host' },
      { $id: '3', Name: 's.yamada', UPNSuffix: 'contoso.example', Type: 'account' },
      { $id: '4', Directory: 'C:\\Windows', Name: 'cmd.exe', Type: 'file' },
      {
        $id: '5',
        ProcessId: '77',
        CommandLine: 'cmd /c whoami',
        ImageFile: { $ref: '4' },
        Account: { $ref: '3' },
        Host: { $ref: '2' },
        Type: 'process',
      },
    ]);

    expect(issues).toEqual([]);
    const p = entities.find((e) => e.kind === 'process');
    expect(p?.key).toBe('process:ws-fin-023.corp.contoso.example|77|');
    expect(p?.fields).toMatchObject({
      commandLine: 'cmd /c whoami',
      hostName: 'ws-fin-023.corp.contoso.example',
      accountName: 's.yamada@contoso.example',
      imageFile: 'cmd.exe',
    });
  });

  it('returns entities defined only inline inside another entity', () => {
    const { entities } = sa([
      { $id: '1', Name: 'a', NTDomain: 'D', Host: { $id: '2', HostName: 'h1', Type: 'host' }, Type: 'account' },
      { $ref: '2' },
    ]);
    expect(entities.map((e) => e.key)).toEqual(['account:d\\a', 'host:h1']);
  });

  it('names a dangling ref with its path inside the string', () => {
    const { issues } = sa([{ $id: '1', Address: '10.0.0.1', Type: 'ip' }, { $ref: '42' }]);
    expect(issues).toEqual([{ path: '$.Entities[1].$ref', reason: 'dangling $ref "42"' }]);
  });

  it('refuses a reference cycle', () => {
    const { issues } = sa([
      { $id: '2', Name: 'a', NTDomain: 'D', Host: { $ref: '3' }, Type: 'account' },
      { $id: '3', HostName: 'h', Owner: { $ref: '2' }, Type: 'host' },
    ]);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('$.Entities[1].Owner.$ref');
    expect(issues[0]?.reason).toMatch(/cycle/);
  });

  it('skips kinds the product does not model instead of refusing the alert', () => {
    const { entities, issues } = sa([
      { $id: '1', ResourceId: '/subscriptions/x', Type: 'azure-resource' },
      { $id: '2', Address: '10.0.0.1', Type: 'ip' },
    ]);
    expect(issues).toEqual([]);
    expect(entities.map((e) => e.key)).toEqual(['ip:10.0.0.1']);
  });

  it('treats entity Type "constructor" (or "__proto__") as an unknown type', () => {
    const { entities, issues } = sa([
      { $id: '1', Name: 'x', Type: 'constructor' },
      { $id: '2', Name: 'y', Type: '__proto__' },
      { $id: '3', Address: '10.0.0.1', Type: 'ip' },
    ]);

    expect(issues).toEqual([]);
    expect(entities.map((e) => e.key)).toEqual(['ip:10.0.0.1']);
  });

  it('reports JSON that is not valid inside the string', () => {
    const issues: InputIssue[] = [];
    readSecurityAlertEntities('[{"Type":', '$[0].Entities', issues);
    expect(issues[0]?.path).toBe('$[0].Entities');
    expect(issues[0]?.reason).toMatch(/not valid JSON/);
  });

  it('refuses more than 500 entities', () => {
    const many = Array.from({ length: 501 }, (_, i) => ({ $id: String(i), Address: '10.0.0.1', Type: 'ip' }));
    expect(sa(many).issues[0]?.reason).toMatch(/501 entities exceed the limit of 500/);
  });
});

describe('incident relatedEntities', () => {
  it('reads camelCase properties and looks up a process host by entity id', () => {
    const issues: InputIssue[] = [];
    const entities = readIncidentEntities(
      [
        { id: '/x/Entities/h1', kind: 'Host', properties: { hostName: 'srv', dnsDomain: 'corp.example' } },
        { id: '/x/Entities/p1', kind: 'Process', properties: { processId: '9', commandLine: 'x', hostEntityId: '/x/Entities/h1' } },
      ],
      '$.object.properties.relatedEntities',
      issues,
    );
    expect(issues).toEqual([]);
    expect(entities[1]?.key).toBe('process:srv.corp.example|9|');
  });

  it('treats an incident entity kind "constructor" as an unknown kind', () => {
    const issues: InputIssue[] = [];

    const entities = readIncidentEntities(
      [
        { kind: 'constructor', properties: { name: 'x' } },
        { kind: 'Ip', properties: { address: '10.0.0.1' } },
      ],
      '$.object.properties.relatedEntities',
      issues,
    );

    expect(issues).toEqual([]);
    expect(entities.map((e) => e.key)).toEqual(['ip:10.0.0.1']);
  });

  it('names the path of an invalid property', () => {
    const issues: InputIssue[] = [];
    readIncidentEntities([{ kind: 'Ip', properties: { address: 'nope' } }], '$.object.properties.relatedEntities', issues);
    expect(issues).toEqual([{ path: '$.object.properties.relatedEntities[0].properties.address', reason: 'invalid IP address "nope"' }]);
  });
});

describe('mergeEntities', () => {
  it('deduplicates by key and merges altKeys and missing fields', () => {
    const a: Entity = { kind: 'host', key: 'host:h.example', altKeys: ['host:h'], label: 'h.example', fields: { hostName: 'h' } };
    const b: Entity = { kind: 'host', key: 'host:h.example', altKeys: ['host:d\\h'], label: 'h.example', fields: { osFamily: 'Linux' } };

    const out = mergeEntities([[a], [b]]);

    expect(out).toHaveLength(1);
    expect(out[0]?.altKeys).toEqual(['host:h', 'host:d\\h']);
    expect(out[0]?.fields).toEqual({ hostName: 'h', osFamily: 'Linux' });
  });

  it('folds a short-name entity into the one entity of the same kind that claims it as altKey', () => {
    const full: Entity = { kind: 'host', key: 'host:vpn01.corp.example', altKeys: ['host:vpn01'], label: 'vpn01.corp.example', fields: {} };
    const short: Entity = { kind: 'host', key: 'host:vpn01', altKeys: [], label: 'vpn01', fields: { osFamily: 'Linux' } };

    const out = mergeEntities([[short], [full]]);

    expect(out.map((e) => e.key)).toEqual(['host:vpn01.corp.example']);
    expect(out[0]?.fields).toEqual({ osFamily: 'Linux' });
  });

  it('does not fold across kinds', () => {
    const url: Entity = { kind: 'url', key: 'url:http://10.0.0.1/', altKeys: ['ip:10.0.0.1'], label: 'u', fields: {} };
    const ip: Entity = { kind: 'ip', key: 'ip:10.0.0.1', altKeys: [], label: '10.0.0.1', fields: {} };
    expect(mergeEntities([[url, ip]]).map((e) => e.key)).toEqual(['url:http://10.0.0.1/', 'ip:10.0.0.1']);
  });
});
