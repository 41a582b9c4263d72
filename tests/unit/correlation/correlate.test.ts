import fc from 'fast-check';
import { isProgression } from '../../../shared/correlation/correlate';
import { maskOf } from '../../../shared/correlation/killchain';
import { KILL_CHAIN_PHASES, type KillChainPhase } from '../../../shared/model/domain';
import { createBrain } from '../../../shared/triage/brain';
import { account, contosoPolicy, host, ip, makeCase, resolved, SimulatedStore, triage } from '../../fixtures/brain/factory';

/** One ATT&CK tactic per phase, so a test case can be put in any phase. */
const TACTIC_OF: Record<KillChainPhase, string> = {
  reconnaissance: 'Reconnaissance',
  weaponization: 'ResourceDevelopment',
  delivery: 'InitialAccess',
  exploitation: 'CredentialAccess',
  installation: 'Execution',
  'command-and-control': 'CommandAndControl',
  'lateral-movement': 'LateralMovement',
  'actions-on-objectives': 'Exfiltration',
};

const T0 = Date.parse('2026-11-16T00:00:00Z');
const minutes = (m: number) => new Date(T0 + m * 60_000).toISOString();
const brain = createBrain();

function phaseCase(
  caseId: string,
  phases: readonly KillChainPhase[],
  atMinutes: number,
  entities = [host('ws-fin-023.corp.contoso.example')],
) {
  return makeCase({
    caseId,
    name: `activity ${caseId}`,
    tactics: phases.map((p) => TACTIC_OF[p]),
    detectedAt: minutes(atMinutes),
    entities,
  });
}

/** A store row of `c`'s tenant: `entityKey` seen in `caseId` with `phases`, `at` minutes after T0. */
function rowOf(c: { tenantId: string }) {
  return (entityKey: string, caseId: string, phases: KillChainPhase[], at = 10) => ({
    tenantId: c.tenantId,
    entityKey,
    caseId,
    detectedAt: minutes(at),
    phases,
    playbook: 'generic',
    severity: 'medium' as const,
  });
}

describe('correlation verdict', () => {
  it('treats a key seen in more than K other cases as infrastructure: it links nothing and is reported', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 } }));
    const store = new SimulatedStore();
    const proxy = ip('10.1.1.1');
    triage(brain, store, phaseCase('n1', ['delivery'], 0, [proxy]), rp);
    triage(brain, store, phaseCase('n2', ['exploitation'], 10, [proxy]), rp);
    triage(brain, store, phaseCase('n3', ['installation'], 20, [proxy]), rp);

    const run = triage(brain, store, phaseCase('n4', ['lateral-movement'], 30, [proxy]), rp);

    expect(run.verdict.relatedCaseIds).toEqual([]);
    expect(run.verdict.multiStage).toBe(false);
    expect(run.verdict.ignoredEntities).toEqual([
      { key: 'ip:10.1.1.1', why: 'seen in more than 2 other cases within P7D: treated as infrastructure' },
    ]);
  });

  it('treats a key the store reports as saturated as infrastructure, without any of its rows', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 } }));
    const c = phaseCase('s1', ['lateral-movement'], 0, [ip('10.1.1.1'), host('ws-fin-023.corp.contoso.example')]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);

    const verdict = brain.correlate(c, plan, [], rp, ['ip:10.1.1.1']);

    expect(verdict.relatedCaseIds).toEqual([]);
    expect(verdict.ignoredEntities).toEqual([
      { key: 'ip:10.1.1.1', why: 'seen in more than 2 other cases within P7D: treated as infrastructure' },
    ]);
  });

  it('treats an account as infrastructure when its spellings together exceed the threshold', () => {
    const directory = { domains: [{ netbios: 'CONTOSO', upnSuffixes: ['contoso.com'] }] };
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 3 }, directory }));
    const c = phaseCase('i5', ['lateral-movement'], 60, [account('CONTOSO\\svc-backup')]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const row = rowOf(c);
    // Two cases each under the NT and the UPN spelling (as stored, each alert's own): two per key, four for the account.
    const sightings = [
      row('account:contoso\\svc-backup', 'i1', ['delivery'], 10),
      row('account:contoso\\svc-backup', 'i2', ['delivery'], 20),
      row('account:svc-backup@contoso.com', 'i3', ['exploitation'], 30),
      row('account:svc-backup@contoso.com', 'i4', ['exploitation'], 40),
    ];

    const verdict = brain.correlate(c, plan, sightings, rp);

    expect(verdict.relatedCaseIds).toEqual([]);
    expect(verdict.ignoredEntities).toEqual([
      {
        key: 'account:contoso\\svc-backup',
        why: 'seen in more than 3 other cases within P7D (as account:contoso\\svc-backup and account:svc-backup@contoso.com together): treated as infrastructure',
      },
    ]);
  });

  it('treats an account as infrastructure when its UPN and object id together exceed the threshold, without a directory', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 } }));
    const c = phaseCase('j4', ['lateral-movement'], 60, [account('svc-backup@contoso.com', ['account:aad:0f1e2d3c'])]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const row = rowOf(c);
    const sightings = [
      row('account:svc-backup@contoso.com', 'j1', ['delivery'], 10),
      row('account:svc-backup@contoso.com', 'j2', ['delivery'], 20),
      row('account:aad:0f1e2d3c', 'j2', ['delivery'], 20),
      row('account:aad:0f1e2d3c', 'j3', ['exploitation'], 30),
    ];

    const verdict = brain.correlate(c, plan, sightings, rp);

    expect(verdict.relatedCaseIds).toEqual([]);
    expect(verdict.ignoredEntities.map((i) => i.key)).toEqual(['account:svc-backup@contoso.com']);
  });

  it('counts a case found under two keys of one entity once against the threshold', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 } }));
    const c = phaseCase('k3', ['lateral-movement'], 60, [account('svc-backup@contoso.com', ['account:aad:0f1e2d3c'])]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const row = rowOf(c);
    const sightings = [
      row('account:svc-backup@contoso.com', 'k1', ['delivery'], 10),
      row('account:svc-backup@contoso.com', 'k2', ['delivery'], 20),
      row('account:aad:0f1e2d3c', 'k1', ['delivery'], 10),
      row('account:aad:0f1e2d3c', 'k2', ['delivery'], 20),
    ];

    const verdict = brain.correlate(c, plan, sightings, rp);

    expect(verdict.relatedCaseIds).toEqual(['k1', 'k2']);
    expect(verdict.ignoredEntities).toEqual([]);
  });

  it('never names an entity the policy leaves out, even when one of its spellings links through another entity of the case', () => {
    // The service account's object id is listed; the same alert names the account again, by UPN, beside its NT spelling.
    const rp = resolved(contosoPolicy({ network: { ...contosoPolicy().network, nonCorrelating: ['account:aad:0f1e2d3c'] } }));
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('g1', ['delivery'], 0, [account('CONTOSO\\alice')]), rp);
    const c = phaseCase('g2', ['installation'], 60, [
      account('aad:0f1e2d3c', ['account:contoso\\alice']),
      account('alice@contoso.com', ['account:contoso\\alice']),
    ]);

    const run = triage(brain, store, c, rp);

    expect(run.verdict.relatedCaseIds).toEqual(['g1']);
    expect(run.verdict.ignoredEntities).toEqual([
      { key: 'account:aad:0f1e2d3c', why: 'policy network.nonCorrelating: account:aad:0f1e2d3c' },
    ]);
    expect(run.verdict.detail).toBe(
      'multi-stage: progression delivery (case g1) → installation (this case) on account:alice@contoso.com (cases g1)',
    );
  });

  it("reads a row's time and phases from the store's precomputed numbers when the row carries them", () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D' } }));
    const c = phaseCase('p2', ['lateral-movement'], 60);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const key = plan.keys[0] as string;
    // The strings say nothing usable: only the numbers can place the row in time and in the chain.
    const row = {
      tenantId: c.tenantId,
      entityKey: key,
      caseId: 'p1',
      detectedAt: 'unreadable',
      phases: [],
      playbook: 'p',
      severity: 'low' as const,
    };

    const verdict = brain.correlate(c, plan, [{ ...row, detectedAtMs: Date.parse(minutes(0)), phaseMask: maskOf(['delivery']) }], rp);

    expect(verdict.relatedCaseIds).toEqual(['p1']);
    expect(verdict.phases).toEqual(['delivery', 'lateral-movement']);
  });

  it('gives the same verdict whether or not the rows carry the precomputed numbers', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D' } }));
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('q1', ['delivery'], 0), rp);
    triage(brain, store, phaseCase('q2', ['exploitation', 'installation'], 10), rp);
    triage(brain, store, phaseCase('q3', ['reconnaissance'], 20_000), rp);
    const c = phaseCase('q4', ['lateral-movement'], 30);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const rows = store.rows.map((r) => ({ ...r }));
    const withNumbers = rows.map((r) => ({ ...r, detectedAtMs: Date.parse(r.detectedAt), phaseMask: maskOf(r.phases) }));

    const plain = brain.correlate(c, plan, rows, rp);
    const precomputed = brain.correlate(c, plan, withNumbers, rp);

    expect(precomputed).toEqual(plain);
    expect(plain.relatedCaseIds).toEqual(['q1', 'q2']);
  });

  it('still links through a key seen in exactly K other cases', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 } }));
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('m1', ['delivery'], 0), rp);
    triage(brain, store, phaseCase('m2', ['exploitation'], 10), rp);

    const run = triage(brain, store, phaseCase('m3', ['lateral-movement'], 30), rp);

    expect(run.verdict.relatedCaseIds).toEqual(['m1', 'm2']);
    expect(run.verdict.multiStage).toBe(true);
  });

  it("does not link cases through the tenant's non-correlating DNS server", () => {
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('d1', ['exploitation'], 0, [ip('10.0.0.53'), host('dns01.corp.contoso.example')]));

    const run = triage(brain, store, phaseCase('d2', ['lateral-movement'], 60, [ip('10.0.0.53'), host('dns01')]));

    expect(run.verdict.relatedCaseIds).toEqual([]);
    expect(run.verdict.multiStage).toBe(false);
    expect(run.verdict.ignoredEntities.map((i) => i.key)).toEqual(['ip:10.0.0.53', 'host:dns01']);
  });

  it('judges progression by detection time, not arrival: a late-arriving earlier phase completes the chain', () => {
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('later', ['lateral-movement'], 120));

    const run = triage(brain, store, phaseCase('earlier', ['exploitation'], 0));

    expect(run.verdict.multiStage).toBe(true);
    expect(run.verdict.detail).toBe(
      'multi-stage: progression exploitation (this case) → lateral-movement (case later) on host:ws-fin-023.corp.contoso.example (cases later)',
    );
    expect(run.verdict.stage).toBe('lateral-movement');
  });

  it('does not call a regression (later detection, earlier phase) a progression', () => {
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('first', ['lateral-movement'], 0));

    const run = triage(brain, store, phaseCase('second', ['delivery'], 60));

    expect(run.verdict.multiStage).toBe(false);
    expect(run.verdict.relatedCaseIds).toEqual(['first']);
    expect(run.verdict.detail).toBe('related on host:ws-fin-023.corp.contoso.example: cases first; phases delivery → lateral-movement');
  });

  it('flags an incident whose own alerts progress along the kill chain', () => {
    const c = makeCase({
      caseId: 'inc-1',
      alerts: [
        { tactics: ['CredentialAccess'], detectedAt: minutes(0) },
        { tactics: ['CommandAndControl'], detectedAt: minutes(30) },
      ],
    });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.verdict.multiStage).toBe(true);
    expect(run.verdict.detail).toBe('multi-stage within the case: phases exploitation → command-and-control');
  });

  it("lists the flagged entity's own related cases, sorted, when other entities link more cases", () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression: false } } }));
    const hostEntity = host('ws-fin-023.corp.contoso.example');
    const external = ip('203.0.113.77');
    const c = phaseCase('me', ['delivery'], 0, [hostEntity, external]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const row = rowOf(c);
    const sightings = [
      row('ip:203.0.113.77', 'z-ip-only', ['delivery'], 5),
      row('host:ws-fin-023', 'm-both', ['exploitation'], 10),
      row('ip:203.0.113.77', 'm-both', ['exploitation'], 10),
      row('host:ws-fin-023', 'b-host', ['installation'], 20),
      row('ip:203.0.113.77', 'a-ip-only', ['delivery'], 30),
    ];

    const verdict = brain.correlate(c, plan, sightings, rp);

    expect(verdict.relatedCaseIds).toEqual(['a-ip-only', 'b-host', 'm-both', 'z-ip-only']);
    expect(verdict.detail).toBe(
      'multi-stage: phases delivery → exploitation → installation on host:ws-fin-023.corp.contoso.example (cases b-host, m-both)',
    );
  });

  it("names the flagged entity's first ten related cases in sort order, then how many more, when another entity links other cases", () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression: false } } }));
    const c = phaseCase('me', ['delivery'], 0, [host('ws-fin-023.corp.contoso.example'), ip('203.0.113.77')]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const row = rowOf(c);
    // Twelve cases on the host (h-00 … h-11, rows newest first as a store returns them), two on the IP only.
    const hostRows = Array.from({ length: 12 }, (_, i) =>
      row('host:ws-fin-023', `h-${String(11 - i).padStart(2, '0')}`, [i % 2 === 0 ? 'exploitation' : 'installation'], 100 - i),
    );
    const sightings = [...hostRows, row('ip:203.0.113.77', 'a-ip', ['delivery'], 5), row('ip:203.0.113.77', 'z-ip', ['delivery'], 6)];

    const verdict = brain.correlate(c, plan, sightings, rp);

    expect(verdict.relatedCaseIds).toHaveLength(14);
    expect(verdict.detail).toBe(
      'multi-stage: phases delivery → exploitation → installation on host:ws-fin-023.corp.contoso.example ' +
        '(cases h-00, h-01, h-02, h-03, h-04, h-05, h-06, h-07, h-08, h-09, +2 more)',
    );
  });

  it("reports an infrastructure entity after the plan's ignored ones without changing the plan", () => {
    const rp = resolved(
      contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 }, network: { nonCorrelating: ['10.0.0.53'] } }),
    );
    const c = phaseCase('p1', ['lateral-movement'], 0, [ip('10.0.0.53'), ip('10.1.1.1')]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const planned = structuredClone(plan.ignored);

    const first = brain.correlate(c, plan, [], rp, ['ip:10.1.1.1']);
    const second = brain.correlate(c, plan, [], rp, ['ip:10.1.1.1']);

    expect(first.ignoredEntities.map((i) => i.key)).toEqual(['ip:10.0.0.53', 'ip:10.1.1.1']);
    expect(second.ignoredEntities).toEqual(first.ignoredEntities);
    expect(plan.ignored).toEqual(planned);
  });

  it('merges repeated rows of one case on one key, even when the rows of several keys are interleaved', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', infrastructureThreshold: 2 } }));
    const external = ip('203.0.113.77');
    const c = phaseCase('me', ['delivery'], 0, [external, ip('10.1.1.1')]);
    const plan = brain.planCorrelation(c, brain.classify(c, rp), rp);
    const row = rowOf(c);
    const sightings = [
      row('ip:203.0.113.77', 'x', ['exploitation']),
      row('ip:10.1.1.1', 'y', ['installation']),
      row('ip:203.0.113.77', 'x', ['lateral-movement']),
      row('ip:203.0.113.77', 'me', ['actions-on-objectives']),
      row('ip:203.0.113.77', 'w', ['exploitation']),
      row('ip:10.1.1.1', 'y', ['installation']),
    ];

    const verdict = brain.correlate(c, plan, sightings, rp);

    // Two related cases on the external IP (x counted once, within the threshold of 2), its phases merged.
    expect(verdict.relatedCaseIds).toEqual(['w', 'x', 'y']);
    expect(verdict.ignoredEntities).toEqual([]);
    expect(verdict.phases).toEqual(['delivery', 'exploitation', 'installation', 'lateral-movement']);
    expect(verdict.detail).toBe('multi-stage: phases delivery → exploitation → lateral-movement on ip:203.0.113.77 (cases w, x)');
  });

  it('flags three phases within one window-long span around the case, even when other related cases lie further out', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression: false } } }));
    const week = 7 * 24 * 60;
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('w1', ['reconnaissance'], -week), rp);
    triage(brain, store, phaseCase('w2', ['delivery'], -week / 2), rp);
    triage(brain, store, phaseCase('w3', ['lateral-movement'], week), rp);

    const run = triage(brain, store, phaseCase('w4', ['exploitation'], 0), rp);

    // w1…w4 span two weeks; w1, w2 and w4 lie within one, with three phases: the reason names those, not w3's.
    expect(run.verdict.multiStage).toBe(true);
    expect(run.verdict.relatedCaseIds).toEqual(['w1', 'w2', 'w3']);
    expect(run.verdict.detail).toMatch(/^multi-stage: phases reconnaissance → delivery → exploitation on /);
  });

  it('does not flag phases that only come together over more than one window', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression: false } } }));
    const week = 7 * 24 * 60;
    const store = new SimulatedStore();
    triage(brain, store, phaseCase('v1', ['reconnaissance'], -week), rp);
    triage(brain, store, phaseCase('v2', ['lateral-movement'], week), rp);

    const run = triage(brain, store, phaseCase('v3', ['exploitation'], 0), rp);

    // v1 and v2 never see each other, so no arrival order could flag v1 or v2: v3 arriving last is not flagged either.
    expect(run.verdict.multiStage).toBe(false);
    expect(run.verdict.phases).toEqual(['reconnaissance', 'exploitation', 'lateral-movement']);
  });

  it('never treats two sightings at the same instant as a progression', () => {
    const a = maskOf(['delivery']);
    const b = maskOf(['actions-on-objectives']);

    expect(isProgression(1000, a, 1000, b)).toBe(false);
    expect(isProgression(1000, a, 2000, b)).toBe(true);
    expect(isProgression(2000, a, 1000, b)).toBe(false);
  });
});

describe('order independence of the multi-stage verdict (property)', () => {
  /**
   * The verdict of a chain: (1) whether at least one of its cases was flagged
   * multi-stage when it was triaged on arrival (what triggers an escalation), and
   * (2) the set of cases flagged when each is re-evaluated after all have arrived.
   * Claim: (1) and (2) are the same for every arrival order, (1) ⇔ (2) is non-empty,
   * and both match the definition (≥ N distinct phases on the entity, or a pair
   * ordered by detectedAt whose later case has a strictly later phase).
   */
  const WINDOW_MIN = 7 * 24 * 60;
  const chain = fc.integer({ min: 2, max: 6 }).chain((n) =>
    fc.record({
      alerts: fc.array(
        fc.record({
          phases: fc.subarray([...KILL_CHAIN_PHASES], { minLength: 1, maxLength: 2 }),
          at: fc.integer({ min: 0, max: WINDOW_MIN }),
        }),
        { minLength: n, maxLength: n },
      ),
      orderA: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      orderB: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
      progression: fc.boolean(),
    }),
  );
  const policies = new Map(
    [true, false].map((p) => [
      p,
      resolved(contosoPolicy({ correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression: p } } })),
    ]),
  );

  function run(cases: ReturnType<typeof phaseCase>[], order: number[], rp: ReturnType<typeof resolved>) {
    const store = new SimulatedStore();
    const flaggedOnArrival: string[] = [];
    let last: ReturnType<typeof triage> | undefined;
    for (const i of order) {
      const c = cases[i]!;
      last = triage(brain, store, c, rp);
      if (last.verdict.multiStage) flaggedOnArrival.push(c.caseId);
    }
    const steady = cases.filter((c) => triage(brain, store, c, rp, { persist: false }).verdict.multiStage).map((c) => c.caseId);
    return { anyOnArrival: flaggedOnArrival.length > 0, steady: steady.sort(), lastPhases: last!.verdict.phases };
  }

  it('gives the same chain verdict for any arrival order within the window', () => {
    fc.assert(
      fc.property(chain, ({ alerts, orderA, orderB, progression }) => {
        const rp = policies.get(progression)!;
        const cases = alerts.map((a, i) => phaseCase(`c${i}`, a.phases, a.at));
        const union = new Set(alerts.flatMap((a) => a.phases));
        const low = (ps: readonly KillChainPhase[]) => Math.min(...ps.map((p) => KILL_CHAIN_PHASES.indexOf(p)));
        const high = (ps: readonly KillChainPhase[]) => Math.max(...ps.map((p) => KILL_CHAIN_PHASES.indexOf(p)));
        const pairProgress = alerts.some((x) => alerts.some((y) => x.at < y.at && high(y.phases) > low(x.phases)));
        const expected = union.size >= 3 || (progression && pairProgress);

        const a = run(cases, orderA, rp);
        const b = run(cases, orderB, rp);

        expect(a.anyOnArrival).toBe(expected);
        expect(b.anyOnArrival).toBe(expected);
        expect(a.steady).toEqual(b.steady);
        expect(a.steady.length > 0).toBe(expected);
        // The last case to arrive sees the whole chain on the shared host.
        expect(a.lastPhases).toEqual(KILL_CHAIN_PHASES.filter((p) => union.has(p)));
      }),
      { numRuns: 300 },
    );
  });
});
