import { createBrain } from '../../../shared/triage/brain';
import { checkPolicy } from '../../../shared/triage/checkPolicy';
import { indicatorSetOf } from '../../../shared/triage/indicators';
import { contosoPolicy, domain, host, ip, makeCase, resolved, SimulatedStore, triage } from '../../fixtures/brain/factory';

const brain = createBrain();
const rp = resolved();

describe('classification', () => {
  it('matches a policy rule by exact rule id, case-insensitively', () => {
    const c = makeCase({ caseId: 'a', name: 'Something', ruleIds: ['k4-1'] });

    expect(brain.classify(c, rp)).toMatchObject({ playbook: 'brute-force', ruleCode: 'K4-1', classifiedBy: 'policy rule K4-1 (rule id)' });
  });

  it('matches a policy rule keyed by analytic rule GUID against the ARM id of the rule', () => {
    const guid = '5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a';
    const policy = resolved(contosoPolicy({ rules: { [guid]: { playbook: 'lateral-movement', severity: 'high' } } }));
    const c = makeCase({
      caseId: 'b',
      name: 'x',
      ruleIds: [`/subscriptions/s/providers/Microsoft.SecurityInsights/alertRules/${guid.toUpperCase()}`],
    });

    expect(brain.classify(c, policy)).toMatchObject({ playbook: 'lateral-movement', ruleCode: guid, ruleSeverity: 'high' });
  });

  it('matches a code prefix of the alert name, skipping a leading bracket', () => {
    const c = makeCase({ caseId: 'c', name: '[K7-2] SMB from DMZ' });

    expect(brain.classify(c, rp).classifiedBy).toBe('policy rule K7-2 (name prefix)');
  });

  it('does not let K1-1 match a rule named "K1-10 …"', () => {
    const c = makeCase({ caseId: 'd', name: 'K1-10 Sign-in from an unusual location' });

    expect(brain.classify(c, rp)).toMatchObject({
      playbook: 'unauthorized-access',
      classifiedBy: 'rule name "K1-10 Sign-in from an unusual location" (unauthorized-access)',
    });
    expect(brain.classify(c, rp).ruleCode).toBeUndefined();
  });

  it('picks the most severe policy rule when an incident merges K1-1 and K5-1 alerts', () => {
    const c = makeCase({ caseId: 'e', alerts: [{ name: 'K1-1 Sign-in at night' }, { name: 'K5-1 Sign-in from the internet' }] });

    expect(brain.classify(c, rp)).toMatchObject({ ruleCode: 'K5-1', ruleSeverity: 'high' });
  });

  it('rates an incident merging K2-3 on the maintenance terminal (medium) with K5-1 (high) high, by K5-1', () => {
    const onOps = [host('ws-ops-001.corp.contoso.example')];
    const c = makeCase({
      caseId: 'e2',
      alerts: [
        { name: 'K2-3 Suspicious PowerShell command line', entities: onOps },
        { name: 'K5-1 Sign-in from the DMZ', entities: onOps },
      ],
    });

    const run = triage(brain, new SimulatedStore(), c, rp);

    // Before: K2-3 won on its playbook's nominal level (critical), which is medium on a maintenance terminal.
    expect(run.cls).toMatchObject({ playbook: 'unauthorized-access', ruleCode: 'K5-1' });
    expect(run.scored.severity).toBe('high');
  });

  it('still picks K2-3 over K5-1 when the command ran on an ordinary workstation (critical)', () => {
    const onWorkstation = [host('ws-fin-023.corp.contoso.example')];
    const c = makeCase({
      caseId: 'e3',
      alerts: [
        { name: 'K5-1 Sign-in from the DMZ', entities: onWorkstation },
        { name: 'K2-3 Suspicious PowerShell command line', entities: onWorkstation },
      ],
    });

    expect(triage(brain, new SimulatedStore(), c, rp).scored.severity).toBe('critical');
  });

  it('falls back to generic, and says so, when a policy rule names an unknown playbook', () => {
    const policy = resolved(contosoPolicy({ rules: { 'K9-9': { playbook: 'brute-forse' } } }));
    const c = makeCase({ caseId: 'f', name: 'K9-9 Something', tactics: ['Execution'] });

    expect(brain.classify(c, policy)).toMatchObject({
      playbook: 'generic',
      classifiedBy: 'policy rule K9-9 (name prefix) names unknown playbook "brute-forse": generic used',
    });
    expect(checkPolicy(policy.policy)).toEqual([
      { path: '$.rules["K9-9"].playbook', reason: expect.stringContaining('unknown playbook "brute-forse"') },
    ]);
  });

  it.each([
    ['Password spray against Entra ID', 'brute-force'],
    ['Successful sign-in after multiple failed sign-ins', 'unauthorized-access'],
    ['Multiple failed logons on a server', 'brute-force'],
    ['Encoded PowerShell command line', 'command-execution'],
    ['Possible pass-the-hash from workstation', 'lateral-movement'],
    ['TI map IP entity to CommonSecurityLog', 'reputation'],
    ['Connection to known botnet C&C address', 'reputation'],
    ['Periodic beaconing to rare domain', 'suspicious-communication'],
  ])('recognises the rule name "%s" as %s', (name, playbook) => {
    const c = makeCase({ caseId: 'n', name });

    expect(brain.classify(c, rp).playbook).toBe(playbook);
  });

  it('recognises a sub-technique by its parent technique', () => {
    const c = makeCase({ caseId: 'g', name: 'Defender alert', techniques: ['T1059.001'], tactics: ['LateralMovement'] });

    expect(brain.classify(c, rp)).toMatchObject({ playbook: 'command-execution', classifiedBy: 'technique T1059.001 (command-execution)' });
  });

  it('prefers the higher-priority playbook when techniques disagree, whatever their order', () => {
    const a = makeCase({ caseId: 'h1', name: 'x', techniques: ['T1078', 'T1110'] });
    const b = makeCase({ caseId: 'h2', name: 'x', techniques: ['T1110', 'T1078'] });

    expect(brain.classify(a, rp).playbook).toBe('brute-force');
    expect(brain.classify(b, rp).playbook).toBe('brute-force');
  });

  it.each([
    ['techniques', { techniques: ['T1059.001'] }, { techniques: ['T1110'] }],
    ['tactics', { tactics: ['Execution'] }, { tactics: ['CredentialAccess'] }],
    ['rule names', { name: 'Encoded PowerShell command line' }, { name: 'Password spray against the VPN' }],
  ])(
    'rates command execution on a maintenance terminal merged with a brute force high, as the brute force (%s)',
    (_how, command, bruteForce) => {
      const onOps = [host('ws-ops-001.corp.contoso.example')];
      const c = makeCase({
        caseId: 'h3',
        title: 'Incident',
        alerts: [
          { ...command, entities: onOps },
          { ...bruteForce, entities: onOps },
        ],
      });

      const run = triage(brain, new SimulatedStore(), c, rp);

      expect(run.cls.playbook).toBe('brute-force');
      expect(run.scored.severity).toBe('high');
    },
  );

  it('keeps command execution first when it is critical, whatever else the incident holds', () => {
    const onWorkstation = [host('ws-fin-023.corp.contoso.example')];
    const c = makeCase({ caseId: 'h4', name: 'x', techniques: ['T1110', 'T1059'], entities: onWorkstation });

    expect(brain.classify(c, rp)).toMatchObject({ playbook: 'command-execution', classifiedBy: 'technique T1059 (command-execution)' });
  });

  it('uses tactics when nothing more specific matches', () => {
    const c = makeCase({ caseId: 'i', name: 'Vendor alert', tactics: ['InitialAccess'] });

    expect(brain.classify(c, rp)).toMatchObject({
      playbook: 'unauthorized-access',
      classifiedBy: 'tactic InitialAccess (unauthorized-access)',
    });
  });

  it("classifies as reputation when an entity is on the tenant's or the global list", () => {
    const tenantListed = makeCase({ caseId: 'j1', name: 'Vendor alert', entities: [domain('login.evil.example')] });
    const globallyListed = makeCase({ caseId: 'j2', name: 'Vendor alert', entities: [ip('198.18.0.77')] });
    const withIntel = createBrain({ indicators: indicatorSetOf([{ key: 'ip:198.18.0.77', source: 'soc-global-blacklist' }]) });

    expect(brain.classify(tenantListed, rp)).toMatchObject({
      playbook: 'reputation',
      classifiedBy: 'indicator hit domain:login.evil.example (policy:blacklists.domain)',
    });
    expect(brain.classify(globallyListed, rp).playbook).toBe('generic');
    expect(withIntel.classify(globallyListed, rp).classifiedBy).toBe('indicator hit ip:198.18.0.77 (soc-global-blacklist)');
  });

  it('falls back to generic with the provider severity', () => {
    const c = makeCase({ caseId: 'k', name: 'Vendor alert', providerSeverity: 'low', entities: [host('ws-fin-023')] });

    const cls = brain.classify(c, rp);
    const scored = brain.score(c, cls, { phases: [], stage: null, relatedCaseIds: [], multiStage: false, ignoredEntities: [] }, [], rp);

    expect(cls).toEqual({ playbook: 'generic', classifiedBy: 'fallback', via: 'fallback' });
    expect(scored.severity).toBe('low');
    expect(scored.threatLevel).toBeUndefined();
  });

  it('takes the NIST scenario from the rule entry when it names one', () => {
    const policy = resolved(
      contosoPolicy({ rules: { 'K8-1': { playbook: 'suspicious-communication', scenario: 'confidential-data-exfiltration' } } }),
    );
    const c = makeCase({ caseId: 'l', name: 'K8-1 Large upload' });

    expect(brain.classify(c, policy).scenario).toBe('confidential-data-exfiltration');
    expect(brain.classify(makeCase({ caseId: 'm', name: 'Beaconing' }), policy).scenario).toBe('c2-communication');
  });
});

describe('command-and-control rule names', () => {
  const c2Case = (caseId: string, name: string, extra: { tactics?: string[]; techniques?: string[] } = {}) =>
    makeCase({ caseId, name, ...extra, entities: [host('ws-fin-023'), ip('203.0.113.9')] });

  it('classifies "Suspicious command and control traffic" as suspicious communication, medium, not command execution', () => {
    const c = c2Case('c2-susp-cmd', 'Suspicious command and control traffic');

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls).toMatchObject({
      playbook: 'suspicious-communication',
      classifiedBy: 'rule name "Suspicious command and control traffic" (suspicious-communication)',
    });
    expect(run.scored.severity).toBe('medium');
  });

  it('classifies "Suspicious command and control traffic" with T1071 as suspicious communication, medium', () => {
    const c = c2Case('c2-t1071', 'Suspicious command and control traffic', { tactics: ['CommandAndControl'], techniques: ['T1071'] });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.playbook).toBe('suspicious-communication');
    expect(run.scored.severity).toBe('medium');
  });

  it('classifies "Connection to known malicious command-and-control server" as a reputation hit, medium', () => {
    const c = c2Case('rep-mal-cmd', 'Connection to known malicious command-and-control server');

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls).toMatchObject({
      playbook: 'reputation',
      classifiedBy: 'rule name "Connection to known malicious command-and-control server" (reputation)',
    });
    expect(run.scored.severity).toBe('medium');
  });

  it.each([
    ['Suspicious Command & Control beacon', 'suspicious-communication'],
    ['Malicious command/control channel to rare host', 'suspicious-communication'],
    ['Attack command and control server contacted', 'suspicious-communication'],
    ['Outbound command-and-control channel', 'suspicious-communication'],
    ['Suspicious command line with encoded payload', 'command-execution'],
    ['Malicious command executed by Office macro', 'command-execution'],
    ['Attack commands run on a server', 'command-execution'],
  ])('reads "command" in "%s" as %s', (name, playbook) => {
    const c = makeCase({ caseId: 'cc', name });

    expect(brain.classify(c, rp).playbook).toBe(playbook);
  });
});

describe('policy check', () => {
  it('reports unknown scenarios and kill-chain overrides naming no phase', () => {
    const policy = contosoPolicy({
      rules: { 'K8-1': { playbook: 'reputation', scenario: 'nope' } },
      killChain: { tactics: { Discovery: 'recon' }, techniques: {} },
    });

    expect(checkPolicy(policy)).toEqual([
      { path: '$.rules["K8-1"].scenario', reason: 'unknown scenario "nope"' },
      { path: '$.killChain.tactics.Discovery', reason: '"recon" is not a kill-chain phase' },
    ]);
  });

  it('finds nothing wrong with the Contoso policy', () => {
    expect(checkPolicy(contosoPolicy())).toEqual([]);
  });
});
