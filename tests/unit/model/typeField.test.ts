/**
 * The `Type` member of a SecurityAlert row (the Log Analytics table name), in an Event Hub envelope
 * record and in a bare row. Only a genuine other table may be ignored: an ignored item is not parked,
 * so a misread `Type` lost the alert without a trace.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Case } from '../../../shared/model/domain';
import { type ParseOutcome, parseBody } from '../../../shared/model/parse';
import { SAMPLES } from '../../helpers/cli';

const RECEIVED = '2026-11-20T06:00:00.000Z';

type Obj = Record<string, unknown>;
const row = (): Obj => (JSON.parse(readFileSync(join(SAMPLES, 'securityalert-records.json'), 'utf8')) as Obj[])[0] as Obj;

/** A row with `Type` set to `type` (or removed when `'absent'`), delivered in the given shape; its one outcome. */
function deliver(shape: 'envelope record' | 'bare row', type: unknown): ParseOutcome {
  const r = row();
  if (type === 'absent') delete r.Type;
  else r.Type = type;
  const out = parseBody(shape === 'envelope record' ? { records: [r] } : r, 'alerts', RECEIVED);
  expect(out).toHaveLength(1);
  return out[0] as ParseOutcome;
}

function caseOf(o: ParseOutcome): Case {
  if (o.status !== 'ok') throw new Error(`expected ok, got ${o.status}: ${o.status === 'rejected' ? o.error.message : o.reason}`);
  return o.case;
}

const SHAPES = [
  ['envelope record', '$.records[0]'],
  ['bare row', '$'],
] as const;

describe.each(SHAPES)('the Type of a SecurityAlert row (%s)', (shape, rowPath) => {
  it.each([
    'securityalert',
    'SECURITYALERT',
    ' SecurityAlert ',
    'SecurityAlert\t',
    '\u00a0securityAlert\n',
    // Invisible characters, full width and a Turkish-culture upper-casing: each was ignored, the alert lost.
    'SecurityAlert\u200b',
    'SecurityAlert\u0000',
    'Security\u00adAlert',
    '\uff33\uff45\uff43\uff55\uff52\uff49\uff54\uff59\uff21\uff4c\uff45\uff52\uff54',
    'SECURİTYALERT',
  ])('reads Type %j as the SecurityAlert table, triaged exactly like "SecurityAlert" (same case, same fingerprint)', (type) => {
    const expected = caseOf(deliver(shape, 'SecurityAlert'));

    const out = deliver(shape, type);

    expect(caseOf(out)).toEqual(expected);
  });

  it.each(['', ' ', '\t\n', '\u00a0', '\u200b', '\u0000'])(
    'refuses a row whose Type %j is empty, at the path of its Type member, instead of ignoring it',
    (type) => {
      const out = deliver(shape, type);

      expect(out.status).toBe('rejected');
      if (out.status !== 'rejected') return;
      expect(out.path).toBe(rowPath);
      expect(out.error.issues).toEqual([{ path: `${rowPath}.Type`, reason: 'Type is empty: expected a Log Analytics table name' }]);
      expect(out.tenantId).toBe('8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b');
    },
  );

  it.each([
    ['a number', 42],
    ['a boolean', true],
    ['an object', { table: 'SecurityAlert' }],
    ['an array', ['SecurityAlert']],
  ])('refuses a row whose Type is %s, at the path of its Type member', (_what, type) => {
    const out = deliver(shape, type);

    expect(out.status).toBe('rejected');
    if (out.status !== 'rejected') return;
    expect(out.error.issues.map((i) => i.path)).toEqual([`${rowPath}.Type`]);
  });

  it('reads a row whose Type is null as one without the column (Log Analytics sends empty columns as null)', () => {
    const expected = caseOf(deliver(shape, 'absent'));

    const out = deliver(shape, null);

    expect(caseOf(out)).toEqual(expected);
  });

  it.each(['"SecurityAlert"', 'SecurityAlert.', 'Security-Alert'])(
    'refuses a row whose Type %j names no table at all, at the path of its Type member, instead of ignoring it',
    (type) => {
      const out = deliver(shape, type);

      expect(out.status).toBe('rejected');
      if (out.status !== 'rejected') return;
      expect(out.error.issues).toEqual([
        { path: `${rowPath}.Type`, reason: `Type ${JSON.stringify(type)} is not a Log Analytics table name (expected SecurityAlert)` },
      ]);
    },
  );

  it.each(['SigninLogs', 'SecurityAlert_CL'])('still ignores a row of another table (%j), naming the table', (table) => {
    const out = deliver(shape, table);

    expect(out).toEqual({ status: 'ignored', path: rowPath, reason: `record of table ${JSON.stringify(table)} is not a SecurityAlert` });
  });
});

describe('a refused Type in an Event Hub batch', () => {
  it('refuses only that record: the records around it still triage', () => {
    const blank = { ...row(), Type: '  ' };
    const lower = { ...row(), SystemAlertId: 'a2', Type: 'securityalert' };

    const out = parseBody([{ records: [row(), blank, lower] }], 'eventhub-batch', RECEIVED);

    expect(out.map((o) => [o.path, o.status])).toEqual([
      ['$[0].records[0]', 'ok'],
      ['$[0].records[1]', 'rejected'],
      ['$[0].records[2]', 'ok'],
    ]);
  });

  it('parks a blank-Type row sent as a JSON string or bytes event under its tenant, between events that triage', () => {
    const blank = JSON.stringify({ ...row(), Type: '' });

    const out = parseBody([JSON.stringify(row()), blank, Buffer.from(blank)], 'eventhub-batch', RECEIVED);

    expect(out.map((o) => [o.path, o.status, o.status === 'rejected' ? o.tenantId : undefined])).toEqual([
      ['$[0]', 'ok', undefined],
      ['$[1]', 'rejected', '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b'],
      ['$[2]', 'rejected', '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b'],
    ]);
  });
});
