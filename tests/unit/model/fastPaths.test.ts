/**
 * Edges of the parse path's shortcuts (canonical dates read digit by digit, body size counted only when it
 * could matter, JSON paths spelt out only for issues, host names never parsed as addresses): each pins an
 * outcome the longer way gave.
 */

import type { InputIssue } from '../../../shared/errors';
import { PayloadTooLargeError } from '../../../shared/errors';
import type { Entity } from '../../../shared/model/domain';
import { readGenericEntities, readSecurityAlertEntities } from '../../../shared/model/entities';
import { canonicalJson, childPath, normaliseIsoDate } from '../../../shared/model/inputs/common';
import { parseJsonText } from '../../../shared/model/json';
import { revisionInstant } from '../../../shared/model/revision';

function sa(entities: unknown[]): { entities: Entity[]; issues: InputIssue[] } {
  const issues: InputIssue[] = [];
  const out = readSecurityAlertEntities(JSON.stringify(entities), '$[0].Entities', issues);
  return { entities: out, issues };
}

describe('canonical date-times', () => {
  it.each(['1969-12-31T23:59:59.999Z', '0000-01-01T00:00:00.000Z', '2024-02-29T12:00:00.000Z', '9999-12-31T23:59:59.999Z'])(
    'keeps canonical %s as it is, whatever its year',
    (input) => {
      expect(normaliseIsoDate(input)).toBe(input);
    },
  );

  it.each([
    '2026-02-29T00:00:00.000Z',
    '1900-02-29T00:00:00.000Z',
    '2026-04-31T00:00:00.000Z',
    '2026-11-20T24:00:00.000Z',
    '2026-11-20T23:60:00.000Z',
    '2026-11-20T23:59:60.000Z',
    '2026-00-10T00:00:00.000Z',
    '2026-11-00T00:00:00.000Z',
  ])('refuses canonical-looking %s that names no instant', (input) => {
    expect(normaliseIsoDate(input)).toBeUndefined();
  });

  it('still reads other spellings of one length the full way', () => {
    expect(normaliseIsoDate('2026-11-20t03:42:30.118Z')).toBe('2026-11-20T03:42:30.118Z');
    expect(normaliseIsoDate('2026-11-20T03:42:30.118z')).toBe('2026-11-20T03:42:30.118Z');
    expect(normaliseIsoDate('2026-11-20 03:42:30.118Z')).toBe('2026-11-20T03:42:30.118Z');
    expect(normaliseIsoDate('2026-11-20T03:42:30,118Z')).toBe('2026-11-20T03:42:30.118Z');
  });

  it('gives a canonical revision key as is and keeps digits beyond the millisecond otherwise', () => {
    expect(revisionInstant('2026-11-20T03:42:30.118Z')).toBe('2026-11-20T03:42:30.118Z');
    expect(revisionInstant('2026-11-20T03:42:30.1180Z')).toBe('2026-11-20T03:42:30.118Z');
    expect(revisionInstant('2026-11-20T03:42:30.1183021Z')).toBe('2026-11-20T03:42:30.1183021Z');
  });
});

describe('body size limit', () => {
  it('counts the bytes of a body whose characters could exceed the limit', () => {
    const text = '"€€€"'; // 5 characters, 11 bytes

    expect(parseJsonText(text, 11)).toBe('€€€');
    expect(() => parseJsonText(text, 10)).toThrow(PayloadTooLargeError);
  });

  it('counts a surrogate pair as the four bytes it takes in UTF-8', () => {
    const text = '"😀😀"'; // 6 UTF-16 code units, 10 bytes

    expect(() => parseJsonText(text, 9)).toThrow(expect.objectContaining({ size: 10, limit: 9 }));
    expect(parseJsonText(text, 10)).toBe('😀😀');
  });
});

describe('JSON paths of entity issues', () => {
  it('names a field of an entity defined inline in another, by its spelling', () => {
    const { issues } = sa([{ $id: '1', Type: 'process', ProcessId: '4', Host: { $id: '2', Type: 'host', HostName: 'a b' } }]);

    expect(issues).toEqual([{ path: '$[0].Entities[0].Host.HostName', reason: 'invalid host name "a b"' }]);
  });

  it('quotes member names that are not identifiers on the way to a dangling $ref', () => {
    const { issues } = sa([{ $id: '1', Type: 'ip', Address: '10.0.0.1', 'Weird Key': { 'a.b': { $ref: '9' } } }]);

    expect(issues).toEqual([{ path: '$[0].Entities[0]["Weird Key"]["a.b"].$ref', reason: 'dangling $ref "9"' }]);
  });

  it('names a duplicate $id nested inside an entity', () => {
    const { issues } = sa([
      { $id: '1', Type: 'ip', Address: '10.0.0.1' },
      { $id: '2', Type: 'account', Name: 'x', Host: { $id: '1', Type: 'host', HostName: 'h' } },
    ]);

    expect(issues).toEqual([{ path: '$[0].Entities[1].Host.$id', reason: 'duplicate $id "1"' }]);
  });

  it('names the field of an IP location, below the entity', () => {
    const { issues } = sa([{ $id: '1', Type: 'ip', Address: '10.0.0.1', Location: { CountryCode: [] } }]);

    expect(issues).toEqual([{ path: '$[0].Entities[0].Location.CountryCode', reason: 'expected string, got array' }]);
  });

  it('spells a path below a quoted member exactly as childPath does', () => {
    expect(childPath(childPath('$', 'Weird Key'), 'Address')).toBe('$["Weird Key"].Address');
    expect(childPath(childPath('$[1]', 'Weird Key'), 0)).toBe('$[1]["Weird Key"][0]');
    expect(childPath('$', '__proto__')).toBe('$.__proto__');
  });
});

describe('host names', () => {
  it('checks a NetBIOS name written DOMAIN\\name against the NT domain its HostName gave', () => {
    const issues: InputIssue[] = [];

    readGenericEntities([{ kind: 'host', hostName: 'CONTOSO\\ws-01', netBiosName: 'OTHER\\ws-01' }], '$.entities', issues);

    expect(issues).toEqual([
      { path: '$.entities[0].netBiosName', reason: 'host name "OTHER\\\\ws-01" names NT domain "OTHER", but NTDomain is "CONTOSO"' },
    ]);
  });

  it('never reads a dotless host name as an address, even one that is all digits', () => {
    const issues: InputIssue[] = [];

    const [e] = readGenericEntities([{ kind: 'host', hostName: '3232235777', dnsDomain: 'corp.example' }], '$.entities', issues);

    expect(issues).toEqual([]);
    expect(e?.key).toBe('host:3232235777.corp.example');
  });

  it('still keys a dotted-quad host name by its short form without inventing an FQDN', () => {
    const issues: InputIssue[] = [];

    const [e] = readGenericEntities([{ kind: 'host', hostName: '10.0.0.1', dnsDomain: 'corp.example' }], '$.entities', issues);

    expect(issues).toEqual([]);
    expect(e?.key).toBe('host:10.0.0.1');
  });
});

describe('canonical JSON', () => {
  it('sorts the members of objects that share their first member but not their layout', () => {
    const value = [
      { b: 1, a: 2 },
      { b: 1, c: 3, a: 2 },
      { b: 1, a: 2, c: 3 },
    ];

    expect(canonicalJson(value)).toBe('[{"a":2,"b":1},{"a":2,"b":1,"c":3},{"a":2,"b":1,"c":3}]');
  });
});
