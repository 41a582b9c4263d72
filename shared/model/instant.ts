/**
 * `Date.parse` with a fast path for the one spelling the hot path nearly always sees:
 * canonical UTC ISO 8601 with milliseconds (`2026-11-16T02:06:39.655Z`, what
 * `toISOString` writes and the store hands back). Correlation parses one timestamp per
 * store row (≈ 50–150 per case) and `Date.parse` costs ≈ 180 ns each; reading the
 * digits costs ≈ 40 ns. Anything else (other lengths, offsets, out-of-range fields that
 * `Date.parse` would roll over or reject) goes to `Date.parse`, so the answer is always
 * exactly `Date.parse(text)`.
 */

const DAY_MS = 86_400_000;
/** Days of each month in a non-leap year (index 1 = January). */
const MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** Value of the two ASCII digits at `i`, or -1 when either is not a digit. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

/**
 * Milliseconds since the epoch of `text` when it is exactly what `toISOString` writes for some instant
 * (`YYYY-MM-DDTHH:MM:SS.sssZ`, four-digit year, a real calendar date, hours 00–23), read digit by digit;
 * NaN for any other text.
 */
function exactIsoMs(text: string): number {
  // Shape `YYYY-MM-DDTHH:MM:SS.sssZ`: separators first, they reject most other spellings cheaply.
  if (
    text.length !== 24 ||
    text.charCodeAt(23) !== 90 /* Z */ ||
    text.charCodeAt(10) !== 84 /* T */ ||
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46
  ) {
    return Number.NaN;
  }
  const hi = two(text, 0);
  const lo = two(text, 2);
  const month = two(text, 5);
  const day = two(text, 8);
  const hour = two(text, 11);
  const minute = two(text, 14);
  const second = two(text, 17);
  const msHi = two(text, 20);
  const msLo = text.charCodeAt(22) - 48;
  if (hi < 0 || lo < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59) {
    return Number.NaN;
  }
  if (second < 0 || second > 59 || msHi < 0 || msLo < 0 || msLo > 9) return Number.NaN;
  const year = hi * 100 + lo;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  // Day 29–31 beyond the month's end: not a date toISOString writes (Date.parse would roll it over).
  if (day > (MONTH_DAYS[month] ?? 31) + (leap ? 1 : 0)) return Number.NaN;
  return daysFromCivil(year, month, day) * DAY_MS + hour * 3_600_000 + minute * 60_000 + second * 1000 + msHi * 10 + msLo;
}

/** Milliseconds since the epoch of a timestamp text: exactly `Date.parse(text)`, faster for canonical UTC ISO. */
export function parseInstant(text: string): number {
  const t = exactIsoMs(text);
  return Number.isNaN(t) ? Date.parse(text) : t;
}

/**
 * Whether `text` is exactly what `toISOString` writes for some instant: the texts for which
 * `new Date(Date.parse(text)).toISOString() === text`. Stricter than `isCanonicalInstant` (a shape
 * check), as it also wants a real calendar date and time; input dates in this form need no other reading.
 */
export function isExactIsoString(text: string): boolean {
  return !Number.isNaN(exactIsoMs(text));
}

/** Calendar fields of an instant in UTC, as `Date#getUTC…` would give them (month 1–12). */
export interface UtcFields {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
}

/** Largest |ms| a Date can hold (ECMAScript TimeClip). */
const MAX_TIME_MS = 8.64e15;

/**
 * The UTC calendar fields of `ms` (an integer ms since the epoch) by arithmetic
 * (H. Hinnant's `civil_from_days`), without a Date object; all NaN outside the Date range,
 * like the getters of an invalid Date.
 */
export function utcFields(ms: number): UtcFields {
  if (!(Math.abs(ms) <= MAX_TIME_MS)) {
    return { year: Number.NaN, month: Number.NaN, day: Number.NaN, hour: Number.NaN, minute: Number.NaN };
  }
  const days = Math.floor(ms / DAY_MS);
  const inDay = ms - days * DAY_MS;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return {
    year: yoe + era * 400 + (month <= 2 ? 1 : 0),
    month,
    day: doy - Math.floor((153 * mp + 2) / 5) + 1,
    hour: Math.floor(inDay / 3_600_000),
    minute: Math.floor((inDay % 3_600_000) / 60_000),
  };
}

const CANONICAL_INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Whether `text` is already an instant in canonical form (`toISOString()`): text order is then time order. */
export function isCanonicalInstant(text: string): boolean {
  return CANONICAL_INSTANT.test(text);
}

/**
 * The canonical spelling of an ISO 8601 instant (`toISOString()`), so that string order is
 * time order: `…00Z`, `…00.000Z` and `…00.0000000Z` (Sentinel) compare equal. Unparseable
 * text is kept as is. Both stores key their time-ordered data with it.
 */
export function canonicalInstant(iso: string): string {
  if (CANONICAL_INSTANT.test(iso)) return iso;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString();
}

/** Largest year `toISOString` writes with four digits and no sign. */
const MAX_PLAIN_YEAR = 9999;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function pad3(n: number): string {
  return n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n);
}

/**
 * Exactly `new Date(ms).toISOString()` (`2026-11-16T07:35:23.519Z`), without the Date: the brain writes
 * two or three instants per case (the SLA deadline, the look-up window's ends), and a Date plus
 * `toISOString` cost about half a microsecond each, most of scoring's own time. By calendar arithmetic for
 * years 0–9999; anything else (other years, non-integer or invalid `ms`) goes through the Date, so
 * it is formatted, or throws `RangeError`, exactly as there.
 */
export function isoString(ms: number): string {
  if (!Number.isInteger(ms)) return new Date(ms).toISOString();
  const f = utcFields(ms);
  if (!(f.year >= 0 && f.year <= MAX_PLAIN_YEAR)) return new Date(ms).toISOString();
  const inMinute = ms - Math.floor(ms / 60_000) * 60_000;
  const second = Math.floor(inMinute / 1000);
  const milli = inMinute - second * 1000;
  const year = f.year < 1000 ? `000${f.year}`.slice(-4) : String(f.year);
  return `${year}-${pad2(f.month)}-${pad2(f.day)}T${pad2(f.hour)}:${pad2(f.minute)}:${pad2(second)}.${pad3(milli)}Z`;
}
