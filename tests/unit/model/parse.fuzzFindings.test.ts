/**
 * Regressions found by fuzz.test.ts, each shrunk to the smallest input that showed it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../../shared/config/policy';
import type { InputIssue } from '../../../shared/errors';
import { silentLogger } from '../../../shared/log';
import { normaliseIsoDate } from '../../../shared/model/inputs/common';
import { stringifyJson } from '../../../shared/model/json';
import { type ParseOutcome, parseBody } from '../../../shared/model/parse';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT, SAMPLES } from '../../helpers/cli';

const RECEIVED = '2026-11-20T06:00:00.000Z';

type Obj = Record<string, unknown>;
const load = (name: string): unknown => JSON.parse(readFileSync(join(SAMPLES, name), 'utf8'));
const row = (): Obj => (load('securityalert-records.json') as Obj[])[0] as Obj;
const generic = (): Obj => load('generic-alert.json') as Obj;

/** The only outcome of a one-item body. */
function only(out: readonly ParseOutcome[]): ParseOutcome {
  expect(out).toHaveLength(1);
  return out[0] as ParseOutcome;
}

/** The issues of a rejection, and that no reader threw on the way (a throw parks the item as "could not be read"). */
function issuesOf(o: ParseOutcome): readonly InputIssue[] {
  if (o.status !== 'rejected') throw new Error(`expected rejected, got ${o.status}`);
  expect(o.error.cause).toBeUndefined();
  return o.error.issues;
}

describe('date-times an offset moves past year 9999', () => {
  it('refuses them at their path, instead of keeping a "+010000-…" revision key that lost its milliseconds', () => {
    const alert = { ...generic(), detectedAt: '9999-12-31T23:30:00.1234567-01:00' };

    const out = only(parseBody(alert, 'alerts', RECEIVED));

    expect(issuesOf(out)).toEqual([
      { path: '$.detectedAt', reason: 'expected an ISO 8601 date-time with time zone, got "9999-12-31T23:30:00.1234567-01:00"' },
    ]);
  });

  it('still accepts the last instant of year 9999, however it is spelt', () => {
    expect(normaliseIsoDate('9999-12-31T23:59:59.999Z')).toBe('9999-12-31T23:59:59.999Z');
    expect(normaliseIsoDate('9999-12-31T23:30:00+01:00')).toBe('9999-12-31T22:30:00.000Z');
  });
});

describe('entity $refs that are not ids', () => {
  it('names a $ref whose value String() cannot convert, instead of parking the row as unreadable', () => {
    const entities = [{ $id: '1', Type: 'ip', Address: '10.0.0.1' }, { $ref: { toString: 1 } }];
    const bad = { ...row(), Entities: JSON.stringify(entities) };

    const out = only(parseBody([bad], 'alerts', RECEIVED));

    expect(issuesOf(out)).toEqual([{ path: '$[0].Entities[1].$ref', reason: 'expected string, got object' }]);
  });
});

describe('entities nested thousands deep', () => {
  it('names the nesting of a row whose processes hold each other inline 3,000 deep, instead of overflowing the stack', () => {
    let entity: Obj = { Type: 'host', HostName: 'ws-01' };
    for (let i = 0; i < 3000; i++) entity = { Type: 'process', ProcessId: String(i), Host: entity };
    const deep = { ...row(), Entities: stringifyJson([entity]) };

    const out = only(parseBody([deep], 'alerts', RECEIVED));

    expect(issuesOf(out)).toContainEqual({
      path: `$[0].Entities[0]${'.Host'.repeat(32)}`,
      reason: 'entities nested deeper than 32 levels',
    });
  });
});

describe('issue paths of refused entities', () => {
  it('names the Name a SecurityAlert DNS entity was read from, not a "domain" member it does not have', () => {
    const bad = { ...row(), Entities: JSON.stringify([{ $id: '2', Type: 'dns', Name: 'a..b' }]) };

    const out = only(parseBody([bad], 'alerts', RECEIVED));

    expect(issuesOf(out)).toEqual([{ path: '$[0].Entities[0].Name', reason: 'invalid domain name "a..b"' }]);
  });

  it('names the address a generic mailbox was read from, not a "mailboxprimaryaddress" member it does not have', () => {
    const bad = { ...generic(), entities: [{ kind: 'mailbox', address: '47 11' }] };

    const out = only(parseBody(bad, 'alerts', RECEIVED));

    expect(issuesOf(out)).toEqual([{ path: '$.entities[0].address', reason: 'invalid mailbox address "47 11"' }]);
  });
});

describe('generic alerts with a member named Type', () => {
  it('triages them, instead of ignoring them as records of another table (ignored items are not parked: the alert was lost)', () => {
    const alert = { ...generic(), Type: 'Alert' };

    const out = only(parseBody([alert], 'alerts', RECEIVED));

    expect(out.status).toBe('ok');
  });

  it('still ignores a Log Analytics row of another table', () => {
    const signIn = { TenantId: '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b', TimeGenerated: RECEIVED, Type: 'SigninLogs' };

    const out = only(parseBody([signIn], 'alerts', RECEIVED));

    expect(out.status).toBe('ignored');
  });
});

describe('items with a member named records', () => {
  it('reads a generic alert with "records": [] as the alert, instead of ignoring it as an empty envelope', () => {
    const alert = { ...generic(), records: [] };

    const out = only(parseBody([alert], 'alerts', RECEIVED));

    expect(out).toMatchObject({ status: 'ok', path: '$[0]' });
  });

  it('reads a generic alert with records as the alert, instead of parking its records and losing the alert', () => {
    const alert = { ...generic(), records: [{ note: 'relay metadata' }] };

    const out = only(parseBody([alert], 'eventhub-batch', RECEIVED));

    expect(out).toMatchObject({ status: 'ok', path: '$[0]' });
  });

  it('still reads an export envelope as its records', () => {
    const out = parseBody([{ records: [row()] }], 'eventhub-batch', RECEIVED);

    expect(out.map((o) => [o.path, o.status])).toEqual([['$[0].records[0]', 'ok']]);
  });
});

describe('parking a string item with a lone surrogate', () => {
  it('keeps it as its JSON, so that the store (UTF-8) keeps it as sent instead of replacing it with U+FFFD', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    const pipeline = new Pipeline({
      store,
      policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
      brain: createBrain(),
      log: silentLogger,
    });

    const out = await pipeline.ingest(['\uD800', row()], { kind: 'alerts', source: 'test' });

    expect(out.items.map((i) => i.status)).toEqual(['rejected', 'triaged']);
    const parked = await store.listParked({});
    expect(parked).toHaveLength(1);
    expect(JSON.parse(parked[0]?.body ?? '')).toBe('\uD800');
    await store.close();
  });

  it('still keeps the text of an event that arrived as a string as it is', () => {
    expect(stringifyJson('{"records": [ trunc')).toBe('{"records": [ trunc');
  });
});
