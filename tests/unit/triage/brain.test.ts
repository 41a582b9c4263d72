import { createBrain } from '../../../shared/triage/brain';
import { indicatorSetOf } from '../../../shared/triage/indicators';
import { account, contosoPolicy, host, ip, makeCase, proc, resolved, SimulatedStore, triage } from '../../fixtures/brain/factory';

const SAMPLE_RULE_ARM_ID =
  '/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-soc-contoso/providers/Microsoft.OperationalInsights/workspaces/law-contoso-sentinel/providers/Microsoft.SecurityInsights/alertRules/5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a';

function k23(caseId: string, hostName: string, hostIp: string) {
  return makeCase({
    caseId,
    name: 'K2-3 Suspicious PowerShell command execution',
    ruleIds: ['K2-3'],
    tactics: ['Execution'],
    techniques: ['T1059.001'],
    providerSeverity: 'high',
    detectedAt: '2026-11-20T05:10:00.000Z',
    entities: [host(hostName), ip(hostIp), account('k.tanaka@contoso.example'), proc('powershell.exe -nop -w hidden -enc SQBFAFgA')],
  });
}

describe('seed rules through the brain', () => {
  const brain = createBrain();

  it('rates K2-3 command execution on a workstation critical and asks whether a user ran the command', () => {
    const c = k23('k23-fin', 'ws-fin-023.corp.contoso.example', '10.20.7.41');

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.playbook).toBe('command-execution');
    expect(run.cls.classifiedBy).toBe('policy rule K2-3 (rule id)');
    expect(run.scored.severity).toBe('critical');
    expect(run.scored.reasons[0]).toMatchObject({ rule: 'playbook:command-execution', effect: 'set', to: 'critical' });
    expect(run.scored.firstReport).toContain(
      'Did a user on ws-fin-023.corp.contoso.example run this command (powershell.exe -nop -w hidden -enc SQBFAFgA)?',
    );
    expect(run.scored.firstReport).toContain('proxy-post-out');
  });

  it('rates the same command on the maintenance terminal ws-ops-001 medium and says why', () => {
    const c = k23('k23-ops', 'ws-ops-001.corp.contoso.example', '10.20.7.42');

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.scored.severity).toBe('medium');
    expect(run.scored.reasons[0]?.detail).toContain('maintenance terminal');
    expect(run.scored.firstReport).toContain('was this planned maintenance work');
  });

  it('keeps command execution on a non-maintenance host critical when its alert also carries an IP in the maintenance CIDR', () => {
    // The model ties no IP entity to a host, so 10.20.9.3 may be a peer: it does not make ws-new-777 a maintenance terminal.
    const c = k23('k23-cidr', 'ws-new-777.corp.contoso.example', '10.20.9.3');

    expect(triage(brain, new SimulatedStore(), c).scored.severity).toBe('critical');
  });

  it('rates K4-1 brute force high, matching the rule by its name prefix', () => {
    const c = makeCase({
      caseId: 'k41',
      title: 'Multiple failed sign-ins to VPN gateway from a single external IP',
      name: 'K4-1 Brute force against VPN gateway',
      ruleIds: [SAMPLE_RULE_ARM_ID],
      tactics: ['CredentialAccess'],
      techniques: ['T1110'],
      entities: [ip('203.0.113.77'), host('vpn01.corp.contoso.example'), account('k.tanaka@contoso.example')],
    });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls).toMatchObject({ playbook: 'brute-force', ruleCode: 'K4-1', classifiedBy: 'policy rule K4-1 (name prefix)' });
    expect(run.scored.severity).toBe('high');
    expect(run.scored.firstReport).toContain('misconfiguration');
    expect(run.scored.firstReport).toContain('allowed exception');
    expect(run.scored.firstReport).toContain('203.0.113.77 (external)');
    expect(run.scored.firstReport).toMatch(/- ip-reputation:[\s\S]*- whois:/);
  });

  it('rates K1-1 unauthorised access medium and K5-1 high, from the rule entries', () => {
    const entities = [ip('203.0.113.9'), account('k.tanaka@contoso.example')];
    const k11 = makeCase({ caseId: 'k11', name: 'K1-1 Sign-in outside business hours', entities });
    const k51 = makeCase({ caseId: 'k51', name: 'K5-1 Sign-in to server from the internet', entities });

    const r11 = triage(brain, new SimulatedStore(), k11);
    const r51 = triage(brain, new SimulatedStore(), k51);

    expect(r11.cls.playbook).toBe('unauthorized-access');
    expect(r11.scored.severity).toBe('medium');
    expect(r51.scored.severity).toBe('high');
    expect(r51.scored.reasons[1]).toMatchObject({ rule: 'policy:rules.K5-1', effect: 'raise', from: 'medium', to: 'high' });
    expect(r11.scored.firstReport).toContain('Was this a maintenance login by k.tanaka@contoso.example');
    expect(r11.scored.firstReport).toContain('Source: external');
    expect(r51.scored.firstReport).toContain('dmz-inbound');
    expect(r11.scored.firstReport).not.toContain('dmz-inbound');
  });

  it('rates the K3-1 reputation hit medium and lists the blacklisted address', () => {
    const c = makeCase({
      caseId: 'fgt-2026-11-20-000981',
      name: 'Connection to known botnet C&C address',
      ruleIds: ['K3-1'],
      tactics: ['CommandAndControl'],
      detectedAt: '2026-11-20T05:10:00Z',
      entities: [ip('10.20.7.41'), ip('192.0.2.200'), host('ws-hr-007')],
    });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.playbook).toBe('reputation');
    expect(run.scored.severity).toBe('medium');
    expect(run.scored.reasons.map((r) => r.rule)).toEqual(['playbook:reputation', 'indicator-hit']);
    expect(run.scored.firstReport).toContain('Listed: ip:192.0.2.200 on policy:blacklists.ip');
    expect(run.scored.firstReport).toContain('- whois:');
  });

  it('rates K7-2 lateral movement from mailrelay-01 medium and names the DMZ management device', () => {
    const c = makeCase({
      caseId: 'k72',
      name: 'K7-2 SMB session from DMZ host to internal servers',
      tactics: ['LateralMovement'],
      techniques: ['T1021.002'],
      entities: [host('mailrelay-01.dmz.contoso.example'), ip('172.16.10.25'), ip('10.30.1.15')],
    });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.playbook).toBe('lateral-movement');
    expect(run.scored.severity).toBe('medium');
    expect(run.scored.reasons[0]?.detail).toContain('DMZ management device mailrelay-01.dmz.contoso.example');
    expect(run.scored.firstReport).toContain('DMZ management device involved: mailrelay-01.dmz.contoso.example');
    expect(run.scored.threatLevel).toBe('moderate');
  });

  it('raises a brute force from a globally listed IP no higher than its base (floor medium)', () => {
    const withIntel = createBrain({
      indicators: indicatorSetOf([{ key: 'ip:203.0.113.77', source: 'soc-global-blacklist', category: 'brute-force' }]),
    });
    const c = makeCase({ caseId: 'bf-listed', name: 'K4-1 Brute force', entities: [ip('203.0.113.77')] });

    const run = triage(withIntel, new SimulatedStore(), c);

    expect(run.scored.severity).toBe('high');
    expect(run.scored.reasons[1]).toMatchObject({ rule: 'indicator-hit', effect: 'keep', to: 'high' });
  });

  it('says the first report is late only when a clock shows the deadline has passed', () => {
    const c = k23('late', 'ws-fin-023', '10.20.7.41');
    const late = createBrain({ now: () => new Date('2026-11-20T06:00:00Z') });

    const report = triage(late, new SimulatedStore(), c).scored.firstReport;
    const onTime = triage(createBrain({ now: () => new Date('2026-11-20T05:11:00Z') }), new SimulatedStore(), c).scored.firstReport;

    expect(report).toContain('First report due by 2026-11-20T05:25:00.000Z');
    expect(report).toContain('Late: built 35 min after the first-report deadline.');
    expect(onTime).not.toContain('Late:');
  });
});

describe('multi-step attack on vpn01', () => {
  const T0 = Date.parse('2026-11-18T02:00:00Z');
  const at = (hours: number) => new Date(T0 + hours * 3_600_000).toISOString();
  const bruteForce = makeCase({
    caseId: 'case-a-bruteforce',
    name: 'K4-1 Brute force against VPN gateway',
    tactics: ['CredentialAccess'],
    techniques: ['T1110'],
    detectedAt: at(0),
    entities: [ip('203.0.113.77'), host('vpn01.corp.contoso.example')],
  });
  const c2 = makeCase({
    caseId: 'case-b-c2',
    name: 'Beaconing to rare external domain',
    tactics: ['CommandAndControl'],
    techniques: ['T1071.001'],
    detectedAt: at(2),
    // The C2 alert only knows the short host name: linked through the alt key host:vpn01.
    entities: [host('vpn01'), ip('198.18.0.9')],
  });
  const lateral = makeCase({
    caseId: 'case-c-lateral',
    name: 'K7-2 Remote service creation from vpn01',
    tactics: ['LateralMovement'],
    techniques: ['T1021'],
    detectedAt: at(5),
    entities: [host('vpn01.corp.contoso.example'), ip('10.30.1.15')],
  });

  it('escalates the third kill-chain phase on the same host to high and lists the other two cases', () => {
    const brain = createBrain();
    const store = new SimulatedStore();

    triage(brain, store, bruteForce);
    triage(brain, store, c2);
    const third = triage(brain, store, lateral);

    expect(third.verdict.multiStage).toBe(true);
    expect(third.verdict.relatedCaseIds).toEqual(['case-a-bruteforce', 'case-b-c2']);
    expect(third.verdict.phases).toEqual(['exploitation', 'command-and-control', 'lateral-movement']);
    expect(third.verdict.stage).toBe('lateral-movement');
    expect(third.scored.severity).toBe('high');
    expect(third.scored.reasons.at(-1)).toMatchObject({ rule: 'kill-chain', effect: 'raise', from: 'medium', to: 'high' });
    expect(third.scored.reasons.at(-1)?.detail).toBe(
      'multi-stage: phases exploitation → command-and-control → lateral-movement on host:vpn01.corp.contoso.example (cases case-a-bruteforce, case-b-c2) (a multi-stage attack is at least high)',
    );
  });

  it('also escalates the second case when progression is enabled (exploitation followed by command-and-control)', () => {
    const brain = createBrain();
    const store = new SimulatedStore();

    triage(brain, store, bruteForce);
    const second = triage(brain, store, c2);

    expect(second.verdict.multiStage).toBe(true);
    expect(second.verdict.detail).toBe(
      'multi-stage: progression exploitation (case case-a-bruteforce) → command-and-control (this case) on host:vpn01 (cases case-a-bruteforce)',
    );
    expect(second.scored.severity).toBe('high');
  });

  it('escalates only on the third distinct phase when progression is disabled', () => {
    const rp = resolved(contosoPolicy({ correlation: { window: 'P7D', escalateWhen: { distinctPhases: 3, progression: false } } }));
    const brain = createBrain();
    const store = new SimulatedStore();

    triage(brain, store, bruteForce, rp);
    const second = triage(brain, store, c2, rp);
    const third = triage(brain, store, lateral, rp);

    expect(second.verdict.multiStage).toBe(false);
    expect(second.scored.severity).toBe('medium');
    expect(third.verdict.multiStage).toBe(true);
  });

  it('does not link cases further apart than the window', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    const muchLater = makeCase({
      ...lateral,
      caseId: 'case-d-later',
      detectedAt: at(24 * 8),
      name: 'K7-2 Remote service creation',
      tactics: ['LateralMovement'],
      entities: [host('vpn01.corp.contoso.example')],
    });

    triage(brain, store, bruteForce);
    triage(brain, store, c2);
    const run = triage(brain, store, muchLater);

    expect(run.verdict.relatedCaseIds).toEqual([]);
    expect(run.verdict.multiStage).toBe(false);
  });
});

describe('per-policy and per-case memos', () => {
  it("judges one case under two policies alternately, each time with that policy's facts", () => {
    const brain = createBrain();
    const c = k23('k23-memo', 'ws-fin-023.corp.contoso.example', '10.20.7.41');
    const contoso = resolved();
    const opsHere = resolved(contosoPolicy({ network: { internal: ['10.0.0.0/8'], maintenanceHosts: ['ws-fin-023'] } }));
    const severity = (rp: ReturnType<typeof resolved>) => triage(brain, new SimulatedStore(), c, rp).scored.severity;

    const results = [severity(contoso), severity(opsHere), severity(contoso), severity(opsHere)];

    expect(results).toEqual(['critical', 'medium', 'critical', 'medium']);
  });

  it("takes the threat level from each policy's own scenario of that name", () => {
    const brain = createBrain();
    const c = k23('k23-scenario', 'ws-fin-023.corp.contoso.example', '10.20.7.41');
    const calm = resolved(
      contosoPolicy({
        scenarios: {
          'remote-control-of-terminal': {
            likelihood: { frequency: 'low', occurrence: 'low' },
            impact: { breadth: 'low', recovery: 'low' },
          },
        },
      }),
    );

    const builtIn = triage(brain, new SimulatedStore(), c).scored.threatLevel;
    const tenant = triage(brain, new SimulatedStore(), c, calm).scored.threatLevel;
    const builtInAgain = triage(brain, new SimulatedStore(), c).scored.threatLevel;

    expect(builtIn).toBe('high');
    expect(tenant).toBe('very-low');
    expect(builtInAgain).toBe('high');
  });
});
