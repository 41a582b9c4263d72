/**
 * Revision keys: what orders the deliveries of one case (an incident's `lastModifiedTimeUtc`, an
 * alert's generation or processing time). Pure, no I/O.
 *
 * Why not the millisecond instants used everywhere else: Sentinel writes `lastModifiedTimeUtc`
 * with seven fractional digits (100 ns), and two updates of one incident within the same
 * millisecond are distinct revisions. Cut to milliseconds they compared equal, and the pipeline
 * took whichever arrived last as newer, so a redelivered older update could roll a case back.
 * The same holds for alerts (SecurityAlert `TimeGenerated` / `ProcessingEndTime`, also written to
 * 100 ns; a generic alert's `detectedAt`, to whatever its sender writes).
 * A revision key therefore keeps the digits beyond the millisecond when the source sent any
 * (`2026-11-20T01:05:00.1239Z`), and is otherwise the canonical millisecond instant, as before.
 * Keys of different lengths are compared by `compareRevisionKeys`, never as plain strings.
 */
import { dateSchemas, normaliseIsoDate } from './inputs/common';

const FRACTION_RE = /[.,](\d{1,9})(?:[Zz]|[+-]\d{2}:?\d{2})$/;
const KEY_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{1,7})Z$/;

/**
 * The revision key of an ISO 8601 date-time with time zone: the canonical UTC millisecond instant,
 * plus the source's digits beyond the millisecond (up to 100 ns, trailing zeros dropped) when it
 * sent any. Undefined when `s` is not a valid date-time.
 */
export function revisionInstant(s: string): string | undefined {
  const ms = normaliseIsoDate(s);
  if (ms === undefined) return undefined;
  // Already canonical (the usual input): three fractional digits, nothing beyond the millisecond to keep.
  if (ms === s) return ms;
  const sub = (FRACTION_RE.exec(s.trim())?.[1] ?? '').slice(3, 7).replace(/0+$/, '');
  // Offsets are whole minutes, so the digits beyond the millisecond are the same in UTC.
  return sub === '' ? ms : `${ms.slice(0, 23)}${sub}Z`;
}

const revisionDates = dateSchemas(revisionInstant);

/** A date-time read as a revision key (see `revisionInstant`); the issue names the bad value. */
export const revisionDate = revisionDates.required;

/** An optional date-time read as a revision key; absent values as for `optIsoDate` (empty, null, DateTime.MinValue). */
export const optRevisionDate = revisionDates.optional;

/** The millisecond instant of a revision key (`…05.1239Z` → `…05.123Z`); other keys unchanged. */
export function revisionMillis(key: string): string {
  const m = KEY_RE.exec(key);
  return m ? `${m[1]}.${(m[2] as string).slice(0, 3).padEnd(3, '0')}Z` : key;
}

/**
 * Orders two revision keys: negative when `a` is older, 0 when equal, positive when newer. Instant
 * keys compare by time whatever their number of fractional digits (`.123Z` = `.1230Z` < `.1231Z`,
 * which plain string order gets wrong); other keys compare as strings.
 */
export function compareRevisionKeys(a: string, b: string): number {
  const x = widened(a);
  const y = widened(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function widened(key: string): string {
  const m = KEY_RE.exec(key);
  return m ? `${m[1]}.${(m[2] as string).padEnd(7, '0')}Z` : key;
}
