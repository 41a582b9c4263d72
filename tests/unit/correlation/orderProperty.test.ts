/**
 * The correlation header's claim, end to end: for alerts of one attack on one entity, "some case
 * was flagged multi-stage on arrival" and the highest severity the chain reached do not depend on
 * the order the alerts arrive in. Real pipeline, in-memory SQLite store, SecurityAlert rows as
 * Sentinel exports them (examples/attack-chain.ndjson), the entity spelt differently per alert.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { PolicyRegistry, tenantPolicySchema } from '../../../shared/config/policy';
import { silentLogger } from '../../../shared/log';
import { compareSeverity, type Severity } from '../../../shared/model/domain';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { CONTOSO_POLICY_INPUT } from '../../fixtures/brain/factory';
import { ROOT } from '../../helpers/cli';

const TEMPLATE = JSON.parse(readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8').split('\n')[0] as string) as Record<
  string,
  unknown
>;
const W = 7 * 86_400_000;
const T0 = Date.parse('2026-11-10T00:00:00.000Z');

/** Tactic → kill-chain phase index (ARCHITECTURE §4); the tactics also choose playbooks of different base severities. */
const PHASE_OF = {
  Reconnaissance: 0,
  InitialAccess: 2,
  CredentialAccess: 3,
  Execution: 4,
  CommandAndControl: 5,
  Discovery: 5,
  LateralMovement: 6,
  Exfiltration: 7,
} as const;
type Tactic = keyof typeof PHASE_OF;
const TACTICS = Object.keys(PHASE_OF) as Tactic[];

/** Spellings of one machine and of one address, as different sources report them. */
const SPELLINGS = {
  host: [
    { HostName: 'WS-FIN-023' },
    { HostName: 'ws-fin-023', DnsDomain: 'corp.contoso.example' },
    { FQDN: 'WS-FIN-023.corp.contoso.example.' },
    { HostName: 'ws-fin-023', NTDomain: 'CONTOSO' },
  ],
  ip: [{ Address: '2001:db8::17' }, { Address: '2001:DB8:0:0:0:0:0:17' }, { Address: '2001:0db8::0017' }],
} as const;

interface AlertSpec {
  readonly tactic: Tactic;
  readonly at: number;
  readonly spelling: number;
  readonly provider: 'Informational' | 'Low' | 'Medium' | 'High';
  readonly tokyo: boolean;
}

/** An instant as Sentinel writes it, or in Japan time (+09:00): the same instant. */
function timeText(ms: number, tokyo: boolean): string {
  if (!tokyo) return new Date(ms).toISOString();
  return `${new Date(ms + 9 * 3_600_000).toISOString().slice(0, -1)}+09:00`;
}

function row(i: number, a: AlertSpec, entity: 'host' | 'ip'): Record<string, unknown> {
  const t = timeText(T0 + a.at, a.tokyo);
  const id = `b1000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const spellings = SPELLINGS[entity];
  const name = `activity ${i}`;
  return {
    ...TEMPLATE,
    TimeGenerated: t,
    StartTime: t,
    EndTime: t,
    ProcessingEndTime: t,
    SystemAlertId: id,
    _ItemId: id,
    DisplayName: name,
    AlertName: name,
    Description: name,
    AlertSeverity: a.provider,
    AlertType: '',
    ExtendedProperties: JSON.stringify({ 'Analytic Rule Name': name }),
    Tactics: a.tactic,
    Techniques: '[]',
    Entities: JSON.stringify([{ $id: '2', Type: entity, ...spellings[a.spelling % spellings.length] }]),
  };
}

interface Outcome {
  readonly multiStage: boolean;
  readonly severity: Severity;
  /** Severity before the kill-chain step: what the case is worth on its own. */
  readonly own: Severity;
}

/** Triages the rows one delivery at a time in `order`, on a fresh store. */
async function arrive(rows: readonly Record<string, unknown>[], order: readonly number[], progression: boolean): Promise<Outcome[]> {
  const policy = tenantPolicySchema.parse({
    ...CONTOSO_POLICY_INPUT,
    correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression } },
  });
  const store = openSqliteStore({ file: ':memory:' });
  const pipeline = new Pipeline({
    store,
    policies: new PolicyRegistry([{ policy }]),
    brain: createBrain(),
    log: silentLogger,
    backoffMs: 1,
  });
  const out: Outcome[] = [];
  try {
    for (const i of order) {
      const res = (await pipeline.ingest([rows[i]], { kind: 'alerts', source: 'order-property' })).items[0]?.result;
      if (!res) throw new Error(`row ${i} was not triaged`);
      const own = res.reasons.find((r) => r.rule === 'kill-chain')?.from ?? res.severity;
      out.push({ multiStage: res.killChain.multiStage, severity: res.severity, own });
    }
  } finally {
    await store.close();
  }
  return out;
}

const highest = (s: readonly Severity[]): Severity => s.reduce((m, x) => (compareSeverity(x, m) > 0 ? x : m), 'informational');

/** The definition, from detection times and phases alone: a progressing pair, or ≥ 3 phases within one window. */
function isMultiStage(alerts: readonly AlertSpec[], progression: boolean): boolean {
  const phase = (a: AlertSpec) => PHASE_OF[a.tactic];
  for (const a of alerts) {
    const inSpan = alerts.filter((b) => b.at >= a.at && b.at - a.at <= W);
    if (new Set(inSpan.map(phase)).size >= 3) return true;
    if (progression && inSpan.some((b) => b.at > a.at && phase(b) > phase(a))) return true;
  }
  return false;
}

const permutation = (n: number) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });
const chains = fc.integer({ min: 2, max: 5 }).chain((n) =>
  fc.record({
    alerts: fc.array(
      fc.record({
        tactic: fc.constantFrom(...TACTICS),
        // Anywhere in two windows, with the edges (exactly one window apart, one ms more) often.
        at: fc.oneof(fc.integer({ min: 0, max: 2 * W }), fc.constantFrom(0, 1, W - 1, W, W + 1, 2 * W)),
        spelling: fc.nat({ max: 3 }),
        provider: fc.constantFrom('Informational' as const, 'Low' as const, 'Medium' as const, 'High' as const),
        tokyo: fc.boolean(),
      }),
      { minLength: n, maxLength: n },
    ),
    entity: fc.constantFrom('host' as const, 'ip' as const),
    first: permutation(n),
    second: permutation(n),
    progression: fc.boolean(),
  }),
);

describe('order independence of a chain on one entity, through the pipeline (property)', () => {
  it('flags the chain and peaks at the same severity whatever the arrival order, as the definition says', async () => {
    await fc.assert(
      fc.asyncProperty(chains, async ({ alerts, entity, first, second, progression }) => {
        const rows = alerts.map((a, i) => row(i, a, entity));

        const a = await arrive(rows, first, progression);
        const b = await arrive(rows, second, progression);

        const expected = isMultiStage(alerts, progression);
        const peak = highest([...a.map((x) => x.own), ...(expected ? (['high'] as const) : [])]);
        expect(a.some((x) => x.multiStage)).toBe(expected);
        expect(b.some((x) => x.multiStage)).toBe(expected);
        expect(highest(a.map((x) => x.severity))).toBe(peak);
        expect(highest(b.map((x) => x.severity))).toBe(peak);
      }),
      { numRuns: 80 },
    );
  });
});

describe('order independence, the shrunk counterexamples', () => {
  it('peaks at the same severity when a brute force (high) and a C2 beacon (medium) on one host arrive in either order', async () => {
    const alerts: AlertSpec[] = [
      { tactic: 'CredentialAccess', at: 0, spelling: 0, provider: 'Medium', tokyo: false },
      { tactic: 'CommandAndControl', at: 60_000, spelling: 1, provider: 'Medium', tokyo: true },
    ];
    const rows = alerts.map((a, i) => row(i, a, 'host'));

    const inTime = await arrive(rows, [0, 1], true);
    const reversed = await arrive(rows, [1, 0], true);

    // Before: high in time order (the C2 case raised medium → high), critical in reverse (the brute force raised high → critical).
    expect(highest(inTime.map((x) => x.severity))).toBe('high');
    expect(highest(reversed.map((x) => x.severity))).toBe('high');
  });

  it('flags three phases more than a window apart in no arrival order, not only when the middle one arrives last', async () => {
    // Reconnaissance, installation 2¼ days later, delivery a window + 1 ms after the first; progression off.
    const alerts: AlertSpec[] = [
      { tactic: 'Reconnaissance', at: 0, spelling: 0, provider: 'Medium', tokyo: false },
      { tactic: 'Execution', at: 195_069_087, spelling: 0, provider: 'Medium', tokyo: false },
      { tactic: 'InitialAccess', at: W + 1, spelling: 0, provider: 'Medium', tokyo: false },
    ];
    const rows = alerts.map((a, i) => row(i, a, 'host'));

    const middleLast = await arrive(rows, [0, 2, 1], false);
    const middleFirst = await arrive(rows, [1, 2, 0], false);

    expect(middleLast.map((x) => x.multiStage)).toEqual([false, false, false]);
    expect(middleFirst.map((x) => x.multiStage)).toEqual([false, false, false]);
  });
});
