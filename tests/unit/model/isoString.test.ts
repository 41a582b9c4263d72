import fc from 'fast-check';
import { isoString } from '../../../shared/model/instant';

describe('isoString', () => {
  it.each([
    ['the epoch', 0],
    ['a detection time', Date.parse('2026-11-16T07:35:23.519Z')],
    ['a leap day', Date.parse('2028-02-29T23:59:59.999Z')],
    ['before the epoch', -1],
    ['year 0', Date.parse('0000-01-01T00:00:00.000Z')],
    ['year 999', Date.parse('0999-12-31T23:59:59.999Z')],
    ['the last four-digit year', Date.parse('9999-12-31T23:59:59.999Z')],
    ['the first six-digit year', Date.parse('+010000-01-01T00:00:00.000Z')],
    ['a negative year', Date.parse('-000001-12-31T23:59:59.999Z')],
    ['a fraction of a millisecond', 1.75],
    ['the last valid instant', 8.64e15],
  ])('writes %s as toISOString does', (_name, ms) => {
    const text = isoString(ms);

    expect(text).toBe(new Date(ms).toISOString());
  });

  it('writes any instant of years 0–9999 (the ones it formats itself) as toISOString does (property)', () => {
    const years = fc.integer({ min: Date.parse('0000-01-01T00:00:00.000Z'), max: Date.parse('9999-12-31T23:59:59.999Z') });

    fc.assert(
      fc.property(years, (ms) => isoString(ms) === new Date(ms).toISOString()),
      { numRuns: 2000 },
    );
  });

  it('throws the RangeError of toISOString outside the Date range', () => {
    expect(() => isoString(Number.NaN)).toThrow(RangeError);
    expect(() => isoString(8.64e15 + 1)).toThrow(RangeError);
  });
});
