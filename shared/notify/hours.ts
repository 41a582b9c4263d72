/**
 * Business hours and report deadlines in the tenant's time zone (seed §5):
 * - the first report is 24×365: due `detectedAt + sla.notifyWithin` (15 minutes);
 * - the second report (a senior engineer's investigation with the recommended
 *   response) is due SECOND_REPORT_HOURS of business time after detection for
 *   critical/high: counting starts at detection when that is inside business hours,
 *   else at the next business start, and only business time counts (detected Friday
 *   17:00 with 09:00–18:00 hours → due Monday 12:00). A fixed number of business
 *   hours, rather than "end of the business day", never leaves minutes for an alert
 *   detected just before closing. `notify[sev].secondReport: always` counts wall-clock
 *   time instead (24×365 second report).
 *
 * Time-zone rules come from luxon (IANA zones via Intl), so windows keep their local
 * times across DST changes. luxon recomputes offsets through Intl on every operation
 * (tens of µs), and these functions run per case, so two caches sit in front of it:
 * the zone's UTC offset per 15-minute bucket (every real offset change falls on a
 * 15-minute UTC boundary) and each local day's business window per policy object.
 */
import { DateTime, Duration, IANAZone } from 'luxon';
import type { TenantPolicy } from '../config/policy';
import type { Severity } from '../model/domain';
import { parseInstant } from '../model/instant';

/** Default size of the second-report deadline, in hours (business or wall-clock per policy). */
export const SECOND_REPORT_HOURS = 4;

const DAY_MS = 86_400_000;
const OFFSET_BUCKET_MS = 15 * 60_000;
const CACHE_LIMIT = 50_000;
/** `Date#getUTCDay()` index (0 = Sunday) → policy weekday name. */
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
/** Longest search for a business window: a full week plus the current day. */
const MAX_DAYS_AHEAD = 8;

interface ZoneOffsets {
  readonly zone: IANAZone;
  /** Offset in ms by 15-minute bucket number (a number key: no string is built per look-up). */
  readonly byBucket: Map<number, number>;
}
const zones = new Map<string, ZoneOffsets>();
/** Buckets cached over all zones; past it every zone's cache starts again (a flood of odd instants stays bounded). */
let cachedBuckets = 0;

/**
 * The UTC offset of an IANA zone at instant `t` (ms since epoch), in ms
 * (`Asia/Tokyo` → +9 h). Cached per zone and 15-minute bucket.
 */
export function zoneOffsetMs(t: number, timeZone: string): number {
  let z = zones.get(timeZone);
  if (!z) {
    z = { zone: IANAZone.create(timeZone), byBucket: new Map() };
    zones.set(timeZone, z);
  }
  const bucket = Math.floor(t / OFFSET_BUCKET_MS);
  const hit = z.byBucket.get(bucket);
  if (hit !== undefined) return hit;
  const minutes = z.zone.offset(t);
  const off = Number.isFinite(minutes) ? minutes * 60_000 : 0;
  if (cachedBuckets >= CACHE_LIMIT) {
    for (const other of zones.values()) other.byBucket.clear();
    cachedBuckets = 0;
  }
  z.byBucket.set(bucket, off);
  cachedBuckets++;
  return off;
}

interface Window {
  readonly start: number;
  readonly end: number;
}

/** Business windows per policy object, by local day number (days since 1970-01-01 in the tenant's calendar). */
const windowCache = new WeakMap<TenantPolicy, Map<number, Window | null>>();

function toDate(d: Date | string): Date {
  // parseInstant is Date.parse (what `new Date(string)` does) with a fast path for canonical UTC ISO.
  return typeof d === 'string' ? new Date(parseInstant(d)) : d;
}

function hm(s: string): { hour: number; minute: number } {
  const [h, m] = s.split(':');
  return { hour: Number(h), minute: Number(m) };
}

/** The local calendar day number of instant `t` in the tenant's zone. */
function localDay(t: number, policy: TenantPolicy): number {
  return Math.floor((t + zoneOffsetMs(t, policy.tenant.timezone)) / DAY_MS);
}

/** The business window of local day `day`, or undefined on a non-business day. */
function windowOn(day: number, policy: TenantPolicy): Window | undefined {
  let perDay = windowCache.get(policy);
  if (!perDay) {
    perDay = new Map();
    windowCache.set(policy, perDay);
  }
  const hit = perDay.get(day);
  if (hit !== undefined) return hit ?? undefined;
  const date = new Date(day * DAY_MS);
  const bh = policy.tenant.businessHours;
  let w: Window | null = null;
  if (bh.days.includes(WEEKDAYS[date.getUTCDay()] ?? 'sun')) {
    const ymd = { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
    const zone = { zone: policy.tenant.timezone };
    // luxon resolves local wall-clock times to instants (a time in a DST gap moves forward).
    w = {
      start: DateTime.fromObject({ ...ymd, ...hm(bh.start) }, zone).toMillis(),
      end: DateTime.fromObject({ ...ymd, ...hm(bh.end) }, zone).toMillis(),
    };
  }
  if (perDay.size >= CACHE_LIMIT) perDay.clear();
  perDay.set(day, w);
  return w ?? undefined;
}

/** Whether `at` falls inside the tenant's business hours (start inclusive, end exclusive). */
export function isBusinessHours(at: Date, policy: TenantPolicy): boolean {
  const t = at.getTime();
  const w = windowOn(localDay(t, policy), policy);
  return w !== undefined && t >= w.start && t < w.end;
}

function nextStartMs(t: number, policy: TenantPolicy): number {
  const today = localDay(t, policy);
  for (let i = 0; i < MAX_DAYS_AHEAD; i++) {
    const w = windowOn(today + i, policy);
    if (!w) continue;
    if (t < w.start) return w.start;
    if (t < w.end) return t;
  }
  // Unreachable with a valid policy (at least one business day); fail safe to "now".
  return t;
}

/**
 * The earliest instant at or after `at` that is inside business hours: `at` itself
 * when it already is, otherwise the start of the next business window.
 */
export function nextBusinessStart(at: Date, policy: TenantPolicy): Date {
  return new Date(nextStartMs(at.getTime(), policy));
}

/** `at` plus `ms` of business time (time outside business windows does not count). */
export function addBusinessTime(at: Date, ms: number, policy: TenantPolicy): Date {
  let cursor = nextStartMs(at.getTime(), policy);
  let left = ms;
  // Each round consumes the rest of one business window; bounded by the number of windows needed.
  for (let guard = 0; guard < 10_000; guard++) {
    const w = windowOn(localDay(cursor, policy), policy);
    if (!w) return new Date(cursor); // unreachable: cursor is always inside a window
    const room = w.end - cursor;
    if (left <= room) return new Date(cursor + left);
    left -= room;
    cursor = nextStartMs(w.end, policy);
  }
  return new Date(cursor);
}

/** `sla.notifyWithin` in ms per policy object: luxon's ISO duration parse costs microseconds per call. */
const notifyWithinCache = new WeakMap<TenantPolicy, { readonly text: string; readonly ms: number }>();

/** First-report deadline: `detectedAt + sla.notifyWithin`, around the clock (24×365). */
export function firstReportDue(detectedAt: Date | string, policy: TenantPolicy): Date {
  const text = policy.sla.notifyWithin;
  let hit = notifyWithinCache.get(policy);
  // Checked against the text too: one string compare keeps a policy object edited in place from a stale answer.
  if (hit === undefined || hit.text !== text) {
    hit = { text, ms: Duration.fromISO(text).as('milliseconds') };
    notifyWithinCache.set(policy, hit);
  }
  return new Date(toDate(detectedAt).getTime() + hit.ms);
}

/**
 * Second-report deadline, or undefined when the severity has none. The mode is
 * `notify[severity].secondReport`; when unset, critical and high default to
 * `business` (seed §5: senior investigation in business hours) and the others have
 * no second report. `hours` defaults to SECOND_REPORT_HOURS.
 */
export function secondReportDue(
  detectedAt: Date | string,
  severity: Severity,
  policy: TenantPolicy,
  options?: { hours?: number },
): Date | undefined {
  const mode = policy.notify[severity]?.secondReport ?? (severity === 'critical' || severity === 'high' ? 'business' : undefined);
  if (mode === undefined) return undefined;
  const at = toDate(detectedAt);
  const ms = (options?.hours ?? SECOND_REPORT_HOURS) * 3_600_000;
  switch (mode) {
    case 'business':
      return addBusinessTime(at, ms, policy);
    case 'always':
      return new Date(at.getTime() + ms);
    default: {
      const never: never = mode;
      return never;
    }
  }
}
