import fc from 'fast-check';
import { canonicalInstant, parseInstant, utcFields } from '../../../shared/model/instant';

const MIN_4_DIGIT_YEAR = Date.parse('0000-01-01T00:00:00.000Z');
const MAX_4_DIGIT_YEAR = Date.parse('9999-12-31T23:59:59.999Z');

describe('parseInstant', () => {
  it('reads canonical UTC timestamps of any four-digit year exactly as Date.parse does', () => {
    fc.assert(
      fc.property(fc.integer({ min: MIN_4_DIGIT_YEAR, max: MAX_4_DIGIT_YEAR }), (t) => {
        const iso = new Date(t).toISOString();

        expect(parseInstant(iso)).toBe(Date.parse(iso));
      }),
      { numRuns: 5000 },
    );
  });

  it('answers like Date.parse for a canonical timestamp with any one character replaced', () => {
    const chars = '0123456789-T:.Z+ x\u0660';
    fc.assert(
      fc.property(fc.integer({ min: MIN_4_DIGIT_YEAR, max: MAX_4_DIGIT_YEAR }), fc.nat(23), fc.nat(chars.length - 1), (t, at, pick) => {
        const iso = new Date(t).toISOString();
        const text = `${iso.slice(0, at)}${chars[pick]}${iso.slice(at + 1)}`;

        expect(parseInstant(text)).toEqual(Date.parse(text));
      }),
      { numRuns: 5000 },
    );
  });

  it('leaves day roll-over, 24:00, leap days and other spellings to Date.parse', () => {
    const texts = [
      '2026-02-29T00:00:00.000Z',
      '2026-02-30T10:00:00.000Z',
      '2024-02-29T23:59:59.999Z',
      '1900-02-29T00:00:00.000Z',
      '2000-02-29T00:00:00.000Z',
      '2026-04-31T00:00:00.000Z',
      '2026-01-01T24:00:00.000Z',
      '2026-01-01T23:60:00.000Z',
      '2026-00-10T00:00:00.000Z',
      '2026-11-20T01:13:05Z',
      '2026-11-20T01:13:05.000+09:00',
      '2026-11-20',
      '',
      'not a date',
    ];

    for (const text of texts) expect(parseInstant(text)).toEqual(Date.parse(text));
  });
});

describe('utcFields', () => {
  it('gives the calendar fields Date#getUTC… gives, over the whole Date range', () => {
    fc.assert(
      fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (t) => {
        const d = new Date(t);

        expect(utcFields(t)).toEqual({
          year: d.getUTCFullYear(),
          month: d.getUTCMonth() + 1,
          day: d.getUTCDate(),
          hour: d.getUTCHours(),
          minute: d.getUTCMinutes(),
        });
      }),
      { numRuns: 5000 },
    );
  });

  it('gives NaN fields outside the Date range, like an invalid Date', () => {
    expect(utcFields(8.64e15 + 1).year).toBeNaN();
    expect(utcFields(Number.NaN).minute).toBeNaN();
  });
});

describe('canonicalInstant', () => {
  it('spells every form of one instant the same way, so string order is time order, and keeps what it cannot read', () => {
    const forms = ['2026-11-16T02:06:39.655Z', '2026-11-16T02:06:39.6550000Z', '2026-11-16T11:06:39.655+09:00'];

    const canonical = forms.map(canonicalInstant);

    expect(new Set(canonical)).toEqual(new Set(['2026-11-16T02:06:39.655Z']));
    expect(canonicalInstant('2026-11-16T02:06:39Z') < canonicalInstant('2026-11-16T02:06:39.001Z')).toBe(true);
    expect(canonicalInstant('not a date')).toBe('not a date');
  });
});
