import { createBrain } from '../../../shared/triage/brain';
import { ip, makeCase, SimulatedStore, triage } from '../../fixtures/brain/factory';

// Contoso blacklists 198.51.100.0/24; 203.0.113.21 is on no list.
const brain = createBrain();

describe('reputation hit severity', () => {
  it('rates a reputation hit recognised by its rule name "TI map IP entity to CommonSecurityLog" medium even when the provider says high', () => {
    const c = makeCase({
      caseId: 'rep-name-high',
      name: 'TI map IP entity to CommonSecurityLog',
      providerSeverity: 'high',
      entities: [ip('203.0.113.21')],
    });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.playbook).toBe('reputation');
    expect(run.cls.ruleCode).toBeUndefined();
    expect(run.scored.severity).toBe('medium');
    expect(run.scored.reasons[0]).toMatchObject({
      rule: 'playbook:reputation',
      to: 'medium',
      detail: 'reputation hit: medium per the runbook',
    });
  });

  it("keeps the provider's high level for a reputation hit chosen only because an entity is listed", () => {
    const c = makeCase({ caseId: 'rep-ind-high', name: 'Outbound connection', providerSeverity: 'high', entities: [ip('198.51.100.99')] });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.classifiedBy).toBe('indicator hit ip:198.51.100.99 (policy:blacklists.ip)');
    expect(run.scored.severity).toBe('high');
    expect(run.scored.reasons[0]?.detail).toBe(
      'reputation hit chosen by an indicator hit alone: medium per the runbook, but the provider rated it high and no rule entry or rule name pins it',
    );
  });

  it('rates a listed entity under a reputation rule name medium: the name, not the listing, chose the playbook', () => {
    const c = makeCase({
      caseId: 'rep-name-listed',
      name: 'Threat intelligence match',
      providerSeverity: 'critical',
      entities: [ip('198.51.100.99')],
    });

    const run = triage(brain, new SimulatedStore(), c);

    expect(run.cls.classifiedBy).toBe('rule name "Threat intelligence match" (reputation)');
    expect(run.scored.severity).toBe('medium');
  });
});
