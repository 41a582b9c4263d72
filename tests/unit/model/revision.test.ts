import { compareRevisionKeys, revisionInstant, revisionMillis } from '../../../shared/model/revision';

describe('revision keys', () => {
  it('keeps the digits beyond the millisecond that Sentinel writes, in UTC', () => {
    expect(revisionInstant('2026-11-20T01:05:00.1239876Z')).toBe('2026-11-20T01:05:00.1239876Z');
    expect(revisionInstant('2026-11-20T01:05:00.123987654Z')).toBe('2026-11-20T01:05:00.1239876Z'); // beyond 100 ns: cut
    expect(revisionInstant('2026-11-20T10:05:00.1231+09:00')).toBe('2026-11-20T01:05:00.1231Z');
  });

  it('is the canonical millisecond instant when the source sent no finer digits', () => {
    expect(revisionInstant('2026-11-20T01:05:00.412Z')).toBe('2026-11-20T01:05:00.412Z');
    expect(revisionInstant('2026-11-20T01:05:00.4120000Z')).toBe('2026-11-20T01:05:00.412Z');
    expect(revisionInstant('2026-11-20T01:05:00Z')).toBe('2026-11-20T01:05:00.000Z');
    expect(revisionInstant('not a date')).toBeUndefined();
  });

  it('orders keys by time whatever their number of digits, where string order gets it wrong', () => {
    const older = '2026-11-20T01:05:00.123Z'; // written by an earlier build, milliseconds only
    const newer = '2026-11-20T01:05:00.1231Z';
    expect(older > newer).toBe(true); // plain string order: 'Z' sorts after '1'

    expect(compareRevisionKeys(older, newer)).toBeLessThan(0);
    expect(compareRevisionKeys(newer, older)).toBeGreaterThan(0);
    expect(compareRevisionKeys('2026-11-20T01:05:00.1230Z', older)).toBe(0);
    expect(compareRevisionKeys('2026-11-20T01:05:01.000Z', newer)).toBeGreaterThan(0);
  });

  it('gives the millisecond instant of a key', () => {
    expect(revisionMillis('2026-11-20T01:05:00.1239Z')).toBe('2026-11-20T01:05:00.123Z');
    expect(revisionMillis('2026-11-20T01:05:00.412Z')).toBe('2026-11-20T01:05:00.412Z');
  });
});
