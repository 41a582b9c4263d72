/**
 * Order independence for accounts under a tenant directory: whichever order the alerts arrive in, the same pairs
 * of cases are related, exactly those whose account spellings share a directory class (or a key) within the window.
 * Real pipeline, in-memory SQLite store, SecurityAlert rows as Sentinel exports them.
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
const AAD = '0f1e2d3c-0000-4000-8000-000000000001';
/** Tactic → kill-chain phase index (ARCHITECTURE §4). */
const PHASE_OF = { Reconnaissance: 0, InitialAccess: 2, CredentialAccess: 3, Execution: 4, LateralMovement: 6, Exfiltration: 7 } as const;
type Tactic = keyof typeof PHASE_OF;
const TACTICS = Object.keys(PHASE_OF) as Tactic[];
const DIRECTORY = { domains: [{ netbios: 'CONTOSO', upnSuffixes: ['contoso.com', 'contoso.onmicrosoft.com'] }] };

/**
 * One account as different sources spell it, with the keys it is stored under, named by directory class: `C` is
 * CONTOSO\alice ≡ alice@contoso.com ≡ alice@contoso.onmicrosoft.com under the directory (three classes without it),
 * `corp` an unmapped NT domain, `aad` the object id.
 */
const SPELLINGS = [
  { fields: { Name: 'alice', UPNSuffix: 'contoso.com' }, keys: ['upn1'] },
  { fields: { Name: 'alice', UPNSuffix: 'contoso.onmicrosoft.com' }, keys: ['upn2'] },
  { fields: { Name: 'alice', NTDomain: 'CONTOSO' }, keys: ['nt'] },
  { fields: { Name: 'alice', NTDomain: 'CONTOSO', UPNSuffix: 'contoso.com' }, keys: ['upn1', 'nt'] },
  { fields: { Name: 'alice', NTDomain: 'CORP', UPNSuffix: 'contoso.onmicrosoft.com' }, keys: ['upn2', 'corp'] },
  { fields: { Name: 'alice', NTDomain: 'CORP' }, keys: ['corp'] },
  { fields: { Name: 'alice', UPNSuffix: 'contoso.com', AadUserId: AAD }, keys: ['upn1', 'aad'] },
  { fields: { Name: 'alice', NTDomain: 'CONTOSO', AadUserId: AAD }, keys: ['nt', 'aad'] },
  { fields: { AadUserId: AAD }, keys: ['aad'] },
] as const;

const classOf = (key: string, directory: boolean): string => (directory && ['upn1', 'upn2', 'nt'].includes(key) ? 'C' : key);

/** The spellings of one directory class (`C`): every pair of them links under the directory. */
const ONE_ACCOUNT = [0, 1, 2, 3] as const;

interface AlertSpec {
  readonly tactic: Tactic;
  readonly at: number;
  readonly spelling: number;
}

function row(i: number, a: AlertSpec): Record<string, unknown> {
  const t = new Date(T0 + a.at).toISOString();
  const id = `b3000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
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
    AlertType: '',
    CompromisedEntity: '',
    ExtendedProperties: JSON.stringify({ 'Analytic Rule Name': name }),
    Tactics: a.tactic,
    Techniques: '[]',
    Entities: JSON.stringify([{ $id: '2', Type: 'account', ...SPELLINGS[a.spelling]?.fields }]),
  };
}

interface Arrival {
  /** The related pairs (`i-j`, i < j, by row index). */
  readonly pairs: string[];
  readonly multiStage: boolean[];
  readonly severity: Severity[];
  /** Severity before the kill-chain step: what each case is worth on its own. */
  readonly own: Severity[];
}

/** Triages the rows one delivery at a time in `order` on a fresh store. */
async function arrive(rows: readonly Record<string, unknown>[], order: readonly number[], directory: boolean): Promise<Arrival> {
  const policy = tenantPolicySchema.parse({ ...CONTOSO_POLICY_INPUT, ...(directory ? { directory: DIRECTORY } : {}) });
  const store = openSqliteStore({ file: ':memory:' });
  const pipeline = new Pipeline({
    store,
    policies: new PolicyRegistry([{ policy }]),
    brain: createBrain(),
    log: silentLogger,
    backoffMs: 1,
  });
  const caseOf = new Map<string, number>();
  const pairs = new Set<string>();
  const out: Arrival = { pairs: [], multiStage: [], severity: [], own: [] };
  try {
    for (const i of order) {
      const item = (await pipeline.ingest([rows[i]], { kind: 'alerts', source: 'directory-order-property' })).items[0];
      const res = item?.result;
      if (res === undefined || item?.caseId === undefined) throw new Error(`row ${i} was not triaged`);
      caseOf.set(item.caseId, i);
      for (const id of res.killChain.relatedCaseIds) {
        const j = caseOf.get(id);
        if (j === undefined) throw new Error(`row ${i} is related to unknown case ${id}`);
        pairs.add(`${Math.min(i, j)}-${Math.max(i, j)}`);
      }
      out.multiStage.push(res.killChain.multiStage);
      out.severity.push(res.severity);
      out.own.push(res.reasons.find((r) => r.rule === 'kill-chain')?.from ?? res.severity);
    }
  } finally {
    await store.close();
  }
  out.pairs.push(...[...pairs].sort());
  return out;
}

const highest = (s: readonly Severity[]): Severity => s.reduce((m, x) => (compareSeverity(x, m) > 0 ? x : m), 'informational');

/** The definition (progression on, as the policy defaults): a progressing pair, or ≥ 3 phases within one window. */
function isMultiStage(alerts: readonly AlertSpec[]): boolean {
  for (const a of alerts) {
    const inSpan = alerts.filter((b) => b.at >= a.at && b.at - a.at <= W);
    if (new Set(inSpan.map((b) => PHASE_OF[b.tactic])).size >= 3) return true;
    if (inSpan.some((b) => b.at > a.at && PHASE_OF[b.tactic] > PHASE_OF[a.tactic])) return true;
  }
  return false;
}

/** The definition: two alerts within a window whose spellings share a class. */
function expectedPairs(alerts: readonly AlertSpec[], directory: boolean): string[] {
  const classes = alerts.map((a) => new Set((SPELLINGS[a.spelling]?.keys ?? []).map((k) => classOf(k, directory))));
  const out: string[] = [];
  for (let i = 0; i < alerts.length; i++)
    for (let j = i + 1; j < alerts.length; j++) {
      const a = alerts[i] as AlertSpec;
      const b = alerts[j] as AlertSpec;
      if (Math.abs(a.at - b.at) <= W && [...(classes[i] ?? [])].some((c) => classes[j]?.has(c))) out.push(`${i}-${j}`);
    }
  return out.sort();
}

const permutation = (n: number) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });
const sets = (spellings: fc.Arbitrary<number>) =>
  fc.integer({ min: 2, max: 5 }).chain((n) =>
    fc.record({
      alerts: fc.array(
        fc.record({
          tactic: fc.constantFrom(...TACTICS),
          at: fc.oneof(fc.integer({ min: 0, max: 2 * W }), fc.constantFrom(0, W, W + 1)),
          spelling: spellings,
        }),
        { minLength: n, maxLength: n },
      ),
      directory: fc.boolean(),
      first: permutation(n),
      second: permutation(n),
    }),
  );

describe('order independence of account correlation under a tenant directory (property)', () => {
  it('relates the same pairs whatever the arrival order: those whose spellings share a directory class within a window', async () => {
    await fc.assert(
      fc.asyncProperty(sets(fc.nat({ max: SPELLINGS.length - 1 })), async ({ alerts, directory, first, second }) => {
        const rows = alerts.map((a, i) => row(i, a));

        const a = await arrive(rows, first, directory);
        const b = await arrive(rows, second, directory);

        const expected = expectedPairs(alerts, directory);
        expect(a.pairs).toEqual(expected);
        expect(b.pairs).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it('flags a chain on one account spelt every way the directory maps, and peaks at the same severity, whatever the arrival order', async () => {
    await fc.assert(
      fc.asyncProperty(sets(fc.constantFrom(...ONE_ACCOUNT)), async ({ alerts, first, second }) => {
        const rows = alerts.map((a, i) => row(i, a));

        const a = await arrive(rows, first, true);
        const b = await arrive(rows, second, true);

        const expected = isMultiStage(alerts);
        const peak = highest([...a.own, ...(expected ? (['high'] as const) : [])]);
        expect(a.multiStage.some(Boolean)).toBe(expected);
        expect(b.multiStage.some(Boolean)).toBe(expected);
        expect(highest(a.severity)).toBe(peak);
        expect(highest(b.severity)).toBe(peak);
      }),
      { numRuns: 80 },
    );
  });
});
