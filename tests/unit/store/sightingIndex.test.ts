import fc from 'fast-check';
import { maskOf } from '../../../shared/correlation/killchain';
import type { KillChainPhase, Severity } from '../../../shared/model/domain';
import { canonicalInstant, parseInstant } from '../../../shared/model/instant';
import type { EntitySighting, RelatedResult } from '../../../shared/store/port';
import { groupSightings, type IndexQuery, type SightingGroup, SightingIndex } from '../../../shared/store/sightingIndex';

const T = 'tenant-a';
const group = (at: string, keys: string[], phases: KillChainPhase[] = ['exploitation']): SightingGroup => ({
  at,
  phases,
  playbook: 'brute-force',
  severity: 'medium',
  keys,
});
const query = (q: Partial<IndexQuery> & Pick<IndexQuery, 'keys'>): IndexQuery => ({
  tenantId: T,
  from: '2024-05-01T00:00:00.000Z',
  to: '2024-05-08T00:00:00.000Z',
  limitPerKey: 51,
  ...q,
});
const ids = (r: RelatedResult) => r.sightings.map((s) => `${s.entityKey}@${s.caseId}`);

describe('SightingIndex', () => {
  it('finds the sightings of a key inside the window, both bounds included, newest first', () => {
    const index = new SightingIndex();
    index.replace(T, 'before', [group('2024-04-30T23:59:59.999Z', ['ip:203.0.113.77'])]);
    index.replace(T, 'first', [group('2024-05-01T00:00:00.000Z', ['ip:203.0.113.77'])]);
    index.replace(T, 'last', [group('2024-05-08T00:00:00.000Z', ['ip:203.0.113.77'])]);
    index.replace(T, 'after', [group('2024-05-08T00:00:00.001Z', ['ip:203.0.113.77'])]);

    const found = index.query(query({ keys: ['ip:203.0.113.77'] }));

    expect(ids(found)).toEqual(['ip:203.0.113.77@last', 'ip:203.0.113.77@first']);
  });

  it('orders sightings at the same instant by case id, descending, as the former table did', () => {
    const index = new SightingIndex();
    for (const c of ['b', 'a', 'c']) index.replace(T, c, [group('2024-05-02T00:00:00.000Z', ['host:vpn01'])]);

    expect(ids(index.query(query({ keys: ['host:vpn01'] })))).toEqual(['host:vpn01@c', 'host:vpn01@b', 'host:vpn01@a']);
  });

  it('reports a key with limitPerKey sightings as saturated, not counting the excluded case', () => {
    const index = new SightingIndex();
    for (const c of ['c1', 'c2', 'c3']) index.replace(T, c, [group('2024-05-02T00:00:00.000Z', ['account:svc@contoso.example'])]);

    const withSelf = index.query(query({ keys: ['account:svc@contoso.example'], limitPerKey: 3 }));
    const withoutSelf = index.query(query({ keys: ['account:svc@contoso.example'], limitPerKey: 3, excludeCaseId: 'c3' }));

    expect(withSelf).toEqual({ sightings: [], saturated: ['account:svc@contoso.example'] });
    expect(ids(withoutSelf)).toEqual(['account:svc@contoso.example@c2', 'account:svc@contoso.example@c1']);
  });

  it("replaces a case's sightings and hands back the ones it had, so a rollback can restore them", () => {
    const index = new SightingIndex();
    index.replace(T, 'c1', [group('2024-05-02T00:00:00.000Z', ['host:vpn01', 'ip:203.0.113.77'])]);

    const previous = index.replace(T, 'c1', [group('2024-05-03T00:00:00.000Z', ['host:web02'])]);
    const afterReplace = index.query(query({ keys: ['host:vpn01', 'ip:203.0.113.77', 'host:web02'] }));
    index.replace(T, 'c1', previous);
    const afterRestore = index.query(query({ keys: ['host:vpn01', 'ip:203.0.113.77', 'host:web02'] }));

    expect(ids(afterReplace)).toEqual(['host:web02@c1']);
    expect(ids(afterRestore)).toEqual(['host:vpn01@c1', 'ip:203.0.113.77@c1']);
    expect(index.rows).toBe(2);
  });

  it('keeps tenants apart even when they use the same case id', () => {
    const index = new SightingIndex();
    index.replace('tenant-a', 'c1', [group('2024-05-02T00:00:00.000Z', ['host:vpn01'])]);
    index.replace('tenant-b', 'c1', [group('2024-05-02T00:00:00.000Z', ['host:vpn01'])]);

    index.replace('tenant-b', 'c1', []);

    expect(ids(index.query(query({ keys: ['host:vpn01'] })))).toEqual(['host:vpn01@c1']);
    expect(index.query(query({ tenantId: 'tenant-b', keys: ['host:vpn01'] })).sightings).toEqual([]);
  });

  it('drops everything older than the eviction instant and keeps the rest', () => {
    const index = new SightingIndex();
    index.replace(T, 'old', [group('2024-05-01T00:00:00.000Z', ['host:vpn01', 'host:only-old'])]);
    index.replace(T, 'new', [group('2024-05-05T00:00:00.000Z', ['host:vpn01'])]);

    const dropped = index.evictBefore('2024-05-03T00:00:00.000Z');

    expect(dropped).toBe(2);
    expect(ids(index.query(query({ keys: ['host:vpn01', 'host:only-old'] })))).toEqual(['host:vpn01@new']);
    expect({ rows: index.rows, entries: index.entries, keys: index.keys }).toEqual({ rows: 1, entries: 1, keys: 1 });
  });

  it('gives each row its detection time in ms and its phase mask, and the row still compares as its stored fields', () => {
    const index = new SightingIndex();
    index.replace(T, 'c1', [group('2024-05-02T03:04:05.678Z', ['host:vpn01'], ['delivery', 'installation'])]);

    const [row] = index.query(query({ keys: ['host:vpn01'] })).sightings;

    expect(row?.detectedAtMs).toBe(Date.parse('2024-05-02T03:04:05.678Z'));
    expect(row?.phaseMask).toBe(maskOf(['delivery', 'installation']));
    expect(row).toEqual({
      tenantId: T,
      entityKey: 'host:vpn01',
      caseId: 'c1',
      detectedAt: '2024-05-02T03:04:05.678Z',
      phases: ['delivery', 'installation'],
      playbook: 'brute-force',
      severity: 'medium',
    });
  });

  it('finds the window by the instant strings when some instants are not canonical (their times disagree or are NaN)', () => {
    const index = new SightingIndex();
    // '+275760-…' sorts before every four-digit year as a string, but is the latest instant of all as a number.
    index.replace(T, 'far', [group('+275760-09-13T00:00:00.000Z', ['host:vpn01'])]);
    index.replace(T, 'in', [group('2024-05-02T00:00:00.000Z', ['host:vpn01'])]);
    index.replace(T, 'odd', [group('not-a-date', ['host:vpn01'])]);

    const found = index.query(query({ keys: ['host:vpn01'], from: '2024-05-01T00:00:00.000Z', to: 'not-a-date' }));

    expect(ids(found)).toEqual(['host:vpn01@odd', 'host:vpn01@in']);
  });

  it('groups a case’s sightings by instant and verdict, the last of a repeated (key, instant) winning', () => {
    const s = (entityKey: string, detectedAt: string, severity: Severity): EntitySighting => ({
      tenantId: T,
      caseId: 'c1',
      entityKey,
      detectedAt,
      phases: ['exploitation'],
      playbook: 'brute-force',
      severity,
    });

    const groups = groupSightings([
      s('host:a', '2024-05-02T09:00:00+09:00', 'low'),
      s('host:b', '2024-05-02T00:00:00Z', 'low'),
      s('host:a', '2024-05-02T00:00:00.000Z', 'high'),
    ]);

    expect(groups).toEqual([
      { at: '2024-05-02T00:00:00.000Z', phases: ['exploitation'], playbook: 'brute-force', severity: 'low', keys: ['host:b'] },
      { at: '2024-05-02T00:00:00.000Z', phases: ['exploitation'], playbook: 'brute-force', severity: 'high', keys: ['host:a'] },
    ]);
  });

  it('groups as the general rule says whatever the input: one instant and verdict (the shortcut), repeated keys, equal phase lists in other arrays', () => {
    // The general rule, written out plainly: one row per (key, canonical instant), the last writer winning (and
    // taking the last position); rows grouped by (instant, phases as text, playbook, severity) in first-seen order.
    const reference = (sightings: readonly EntitySighting[]) => {
      const last = new Map<string, EntitySighting & { at: string }>();
      for (const s of sightings) {
        const at = canonicalInstant(s.detectedAt);
        last.delete(`${s.entityKey}|${at}`);
        last.set(`${s.entityKey}|${at}`, { ...s, at });
      }
      const groups = new Map<string, SightingGroup & { keys: string[] }>();
      for (const s of last.values()) {
        const id = `${s.at}|${s.phases.join(',')}|${s.playbook}|${s.severity}`;
        const g = groups.get(id);
        if (g) g.keys.push(s.entityKey);
        else groups.set(id, { at: s.at, phases: s.phases, playbook: s.playbook, severity: s.severity, keys: [s.entityKey] });
      }
      return [...groups.values()];
    };
    const shared: KillChainPhase[] = ['exploitation'];
    const sighting = fc.record({
      entityKey: fc.constantFrom('host:a', 'host:b', 'ip:1', 'account:x'),
      // Mostly the one spelling (the shortcut's case); sometimes another spelling of the same instant, or another instant.
      detectedAt: fc.constantFrom(
        '2024-05-02T00:00:00.000Z',
        '2024-05-02T00:00:00.000Z',
        '2024-05-02T00:00:00Z',
        '2024-05-03T00:00:00.000Z',
      ),
      // The same array (as the pipeline passes), an equal list in another array, or another verdict.
      phases: fc.constantFrom<readonly KillChainPhase[]>(shared, shared, ['exploitation'], ['delivery']),
      playbook: fc.constantFrom('p', 'p', 'q'),
      severity: fc.constantFrom<Severity>('low', 'low', 'high'),
    });
    fc.assert(
      fc.property(fc.array(sighting, { maxLength: 20 }), fc.constantFrom('pipeline', 'one instant', 'any'), (drawn, shape) => {
        // Arrange: the pipeline's input (distinct keys, the first sighting's instant and verdict); one instant, playbook
        // and severity with the keys and phase lists drawn (repeats, other arrays, other phases); or anything.
        const first = drawn[0];
        const rows =
          shape === 'pipeline' && first
            ? [...new Set(drawn.map((d) => d.entityKey))].map((entityKey) => ({ ...first, entityKey }))
            : shape === 'one instant' && first
              ? drawn.map((d) => ({ ...first, entityKey: d.entityKey, phases: d.phases }))
              : drawn;
        const input: EntitySighting[] = rows.map((d) => ({ tenantId: T, caseId: 'c1', ...d }));

        // Act
        const groups = groupSightings(input);

        // Assert
        expect(groups).toEqual(reference(input));
      }),
      { numRuns: 500 },
    );
  });

  it('answers exactly as a plain filter-and-sort over every row would, after any sequence of writes', () => {
    const keys = ['host:a', 'host:b', 'ip:1', 'account:x'];
    const cases = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    // Mostly canonical instants; now and then one whose number disagrees with its string order, or is NaN.
    const instant = fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: 9 }).map((d) => `2024-05-0${d}T00:00:00.000Z`.replace('-00T', '-10T')) },
      { weight: 1, arbitrary: fc.constantFrom('+275760-09-13T00:00:00.000Z', 'not-a-date') },
    );
    const phaseSet = fc.subarray<KillChainPhase>(['delivery', 'exploitation', 'installation']);
    const write = fc.record({
      tenant: fc.constantFrom('t1', 't2'),
      caseId: fc.constantFrom(...cases),
      groups: fc.array(fc.record({ at: instant, phases: phaseSet, keys: fc.uniqueArray(fc.constantFrom(...keys), { maxLength: 3 }) }), {
        maxLength: 2,
      }),
    });
    const ask = fc.record({
      tenant: fc.constantFrom('t1', 't2'),
      keys: fc.array(fc.constantFrom(...keys), { maxLength: 4 }),
      from: instant,
      to: instant,
      exclude: fc.option(fc.constantFrom(...cases), { nil: undefined }),
      limit: fc.integer({ min: 0, max: 5 }),
    });
    fc.assert(
      fc.property(
        fc.array(write, { maxLength: 30 }),
        fc.array(ask, { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.option(instant, { nil: undefined }),
        (writes, asks, bulk, evictBefore) => {
          // Arrange: the model is the former table — one row per (tenant, key, instant, case).
          const model = new Map<
            string,
            { tenant: string; key: string; at: string; caseId: string; severity: string; phases: readonly KillChainPhase[] }
          >();
          const index = new SightingIndex();
          const finals = new Map<string, SightingGroup[]>();
          for (const [n, w] of writes.entries()) {
            for (const [id, r] of model) if (r.tenant === w.tenant && r.caseId === w.caseId) model.delete(id);
            const sightings = w.groups.flatMap((g) =>
              g.keys.map((k) => ({
                tenantId: w.tenant,
                caseId: w.caseId,
                entityKey: k,
                detectedAt: g.at,
                phases: g.phases,
                playbook: 'p',
                severity: 'low' as Severity,
              })),
            );
            const groups = groupSightings(sightings.map((s) => ({ ...s, severity: (n % 2 ? 'low' : 'high') as Severity })));
            for (const g of groups)
              for (const k of g.keys)
                model.set(`${w.tenant}|${k}|${g.at}|${w.caseId}`, {
                  tenant: w.tenant,
                  key: k,
                  at: g.at,
                  caseId: w.caseId,
                  severity: g.severity,
                  phases: g.phases,
                });
            if (bulk) finals.set(`${w.tenant}\u0000${w.caseId}`, groups);
            else index.replace(w.tenant, w.caseId, groups);
          }
          if (bulk)
            index.load((add) => {
              for (const [id, groups] of finals) add(id.split('\u0000')[0] as string, id.split('\u0000')[1] as string, groups);
            });
          if (evictBefore !== undefined) {
            index.evictBefore(evictBefore);
            for (const [id, r] of model) if (r.at < evictBefore) model.delete(id);
          }
          expect(index.rows).toBe(model.size);
          for (const a of asks) {
            // Act
            const got = index.query({
              tenantId: a.tenant,
              keys: a.keys,
              from: a.from,
              to: a.to,
              excludeCaseId: a.exclude,
              limitPerKey: a.limit,
            });
            // Assert: same rows, same order, same saturated keys.
            const want: string[] = [];
            const saturated: string[] = [];
            if (a.limit > 0)
              for (const k of [...new Set(a.keys)]) {
                const rows = [...model.values()]
                  .filter((r) => r.tenant === a.tenant && r.key === k && r.at >= a.from && r.at <= a.to && r.caseId !== a.exclude)
                  .sort((x, y) => (x.at === y.at ? (x.caseId < y.caseId ? 1 : -1) : x.at < y.at ? 1 : -1));
                if (rows.length >= a.limit) saturated.push(k);
                else want.push(...rows.map((r) => `${k}@${r.caseId}@${r.at}@${r.severity}@${parseInstant(r.at)}@${maskOf(r.phases)}`));
              }
            expect(got.saturated).toEqual(saturated);
            expect(
              got.sightings.map((s) => `${s.entityKey}@${s.caseId}@${s.detectedAt}@${s.severity}@${s.detectedAtMs}@${s.phaseMask}`),
            ).toEqual(want);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
