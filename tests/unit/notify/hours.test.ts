import fc from 'fast-check';
import { DateTime } from 'luxon';
import type { TenantPolicy } from '../../../shared/config/policy';
import {
  addBusinessTime,
  firstReportDue,
  isBusinessHours,
  nextBusinessStart,
  secondReportDue,
  zoneOffsetMs,
} from '../../../shared/notify/hours';
import { contosoPolicy } from '../../fixtures/brain/factory';

const tokyo = contosoPolicy();
const newYork = contosoPolicy({
  tenant: {
    id: 'ny',
    name: 'NY tenant',
    timezone: 'America/New_York',
    businessHours: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '18:00' },
  },
});
const d = (iso: string) => new Date(iso);

describe('business hours in Asia/Tokyo (09:00–18:00, Mon–Fri)', () => {
  it('is inside on a Friday morning local time, though it is still Thursday in UTC', () => {
    expect(isBusinessHours(d('2026-11-20T01:13:05Z'), tokyo)).toBe(true); // Fri 10:13 JST
  });

  it('counts the start as inside and the end as outside', () => {
    expect(isBusinessHours(d('2026-11-20T00:00:00Z'), tokyo)).toBe(true); // Fri 09:00 JST
    expect(isBusinessHours(d('2026-11-20T09:00:00Z'), tokyo)).toBe(false); // Fri 18:00 JST
    expect(isBusinessHours(d('2026-11-19T23:59:59Z'), tokyo)).toBe(false); // Fri 08:59:59 JST
  });

  it('is outside on Saturday', () => {
    expect(isBusinessHours(d('2026-11-21T03:00:00Z'), tokyo)).toBe(false); // Sat 12:00 JST
  });

  it('moves Friday evening to Monday 09:00 and keeps an instant already inside', () => {
    expect(nextBusinessStart(d('2026-11-20T09:30:00Z'), tokyo).toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(nextBusinessStart(d('2026-11-20T02:00:00Z'), tokyo).toISOString()).toBe('2026-11-20T02:00:00.000Z');
  });
});

describe('business hours across the March DST change in America/New_York', () => {
  it('knows 09:30 local is 14:30Z before the change and 13:30Z after it', () => {
    expect(isBusinessHours(d('2026-03-06T14:30:00Z'), newYork)).toBe(true); // Fri 09:30 EST
    expect(isBusinessHours(d('2026-03-09T13:30:00Z'), newYork)).toBe(true); // Mon 09:30 EDT
    expect(isBusinessHours(d('2026-03-06T13:30:00Z'), newYork)).toBe(false); // Fri 08:30 EST
  });

  it('starts the next window at Monday 09:00 EDT when asked on the DST weekend', () => {
    expect(nextBusinessStart(d('2026-03-07T17:00:00Z'), newYork).toISOString()).toBe('2026-03-09T13:00:00.000Z');
  });

  it('counts business time over the weekend of the change without gaining or losing an hour', () => {
    // Fri 17:00 EST + 4 business hours = 1 h on Friday + 3 h from Monday 09:00 EDT → Monday 12:00 EDT.
    expect(addBusinessTime(d('2026-03-06T22:00:00Z'), 4 * 3_600_000, newYork).toISOString()).toBe('2026-03-09T16:00:00.000Z');
  });
});

describe('report deadlines', () => {
  it('makes the first report due 15 minutes after detection, day or night', () => {
    expect(firstReportDue('2026-11-21T15:00:00Z', tokyo).toISOString()).toBe('2026-11-21T15:15:00.000Z');
  });

  it("takes each policy's own first-report SLA, whichever policy was asked before", () => {
    const slow = contosoPolicy({ sla: { notifyWithin: 'PT1H' } });

    const fast = firstReportDue('2026-11-21T15:00:00.000Z', tokyo);
    const late = firstReportDue('2026-11-21T15:00:00.000Z', slow);
    const fastAgain = firstReportDue(new Date('2026-11-21T15:00:00.000Z'), tokyo);

    expect(fast.toISOString()).toBe('2026-11-21T15:15:00.000Z');
    expect(late.toISOString()).toBe('2026-11-21T16:00:00.000Z');
    expect(fastAgain.toISOString()).toBe('2026-11-21T15:15:00.000Z');
  });

  it('makes the high second report due four business hours after detection, skipping the weekend', () => {
    // Fri 17:00 JST: 1 h on Friday, 3 h on Monday from 09:00 → Mon 12:00 JST.
    expect(secondReportDue('2026-11-20T08:00:00Z', 'high', tokyo)?.toISOString()).toBe('2026-11-23T03:00:00.000Z');
  });

  it('starts counting at the next business start when detected at night', () => {
    // Tue 02:00 JST → Tue 09:00 + 4 h = Tue 13:00 JST.
    expect(secondReportDue('2026-11-23T17:00:00Z', 'critical', tokyo)?.toISOString()).toBe('2026-11-24T04:00:00.000Z');
  });

  it('has no second report for medium and below', () => {
    expect(secondReportDue('2026-11-20T08:00:00Z', 'medium', tokyo)).toBeUndefined();
    expect(secondReportDue('2026-11-20T08:00:00Z', 'informational', tokyo)).toBeUndefined();
  });

  it("counts wall-clock hours when the tenant's second report is 24×365", () => {
    const always = contosoPolicy({ notify: { critical: { first: ['SOC on-call'], secondReport: 'always' } } });

    expect(secondReportDue('2026-11-21T15:00:00Z', 'critical', always)?.toISOString()).toBe('2026-11-21T19:00:00.000Z');
  });

  it('defaults critical and high to business hours when the notify matrix says nothing', () => {
    const silent = contosoPolicy({ notify: {} });

    expect(secondReportDue('2026-11-20T08:00:00Z', 'critical', silent)?.toISOString()).toBe('2026-11-23T03:00:00.000Z');
    expect(secondReportDue('2026-11-20T08:00:00Z', 'high', silent, { hours: 1 })?.toISOString()).toBe('2026-11-20T09:00:00.000Z');
  });
});

describe('zone offsets (cached per zone and 15 minutes)', () => {
  it('changes at the exact minute of the March DST change in New York, asked in either order', () => {
    const change = Date.parse('2026-03-08T07:00:00.000Z'); // 02:00 EST → 03:00 EDT

    const after = zoneOffsetMs(change, 'America/New_York');
    const before = zoneOffsetMs(change - 1, 'America/New_York');

    expect(before).toBe(-5 * 3_600_000);
    expect(after).toBe(-4 * 3_600_000);
    expect(zoneOffsetMs(change - 1, 'America/New_York')).toBe(-5 * 3_600_000);
  });

  it("keeps one cache per zone: the same instant in another zone has that zone's offset", () => {
    const t = Date.parse('2026-07-01T12:00:00.000Z');

    expect(zoneOffsetMs(t, 'Asia/Tokyo')).toBe(9 * 3_600_000);
    expect(zoneOffsetMs(t, 'America/New_York')).toBe(-4 * 3_600_000);
    expect(zoneOffsetMs(t, 'Australia/Lord_Howe')).toBe(10.5 * 3_600_000);
    expect(zoneOffsetMs(t, 'Asia/Tokyo')).toBe(9 * 3_600_000);
  });

  it('agrees with luxon for any instant and zone (property)', () => {
    const zones = ['America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kathmandu'];
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.parse('2024-01-01T00:00:00Z'), max: Date.parse('2028-01-01T00:00:00Z') }),
        (zone, t) => {
          expect(zoneOffsetMs(t, zone)).toBe(DateTime.fromMillis(t, { zone }).offset * 60_000);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('cached zone arithmetic agrees with plain luxon (property)', () => {
  const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const zones = ['America/New_York', 'Asia/Tokyo', 'Europe/London', 'Australia/Lord_Howe', 'America/Santiago'];
  const policies = new Map(
    zones.map((timezone) => [
      timezone,
      contosoPolicy({
        tenant: {
          id: timezone,
          name: timezone,
          timezone,
          businessHours: { days: ['mon', 'wed', 'thu', 'fri', 'sun'], start: '08:30', end: '17:45' },
        },
      }),
    ]),
  );

  /** Straightforward luxon: local weekday and HH:MM compared with the policy. */
  function referenceInside(t: number, p: TenantPolicy): boolean {
    const dt = DateTime.fromMillis(t, { zone: p.tenant.timezone });
    const hhmm = dt.toFormat('HH:mm');
    const bh = p.tenant.businessHours;
    return bh.days.includes(DAYS[dt.weekday - 1] as (typeof bh.days)[number]) && hhmm >= bh.start && hhmm < bh.end;
  }

  it('classifies any instant of 2025–2027 as inside or outside business hours like luxon does', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2027-12-31T00:00:00Z') }),
        (zone, t) => {
          const p = policies.get(zone)!;

          expect(isBusinessHours(new Date(t), p)).toBe(referenceInside(t, p));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('finds a next business start that is inside business hours and has no business minute before it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2027-12-31T00:00:00Z') }),
        (zone, t) => {
          const p = policies.get(zone)!;
          const next = nextBusinessStart(new Date(t), p).getTime();

          expect(next).toBeGreaterThanOrEqual(t);
          expect(referenceInside(next, p)).toBe(true);
          // Window edges (08:30, 17:45 local) and every zone offset here are multiples of 15 minutes,
          // so every business interval starts on a 15-minute UTC boundary: checking those is exhaustive.
          const step = 15 * 60_000;
          for (let m = Math.ceil(t / step) * step; m < next; m += step) expect(referenceInside(m, p)).toBe(false);
        },
      ),
      { numRuns: 150 },
    );
  });
});
