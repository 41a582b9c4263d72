import fc from 'fast-check';
import { compareSeverity, type KillChainVerdict, SEVERITIES, type Severity } from '../../../shared/model/domain';
import { scoreSeverity } from '../../../shared/severity/score';
import { toSentinelSeverity } from '../../../shared/severity/sentinel';
import { createBrain } from '../../../shared/triage/brain';
import { indicatorSetOf } from '../../../shared/triage/indicators';
import { host, ip, makeCase, resolved } from '../../fixtures/brain/factory';

const quiet: KillChainVerdict = { phases: [], stage: null, relatedCaseIds: [], multiStage: false, ignoredEntities: [] };
const multi: KillChainVerdict = { ...quiet, phases: ['exploitation', 'lateral-movement'], multiStage: true, detail: 'multi-stage: test' };

describe('severity steps', () => {
  it('records the base as a set step', () => {
    const out = scoreSeverity({
      playbook: 'brute-force',
      base: { severity: 'high', detail: 'brute force' },
      indicatorHits: [],
      evidence: [],
      verdict: quiet,
    });

    expect(out).toEqual({
      severity: 'high',
      reasons: [{ rule: 'playbook:brute-force', effect: 'set', to: 'high', detail: 'brute force' }],
    });
  });

  it("lets the tenant's rule entry lower as well as raise, recording from and to", () => {
    const out = scoreSeverity({
      playbook: 'command-execution',
      base: { severity: 'critical', detail: 'x' },
      rule: { code: 'K2-9', severity: 'low' },
      indicatorHits: [],
      evidence: [],
      verdict: quiet,
    });

    expect(out.severity).toBe('low');
    expect(out.reasons[1]).toEqual({
      rule: 'policy:rules.K2-9',
      effect: 'lower',
      from: 'critical',
      to: 'low',
      detail: "the tenant's runbook sets rule K2-9 to low",
    });
  });

  it('raises to at least medium on an indicator hit, including one found by enrichment', () => {
    const fromList = scoreSeverity({
      playbook: 'generic',
      base: { severity: 'low', detail: 'x' },
      indicatorHits: [{ key: 'ip:192.0.2.200', source: 'soc-global-blacklist', category: 'botnet-c2' }],
      evidence: [],
      verdict: quiet,
    });
    const fromEvidence = scoreSeverity({
      playbook: 'generic',
      base: { severity: 'informational', detail: 'x' },
      indicatorHits: [],
      evidence: [{ source: 'threat-intel', finding: 'ip:198.18.0.9 listed by TI feed', status: 'found' }],
      verdict: quiet,
    });

    expect(fromList.reasons[1]).toMatchObject({ rule: 'indicator-hit', effect: 'raise', from: 'low', to: 'medium' });
    expect(fromList.reasons[1]?.detail).toContain('ip:192.0.2.200 on soc-global-blacklist (botnet-c2)');
    expect(fromEvidence.severity).toBe('medium');
  });

  it('ignores evidence that is not an indicator finding', () => {
    const out = scoreSeverity({
      playbook: 'generic',
      base: { severity: 'low', detail: 'x' },
      indicatorHits: [],
      evidence: [
        { source: 'threat-intel', finding: 'not listed', status: 'clear' },
        { source: 'CommonSecurityLog', finding: '12 POSTs out', status: 'found' },
      ],
      verdict: quiet,
    });

    expect(out.severity).toBe('low');
  });

  it('raises a multi-stage case to at least high, whatever its own level, and never lowers one', () => {
    const at = (severity: Severity) =>
      scoreSeverity({ playbook: 'x', base: { severity, detail: 'x' }, indicatorHits: [], evidence: [], verdict: multi });

    const out = SEVERITIES.map((s) => [s, at(s).severity]);

    expect(out).toEqual([
      ['informational', 'high'],
      ['low', 'high'],
      ['medium', 'high'],
      ['high', 'high'],
      ['critical', 'critical'],
    ]);
    expect(at('medium').reasons[1]).toEqual({
      rule: 'kill-chain',
      effect: 'raise',
      from: 'medium',
      to: 'high',
      detail: 'multi-stage: test (a multi-stage attack is at least high)',
    });
    expect(at('critical').reasons[1]).toEqual({
      rule: 'kill-chain',
      effect: 'keep',
      from: 'critical',
      to: 'critical',
      detail: 'multi-stage: test (a multi-stage attack is at least high; already critical)',
    });
  });
});

describe('Sentinel severity for write-back', () => {
  it.each([
    ['informational', 'Informational', []],
    ['low', 'Low', []],
    ['medium', 'Medium', []],
    ['high', 'High', []],
    ['critical', 'High', ['triage:critical']],
  ] as const)('maps %s to %s', (sev, sentinel, tags) => {
    expect(toSentinelSeverity(sev)).toEqual({ severity: sentinel, tags });
  });
});

describe('indicator hits never lower severity (property)', () => {
  const LISTED = '203.0.113.250';
  const plain = createBrain();
  const listed = createBrain({ indicators: indicatorSetOf([{ key: `ip:${LISTED}`, source: 'soc-global-blacklist' }]) });
  const rp = resolved();
  const NAMES = [
    'K1-1 Sign-in',
    'K5-1 Sign-in',
    'K4-1 Brute force',
    'K2-3 PowerShell',
    'K3-1 Known bad',
    'Unrecognised alert',
    'Beaconing',
    'Password spray',
  ];
  const TACTICS = ['Execution', 'CredentialAccess', 'LateralMovement', 'CommandAndControl', 'InitialAccess', 'Impact', 'Discovery'];
  const TECHNIQUES = ['T1059.001', 'T1110', 'T1021', 'T1071', 'T1078', 'T1190', 'T1486'];
  const HOSTS = ['ws-fin-023', 'ws-ops-001', 'mailrelay-01', 'vpn01'];

  it('scores a case at least as high when one of its entities is known-bad', () => {
    fc.assert(
      fc.property(
        fc.record({
          name: fc.constantFrom(...NAMES),
          tactics: fc.subarray(TACTICS),
          techniques: fc.subarray(TECHNIQUES),
          providerSeverity: fc.constantFrom(...SEVERITIES),
          hostName: fc.constantFrom(...HOSTS),
          multiStage: fc.boolean(),
        }),
        (s) => {
          const c = makeCase({
            caseId: 'prop',
            name: s.name,
            tactics: s.tactics,
            techniques: s.techniques,
            providerSeverity: s.providerSeverity,
            entities: [host(s.hostName), ip(LISTED)],
          });
          const verdict = s.multiStage ? multi : quiet;
          const sev = (b: typeof plain): Severity => b.score(c, b.classify(c, rp), verdict, [], rp).severity;

          expect(compareSeverity(sev(listed), sev(plain))).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 400 },
    );
  });
});
