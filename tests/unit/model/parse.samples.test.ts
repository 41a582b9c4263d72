import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InputValidationError, MalformedJsonError, PayloadTooLargeError } from '../../../shared/errors';
import type { Case, Entity } from '../../../shared/model/domain';
import { parseJsonText } from '../../../shared/model/json';
import { type BodyKind, type ParseOutcome, parseBody } from '../../../shared/model/parse';

const SAMPLES = path.resolve(__dirname, '../../../../shared/samples');
const RECEIVED = '2026-11-20T06:00:00.000Z';
const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

function sample(name: string): unknown {
  return parseJsonText(readFileSync(path.join(SAMPLES, name)));
}

function cases(outcomes: readonly ParseOutcome[]): Case[] {
  return outcomes.map((o) => {
    if (o.status !== 'ok')
      throw new Error(`expected ok at ${o.path}, got ${o.status}: ${o.status === 'rejected' ? o.error.message : o.reason}`);
    return o.case;
  });
}

function parseSample(name: string, kind: BodyKind): Case[] {
  return cases(parseBody(sample(name), kind, RECEIVED));
}

function entity(c: Case, key: string): Entity {
  const e = c.entities.find((x) => x.key === key);
  if (!e) throw new Error(`no entity ${key} in ${c.entities.map((x) => x.key).join(', ')}`);
  return e;
}

describe('incident-create-bruteforce.json', () => {
  const [c] = parseSample('incident-create-bruteforce.json', 'incident') as [Case];

  it('is one incident case keyed by the incident GUID in the workspace', () => {
    expect(c.caseId).toBe('6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b');
    expect(c.tenantId).toBe(TENANT);
    expect(c.source).toBe('incident');
    expect(c.shape).toBe('incident');
    expect(c.title).toBe('Multiple failed sign-ins to VPN gateway from a single external IP');
    expect(c.providerSeverity).toBe('medium');
    expect(c.receivedAt).toBe(RECEIVED);
  });

  it('fills the Sentinel reference used for write-back', () => {
    expect(c.sentinel).toEqual({
      incidentArmId: expect.stringMatching(/\/Incidents\/6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b$/),
      incidentName: '6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b',
      incidentNumber: 4211,
      etag: '"2c00a3f1-0000-0800-0000-6560a1b20000"',
      url: expect.stringMatching(/^https:\/\/portal\.azure\.com\//),
      status: 'New',
      lastModifiedTimeUtc: '2026-11-20T01:13:05.412Z',
    });
    expect(c.revisionKey).toBe('2026-11-20T01:13:05.412Z');
  });

  it('starts the SLA clock at the alert generation time, which precedes incident creation', () => {
    expect(c.detectedAt).toBe('2026-11-20T01:12:58.000Z');
  });

  it('maps the alert with rule ids, the K4-1 code and the incident techniques', () => {
    expect(c.alerts).toHaveLength(1);
    const a = c.alerts[0];
    expect(a?.id).toBe('9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b');
    expect(a?.name).toBe('K4-1 Brute force against VPN gateway');
    expect(a?.ruleIds).toEqual(expect.arrayContaining(['K4-1', '5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a']));
    expect(a?.ruleIds.some((r) => r.endsWith('/alertRules/5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a'))).toBe(true);
    expect(a?.ruleNames).toContain('K4-1 Brute force against VPN gateway');
    expect(a?.tactics).toEqual(['CredentialAccess']);
    expect(a?.techniques).toEqual(['T1110']);
    expect(a?.providerSeverity).toBe('medium');
    expect(a?.startTime).toBe('2026-11-20T01:02:11.000Z');
  });

  it('keys the related entities canonically', () => {
    expect(c.entities.map((e) => e.key)).toEqual([
      'ip:203.0.113.77',
      'host:vpn01.corp.contoso.example',
      'account:k.tanaka@contoso.example',
    ]);
    expect(entity(c, 'host:vpn01.corp.contoso.example').altKeys).toContain('host:vpn01');
  });
});

describe('securityalert-records.json', () => {
  const [first, second] = parseSample('securityalert-records.json', 'alerts') as [Case, Case];

  it('makes one alert case per row keyed by SystemAlertId', () => {
    expect(first.caseId).toBe('1b7e0c54-3a9d-4f21-8d6e-5c4b3a291807');
    expect(second.caseId).toBe('4c2a9e81-6d3f-4b7a-9e1c-0f5d2b8a7c36');
    expect(first.tenantId).toBe(TENANT);
    expect(first.source).toBe('alert');
    expect(first.shape).toBe('security-alert');
    expect(first.providerSeverity).toBe('high');
    expect(first.detectedAt).toBe('2026-11-20T03:42:30.118Z');
    expect(first.revisionKey).toBe('2026-11-20T03:42:30.118Z');
  });

  it('splits and trims the comma-separated tactics and joins techniques with sub-techniques', () => {
    expect(first.alerts[0]?.tactics).toEqual(['Execution', 'CommandAndControl']);
    expect(first.alerts[0]?.techniques).toEqual(['T1059', 'T1105', 'T1059.001']);
  });

  it('takes the K2-3 code from ExtendedProperties "Rule Id"', () => {
    expect(first.alerts[0]?.ruleIds).toContain('K2-3');
  });

  it('takes K7-2 from "Analytic Rule Name" and the rule GUID from "Analytic Rule Ids" and the AlertType', () => {
    const a = second.alerts[0];
    expect(a?.ruleIds).toEqual(['e7d6c5b4-a3f2-4e1d-9c8b-7a6f5e4d3c2b', 'K7-2']);
    expect(a?.ruleNames[0]).toBe('K7-2 Remote service creation (lateral movement)');
  });

  it('resolves $ref so the process entity carries its command line and host', () => {
    const p = first.entities.find((e) => e.kind === 'process');
    expect(p?.key).toBe('process:ws-fin-023.corp.contoso.example|7720|2026-11-20T03:41:09.000Z');
    expect(p?.fields.commandLine).toMatch(/^powershell\.exe -nop -w hidden -enc /);
    expect(p?.fields.hostName).toBe('ws-fin-023.corp.contoso.example');
    expect(p?.fields.accountName).toBe('s.yamada@contoso.example');
  });

  it('keys the account by UPN with NetBIOS and SID altKeys', () => {
    expect(entity(first, 'account:s.yamada@contoso.example').altKeys).toEqual([
      'account:contoso\\s.yamada',
      'account:sid:S-1-5-21-1004336348-1177238915-682003330-5120',
    ]);
    expect(entity(second, 'account:contoso\\svc-backup').kind).toBe('account');
  });

  it('puts every entity on the alert as well as the case', () => {
    expect(first.alerts[0]?.entities.map((e) => e.key)).toEqual(first.entities.map((e) => e.key));
    expect(first.entities.map((e) => e.key)).toEqual(
      expect.arrayContaining([
        'host:ws-fin-023.corp.contoso.example',
        'ip:10.20.5.23',
        'ip:198.51.100.23',
        expect.stringMatching(/^file:c:\\windows\\/),
      ]),
    );
  });
});

describe('eventhub-batch.json', () => {
  it('carries the same two alerts as securityalert-records.json with the same caseIds and fingerprints', () => {
    const rows = parseSample('securityalert-records.json', 'alerts');

    const batch = parseBody(sample('eventhub-batch.json'), 'eventhub-batch', '2026-11-21T00:00:00.000Z');

    expect(batch.map((o) => o.path)).toEqual(['$[0].records[0]', '$[1].records[0]']);
    const fromHub = cases(batch);
    expect(fromHub.map((c) => c.shape)).toEqual(['eventhub-envelope', 'eventhub-envelope']);
    expect(fromHub.map((c) => c.caseId)).toEqual(rows.map((c) => c.caseId));
    expect(fromHub.map((c) => c.fingerprint)).toEqual(rows.map((c) => c.fingerprint));
  });

  it('accepts each event as a JSON string or as bytes', () => {
    const events = sample('eventhub-batch.json') as unknown[];
    const mixed = [JSON.stringify(events[0]), new Uint8Array(Buffer.from(JSON.stringify(events[1])))];

    const out = cases(parseBody(mixed, 'eventhub-batch', RECEIVED));

    expect(out.map((c) => c.caseId)).toEqual(['1b7e0c54-3a9d-4f21-8d6e-5c4b3a291807', '4c2a9e81-6d3f-4b7a-9e1c-0f5d2b8a7c36']);
  });
});

describe('generic-alert.json', () => {
  const [c] = parseSample('generic-alert.json', 'alerts') as [Case];

  it('is an alert case keyed source:id', () => {
    expect(c.caseId).toBe('fortigate-01:fgt-2026-11-20-000981');
    expect(c.tenantId).toBe(TENANT);
    expect(c.shape).toBe('generic');
    expect(c.providerSeverity).toBe('medium');
    expect(c.detectedAt).toBe('2026-11-20T05:10:00.000Z');
    expect(c.revisionKey).toBe('2026-11-20T05:10:00.000Z');
    expect(c.alerts[0]?.ruleIds).toEqual(['K3-1']);
    expect(c.alerts[0]?.tactics).toEqual(['CommandAndControl']);
    expect(c.entities.map((e) => e.key)).toEqual(['ip:10.20.7.41', 'ip:192.0.2.200', 'host:ws-hr-007']);
  });
});

describe('samples/bad', () => {
  it('has exactly the files these tests cover', () => {
    expect(readdirSync(path.join(SAMPLES, 'bad')).sort()).toEqual([
      'bad-entities.json',
      'oversized.json',
      'truncated.json',
      'wrong-shapes.json',
    ]);
  });

  it('oversized.json is refused before parsing', () => {
    expect(() => sample('bad/oversized.json')).toThrow(PayloadTooLargeError);
  });

  it('truncated.json is malformed JSON', () => {
    expect(() => sample('bad/truncated.json')).toThrow(MalformedJsonError);
  });

  it('wrong-shapes.json yields four rejections with paths and reasons', () => {
    const out = parseBody(sample('bad/wrong-shapes.json'), 'alerts', RECEIVED);

    expect(out.map((o) => [o.status, o.path])).toEqual([
      ['rejected', '$[0]'],
      ['rejected', '$[1]'],
      ['rejected', '$[2]'],
      ['rejected', '$[3]'],
    ]);
    const issues = out.map((o) => (o.status === 'rejected' ? o.error.issues : []));
    expect(issues[0]).toEqual([{ path: '$[0]', reason: 'expected an object (SecurityAlert row, envelope or generic alert), got number' }]);
    expect(issues[1]?.[0]?.reason).toMatch(/got string$/);
    expect(issues[2]?.[0]?.reason).toMatch(/got null$/);
    expect(issues[3]).toEqual([{ path: '$[3].records', reason: 'expected array, got string' }]);
  });

  it('bad-entities.json is rejected naming the invalid address, the dangling ref and the bad date', () => {
    const out = parseBody(sample('bad/bad-entities.json'), 'alerts', RECEIVED);

    expect(out).toHaveLength(1);
    const o = out[0];
    if (o?.status !== 'rejected') throw new Error('expected a rejection');
    expect(o.path).toBe('$.records[0]');
    expect(o.error).toBeInstanceOf(InputValidationError);
    expect(o.error.issues).toEqual(
      expect.arrayContaining([
        { path: '$.records[0].Entities[0].Address', reason: 'invalid IP address "999.1.1.1"' },
        { path: '$.records[0].Entities[1].$ref', reason: 'dangling $ref "42"' },
        { path: '$.records[0].TimeGenerated', reason: 'expected an ISO 8601 date-time with time zone, got "not a date"' },
      ]),
    );
    expect(o.raw).toMatchObject({ SystemAlertId: 'x' });
  });
});
