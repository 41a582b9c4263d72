import type { Entity } from '../../../shared/model/domain';
import { createBrain } from '../../../shared/triage/brain';
import { compilePolicy } from '../../../shared/triage/compiled';
import { computeFacts } from '../../../shared/triage/facts';
import { contosoPolicy, host, ip, makeCase, proc, SimulatedStore, triage } from '../../fixtures/brain/factory';

// Contoso maintenance terminals: ws-ops-001, ws-ops-002 and 10.20.9.0/28.
const brain = createBrain();

function k23(caseId: string, entities: Entity[]) {
  return makeCase({
    caseId,
    name: 'K2-3 attack tool',
    ruleIds: ['K2-3'],
    detectedAt: '2026-11-20T05:10:00.000Z',
    entities: [...entities, proc('powershell.exe -nop -w hidden -enc SQBFAFgA')],
  });
}

function run(caseId: string, entities: Entity[]) {
  return triage(brain, new SimulatedStore(), k23(caseId, entities)).scored;
}

describe('command execution and maintenance terminals', () => {
  it('keeps command execution on a non-maintenance host critical when another IP is in the maintenance range', () => {
    // sa-cmd-peer-maint-ip: the process ran on ws-fin-023; 10.20.9.5 is some other address of the alert.
    const scored = run('peer-ip', [host('ws-fin-023.corp.contoso.example'), ip('10.20.5.23'), ip('10.20.9.5')]);

    expect(scored.severity).toBe('critical');
    expect(scored.reasons[0]?.detail).toBe(
      'command execution on ws-fin-023.corp.contoso.example, not a maintenance terminal: critical per the runbook',
    );
    expect(scored.firstReport).not.toContain('registered as a maintenance terminal');
  });

  it('keeps command execution critical without a host entity when only some of its IPs are maintenance terminals', () => {
    const scored = run('ips-mixed', [ip('10.20.5.23'), ip('10.20.9.5')]);

    expect(scored.severity).toBe('critical');
    expect(scored.reasons[0]?.detail).toBe(
      'command execution, no host entity: 10.20.5.23 is not a maintenance terminal (10.20.9.5 is in network.maintenanceHosts, but without a host entity every address must be): critical per the runbook',
    );
  });

  it('rates command execution medium without a host entity when every IP is in the maintenance range', () => {
    const scored = run('ips-all-maint', [ip('10.20.9.5'), ip('10.20.9.15')]);

    expect(scored.severity).toBe('medium');
    expect(scored.firstReport).toContain('10.20.9.5, 10.20.9.15 are registered as maintenance terminals');
  });

  it('rates command execution medium on a host named by an address inside the maintenance CIDR', () => {
    const scored = run('host-named-by-ip', [host('10.20.9.3')]);

    expect(scored.severity).toBe('medium');
    expect(scored.reasons[0]?.detail).toContain('command execution on a maintenance terminal (10.20.9.3;');
  });

  it('names the host that is not a maintenance terminal, not merely the first host, when two hosts are involved', () => {
    // cmd-two-hosts-one-maint: ws-ops-001 is a maintenance terminal, ws-fin-023 is not.
    const scored = run('two-hosts', [host('ws-ops-001'), host('ws-fin-023')]);

    expect(scored.severity).toBe('critical');
    expect(scored.reasons[0]?.detail).toBe(
      'command execution on ws-fin-023, not a maintenance terminal (ws-ops-001 is one, but every host involved must be): critical per the runbook',
    );
    expect(scored.firstReport).toContain('Did a user on ws-ops-001 or ws-fin-023 run this command');
  });

  it('names every host that is not a maintenance terminal', () => {
    const scored = run('two-plain-hosts', [host('ws-fin-023'), host('ws-hr-007')]);

    expect(scored.reasons[0]?.detail).toBe(
      'command execution on ws-fin-023, ws-hr-007, not maintenance terminals: critical per the runbook',
    );
  });

  it('rates command execution medium when every host is a maintenance terminal, naming them all', () => {
    const scored = run('two-maint-hosts', [host('ws-ops-001'), host('ws-ops-002'), ip('10.20.5.23')]);

    expect(scored.severity).toBe('medium');
    expect(scored.reasons[0]?.detail).toBe(
      'command execution on a maintenance terminal (ws-ops-001, ws-ops-002; policy network.maintenanceHosts): medium per the runbook',
    );
  });

  it('keeps command execution critical, and says why, when the alert names no host or IP', () => {
    const scored = run('no-subject', []);

    expect(scored.severity).toBe('critical');
    expect(scored.reasons[0]?.detail).toBe(
      'command execution with no host or IP entity in the alert, so not shown to be on a maintenance terminal: critical per the runbook',
    );
  });

  it('lists the failing and the matching subjects in the facts, hosts before any IP', () => {
    const p = compilePolicy(contosoPolicy());

    const facts = computeFacts(k23('facts', [host('ws-ops-001'), host('ws-fin-023'), ip('10.20.9.5')]), p, undefined);

    expect(facts).toMatchObject({
      maintenanceTerminal: false,
      maintenanceMatches: ['ws-ops-001'],
      nonMaintenanceSubjects: ['ws-fin-023'],
    });
  });
});
