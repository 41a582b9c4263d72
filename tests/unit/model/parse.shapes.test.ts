import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Case } from '../../../shared/model/domain';
import { normaliseIsoDate } from '../../../shared/model/inputs/common';
import { parseJsonText } from '../../../shared/model/json';
import { MAX_ITEMS_PER_BODY, type ParseOutcome, parseBody } from '../../../shared/model/parse';
import { compareRevisionKeys } from '../../../shared/model/revision';

const SAMPLES = path.resolve(__dirname, '../../../../shared/samples');
const FIXTURES = path.resolve(__dirname, '../../fixtures/inputs');
const RECEIVED = '2026-11-20T06:00:00.000Z';

function load(dir: string, name: string): unknown {
  return parseJsonText(readFileSync(path.join(dir, name)));
}

/** A deep copy of a sample, to mutate in a test. */
function copy<T = Record<string, unknown>>(dir: string, name: string): T {
  return structuredClone(load(dir, name)) as T;
}

function ok(o: ParseOutcome | undefined): Case {
  if (o?.status !== 'ok') throw new Error(`expected ok, got ${o?.status}: ${o?.status === 'rejected' ? o.error.message : ''}`);
  return o.case;
}

function issues(o: ParseOutcome | undefined): { path: string; reason: string }[] {
  if (o?.status !== 'rejected') throw new Error(`expected rejected, got ${o?.status}`);
  return [...o.error.issues];
}

type Row = Record<string, unknown>;
const row = (): Row => (load(SAMPLES, 'securityalert-records.json') as Row[])[0] as Row;
const incident = () =>
  copy<{ objectEventType: string; object: { properties: Record<string, unknown> } }>(SAMPLES, 'incident-create-bruteforce.json');

describe('batches', () => {
  it('parses the good records of a batch around a bad one and ignores other tables', () => {
    const out = parseBody(load(FIXTURES, 'eventhub-mixed-batch.json'), 'eventhub-batch', RECEIVED);

    expect(out.map((o) => [o.path, o.status])).toEqual([
      ['$[0].records[0]', 'ok'],
      ['$[0].records[1]', 'rejected'],
      ['$[0].records[2]', 'ignored'],
      ['$[1].records[0]', 'ok'],
    ]);
    expect(issues(out[1]).map((i) => i.path)).toEqual(
      expect.arrayContaining(['$[0].records[1].TimeGenerated', '$[0].records[1].AlertSeverity', '$[0].records[1].Entities[0].Address']),
    );
    expect(out[1]?.status === 'rejected' && out[1].tenantId).toBe('8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b');
    expect(out[2]?.status === 'ignored' && out[2].reason).toMatch(/"SigninLogs" is not a SecurityAlert/);
  });

  it('normalises 7-digit fractions and offsets to UTC milliseconds and treats "" JSON-in-string columns as empty', () => {
    const out = parseBody(load(FIXTURES, 'eventhub-mixed-batch.json'), 'eventhub-batch', RECEIVED);

    expect(ok(out[0]).detectedAt).toBe('2026-11-20T08:00:00.000Z');
    const last = ok(out[3]);
    expect(last.detectedAt).toBe('2026-11-19T23:03:00.000Z');
    expect(last.entities).toEqual([]);
    expect(last.alerts[0]?.techniques).toEqual([]);
    expect(last.providerSeverity).toBe('informational');
    expect(ok(out[0]).alerts[0]?.ruleIds).toEqual(['K1-1']);
  });

  it('rejects an event that is not JSON with its path and keeps the others', () => {
    const events = load(SAMPLES, 'eventhub-batch.json') as unknown[];

    const out = parseBody([events[0], '{"records": [', Buffer.from('null')], 'eventhub-batch', RECEIVED);

    expect(out.map((o) => [o.path, o.status])).toEqual([
      ['$[0].records[0]', 'ok'],
      ['$[1]', 'rejected'],
      ['$[2]', 'rejected'],
    ]);
    expect(issues(out[1])[0]?.reason).toMatch(/^event is not JSON/);
    expect(issues(out[2])[0]?.reason).toMatch(/got null$/);
  });

  it('addresses a single envelope as $.records[i]', () => {
    const out = parseBody({ records: [row()] }, 'alerts', RECEIVED);
    expect(out.map((o) => o.path)).toEqual(['$.records[0]']);
  });

  it('accepts a mixed array of rows and generic alerts in the alerts endpoint', () => {
    const out = parseBody([row(), load(SAMPLES, 'generic-alert.json')], 'alerts', RECEIVED);
    expect(out.map((o) => ok(o).shape)).toEqual(['security-alert', 'generic']);
  });

  it(`refuses a delivery of more than ${MAX_ITEMS_PER_BODY} items as one rejection`, () => {
    const out = parseBody({ records: new Array(MAX_ITEMS_PER_BODY + 1).fill({}) }, 'alerts', RECEIVED);

    expect(out).toHaveLength(1);
    expect(issues(out[0])).toEqual([
      { path: '$', reason: `${MAX_ITEMS_PER_BODY + 1} items exceed the limit of ${MAX_ITEMS_PER_BODY} per delivery` },
    ]);
  });

  it('explains an object of no known shape by its keys', () => {
    expect(issues(parseBody([{ foo: 1 }], 'alerts', RECEIVED)[0])[0]?.reason).toBe(
      'unrecognised object with keys "foo": expected a SecurityAlert row, envelope or generic alert',
    );
  });
});

describe('body kinds', () => {
  it('refuses an incident body on the alerts endpoint but accepts it in auto', () => {
    const body = load(SAMPLES, 'incident-create-bruteforce.json');

    expect(issues(parseBody(body, 'alerts', RECEIVED)[0])[0]?.reason).toMatch(/incident trigger body is not accepted here/);
    expect(ok(parseBody(body, 'auto', RECEIVED)[0]).source).toBe('incident');
  });

  it('detects every sample shape in auto', () => {
    const shapes = ['incident-create-bruteforce.json', 'securityalert-records.json', 'eventhub-batch.json', 'generic-alert.json'].flatMap(
      (f) => parseBody(load(SAMPLES, f), 'auto', RECEIVED).map((o) => ok(o).shape),
    );
    expect(shapes).toEqual(['incident', 'security-alert', 'security-alert', 'eventhub-envelope', 'eventhub-envelope', 'generic']);
  });

  it('decodes JSON strings in auto but explains a string that is not JSON as a wrong shape', () => {
    const out = parseBody([JSON.stringify(load(SAMPLES, 'generic-alert.json')), 'string'], 'auto', RECEIVED);

    expect(ok(out[0]).shape).toBe('generic');
    expect(issues(out[1])).toEqual([
      {
        path: '$[1]',
        reason: 'expected an object (incident body, SecurityAlert row, envelope or generic alert), got string that is not JSON',
      },
    ]);
  });

  it('refuses a non-object incident body', () => {
    expect(issues(parseBody([1], 'incident', RECEIVED)[0])).toEqual([
      { path: '$', reason: 'expected an object (incident trigger body), got array' },
    ]);
  });
});

describe('incident bodies', () => {
  it('names the path of a title that is not a string', () => {
    const out = parseBody(load(FIXTURES, 'incident-title-not-string.json'), 'incident', RECEIVED);

    expect(issues(out[0])).toEqual([{ path: '$.object.properties.title', reason: 'expected string, got number' }]);
    expect(out[0]?.status === 'rejected' && out[0].tenantId).toBe('8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b');
  });

  it('rejects a Delete event with a clear reason', () => {
    const body = incident();
    body.objectEventType = 'Delete';

    expect(issues(parseBody(body, 'incident', RECEIVED)[0])).toEqual([
      { path: '$.objectEventType', reason: 'Delete events are not triaged (expected "Create" or "Update")' },
    ]);
  });

  it('gives an Update with a newer lastModifiedTimeUtc a newer revisionKey and another fingerprint', () => {
    const created = ok(parseBody(incident(), 'incident', RECEIVED)[0]);
    const update = incident();
    update.objectEventType = 'Update';
    update.object.properties.lastModifiedTimeUtc = '2026-11-20T01:20:00Z';
    update.object.properties.status = 'Active';

    const updated = ok(parseBody(update, 'incident', RECEIVED)[0]);

    expect(updated.caseId).toBe(created.caseId);
    expect(updated.revisionKey > created.revisionKey).toBe(true);
    expect(updated.revisionKey).toBe('2026-11-20T01:20:00.000Z');
    expect(updated.fingerprint).not.toBe(created.fingerprint);
  });

  it('tolerates absent optional fields and synthesises an alert when the incident has none', () => {
    const body = incident();
    const props = body.object.properties;
    props.alerts = undefined;
    props.relatedEntities = undefined;
    props.description = null;
    props.additionalData = undefined;

    const c = ok(parseBody(body, 'incident', RECEIVED)[0]);

    expect(c.alerts).toHaveLength(1);
    expect(c.alerts[0]?.id).toBe(c.caseId);
    expect(c.alerts[0]?.ruleIds).toContain('5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a');
    expect(c.detectedAt).toBe('2026-11-20T01:13:05.412Z');
    expect(c.entities).toEqual([]);
  });

  it('names the path of an invalid related entity', () => {
    const body = incident();
    (body.object.properties.relatedEntities as { properties: Record<string, unknown> }[])[0]!.properties.address = '300.1.1.1';

    expect(issues(parseBody(body, 'incident', RECEIVED)[0])).toEqual([
      { path: '$.object.properties.relatedEntities[0].properties.address', reason: 'invalid IP address "300.1.1.1"' },
    ]);
  });
});

describe('SecurityAlert rows', () => {
  it('rejects a bad date with its path', () => {
    const r = { ...row(), TimeGenerated: 'not a date' };
    expect(issues(parseBody(r, 'alerts', RECEIVED)[0])).toEqual([
      { path: '$.TimeGenerated', reason: 'expected an ISO 8601 date-time with time zone, got "not a date"' },
    ]);
  });

  it('rejects a string over 32 KB with its path', () => {
    const r = { ...row(), Description: 'x'.repeat(40_000) };
    expect(issues(parseBody([r], 'alerts', RECEIVED)[0])).toEqual([
      { path: '$[0].Description', reason: 'string longer than 32768 characters' },
    ]);
  });

  it('names malformed JSON inside ExtendedProperties', () => {
    const r = { ...row(), ExtendedProperties: '{"Rule Id": ' };
    expect(issues(parseBody(r, 'alerts', RECEIVED)[0])[0]?.path).toBe('$.ExtendedProperties');
  });

  it('rejects a $ref cycle', () => {
    const out = parseBody(load(FIXTURES, 'securityalert-ref-cycle.json'), 'alerts', RECEIVED);
    expect(issues(out[0])).toEqual([{ path: '$.Entities[1].LastLogon.$ref', reason: expect.stringMatching(/^\$ref cycle/) }]);
  });

  it('treats an empty or DateTime.MinValue optional time as absent', () => {
    const c = ok(parseBody({ ...row(), StartTime: '', EndTime: '0001-01-01T00:00:00Z' }, 'alerts', RECEIVED)[0]);
    expect(c.alerts[0]?.startTime).toBe('2026-11-20T03:42:30.118Z');
    expect(c.alerts[0]?.endTime).toBe('2026-11-20T03:42:30.118Z');
  });

  it('uses a later ProcessingEndTime as the revision key', () => {
    const r = { ...row(), ProcessingEndTime: '2026-11-20T05:00:00Z' };
    expect(ok(parseBody(r, 'alerts', RECEIVED)[0]).revisionKey).toBe('2026-11-20T05:00:00.000Z');
  });

  it('orders two exports of one alert within the same millisecond by their 100 ns TimeGenerated', () => {
    const first = ok(parseBody({ ...row(), TimeGenerated: '2026-11-20T03:42:30.1181000Z' }, 'alerts', RECEIVED)[0]);
    const second = ok(parseBody({ ...row(), TimeGenerated: '2026-11-20T12:42:30.1182+09:00' }, 'alerts', RECEIVED)[0]);

    expect(first.revisionKey).toBe('2026-11-20T03:42:30.1181Z');
    expect(second.revisionKey).toBe('2026-11-20T03:42:30.1182Z');
    expect(compareRevisionKeys(first.revisionKey, second.revisionKey)).toBeLessThan(0);
    // Only the revision key is finer: the detection time and the SLA clock stay on the millisecond.
    expect(second.detectedAt).toBe('2026-11-20T03:42:30.118Z');
    expect(second.alerts[0]?.detectedAt).toBe('2026-11-20T03:42:30.118Z');
  });

  it('takes ProcessingEndTime as the revision key only when it is later, to the 100 ns', () => {
    const base = { ...row(), TimeGenerated: '2026-11-20T05:00:00.1231Z' };
    // As strings '….123Z' sorts after '….1231Z', though it is the earlier instant.
    const earlier = ok(parseBody({ ...base, ProcessingEndTime: '2026-11-20T05:00:00.123Z' }, 'alerts', RECEIVED)[0]);
    const later = ok(parseBody({ ...base, ProcessingEndTime: '2026-11-20T05:00:00.1232Z' }, 'alerts', RECEIVED)[0]);

    expect(earlier.revisionKey).toBe('2026-11-20T05:00:00.1231Z');
    expect(later.revisionKey).toBe('2026-11-20T05:00:00.1232Z');
  });

  it('rejects a bad ProcessingEndTime with its path', () => {
    const out = parseBody({ ...row(), ProcessingEndTime: 'yesterday' }, 'alerts', RECEIVED)[0];
    expect(issues(out)).toEqual([
      { path: '$.ProcessingEndTime', reason: 'expected an ISO 8601 date-time with time zone, got "yesterday"' },
    ]);
  });

  it('refuses AlertSeverity "constructor" at its path instead of crashing', () => {
    const out = parseBody({ ...row(), AlertSeverity: 'constructor' }, 'alerts', RECEIVED)[0];

    expect(issues(out)).toEqual([
      { path: '$.AlertSeverity', reason: 'expected one of Informational, Low, Medium, High, got "constructor"' },
    ]);
  });

  it('ignores a row of another table', () => {
    expect(parseBody({ ...row(), Type: 'SecurityIncident' }, 'alerts', RECEIVED)[0]?.status).toBe('ignored');
  });
});

describe('generic alerts', () => {
  const generic = () => copy<Record<string, unknown>>(SAMPLES, 'generic-alert.json');

  it('accepts severities in any case, including critical', () => {
    expect(ok(parseBody({ ...generic(), severity: 'CRITICAL' }, 'alerts', RECEIVED)[0]).providerSeverity).toBe('critical');
  });

  it('refuses severity "constructor" at $.severity instead of crashing', () => {
    for (const severity of ['constructor', '__proto__', ' Constructor ']) {
      const out = parseBody({ ...generic(), severity }, 'alerts', RECEIVED)[0];

      expect(issues(out)).toEqual([
        { path: '$.severity', reason: `expected one of informational, low, medium, high, critical, got ${JSON.stringify(severity)}` },
      ]);
    }
  });

  it('keeps detectedAt to the 100 ns in the revision key, and to the millisecond everywhere else', () => {
    const first = ok(parseBody({ ...generic(), detectedAt: '2026-11-20T05:10:00.1234567Z' }, 'alerts', RECEIVED)[0]);
    const second = ok(parseBody({ ...generic(), detectedAt: '2026-11-20T05:10:00.1234568Z' }, 'alerts', RECEIVED)[0]);

    expect(first.revisionKey).toBe('2026-11-20T05:10:00.1234567Z');
    expect(compareRevisionKeys(first.revisionKey, second.revisionKey)).toBeLessThan(0);
    expect(second.detectedAt).toBe('2026-11-20T05:10:00.123Z');
    expect(second.alerts[0]?.startTime).toBe('2026-11-20T05:10:00.123Z');
  });

  it('rejects a bad detectedAt with its path', () => {
    const out = parseBody({ ...generic(), detectedAt: '2026-11-20T05:10:00' }, 'alerts', RECEIVED)[0];
    expect(issues(out)).toEqual([
      { path: '$.detectedAt', reason: 'expected an ISO 8601 date-time with time zone, got "2026-11-20T05:10:00"' },
    ]);
  });

  it('rejects an unknown severity and a source that cannot prefix a case id', () => {
    const out = issues(parseBody({ ...generic(), severity: 'urgent', source: 'a b' }, 'alerts', RECEIVED)[0]);
    expect(out.map((i) => i.path).sort()).toEqual(['$.severity', '$.source']);
  });
});

describe('fingerprints', () => {
  it('do not depend on receivedAt', () => {
    const a = ok(parseBody(row(), 'alerts', '2026-01-01T00:00:00.000Z')[0]);
    const b = ok(parseBody(row(), 'alerts', '2026-06-01T00:00:00.000Z')[0]);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('do not depend on the key order of the input', () => {
    const r = row();
    const reversed = Object.fromEntries(Object.entries(r).reverse());
    expect(ok(parseBody(reversed, 'alerts', RECEIVED)[0]).fingerprint).toBe(ok(parseBody(r, 'alerts', RECEIVED)[0]).fingerprint);
  });

  it('change when the content changes', () => {
    const a = ok(parseBody(row(), 'alerts', RECEIVED)[0]);
    const b = ok(parseBody({ ...row(), AlertSeverity: 'Medium' }, 'alerts', RECEIVED)[0]);
    const c = ok(parseBody({ ...row(), Tactics: 'Execution' }, 'alerts', RECEIVED)[0]);
    expect(new Set([a.fingerprint, b.fingerprint, c.fingerprint]).size).toBe(3);
  });
});

describe('normaliseIsoDate', () => {
  it.each([
    ['2026-11-20T03:42:30.1183021Z', '2026-11-20T03:42:30.118Z'],
    ['2026-11-20T12:00:00+09:00', '2026-11-20T03:00:00.000Z'],
    ['2026-11-20T03:42Z', '2026-11-20T03:42:00.000Z'],
    ['2026-11-20T03:42:30.118Z', '2026-11-20T03:42:30.118Z'],
  ])('normalises %s', (input, expected) => {
    expect(normaliseIsoDate(input)).toBe(expected);
  });

  it.each(['2026-02-30T00:00:00Z', '2026-11-20T03:42:30', '2026-11-20', '2026-11-20T24:00:00Z', 'not a date'])('refuses %s', (input) => {
    expect(normaliseIsoDate(input)).toBeUndefined();
  });
});
