import {
  alertPhaseMask,
  casePhases,
  compileKillChain,
  highestPhase,
  lowestPhase,
  maskOf,
  phaseCount,
  phasesOfMask,
} from '../../../shared/correlation/killchain';
import { KILL_CHAIN_PHASES, type KillChainPhase } from '../../../shared/model/domain';
import { makeCase } from '../../fixtures/brain/factory';

const defaults = compileKillChain();
const phasesOf = (a: { tactics?: string[]; techniques?: string[] }, m = defaults) =>
  phasesOfMask(alertPhaseMask({ tactics: a.tactics ?? [], techniques: a.techniques ?? [] }, m));

describe('kill-chain mapping', () => {
  it.each([
    ['Reconnaissance', 'reconnaissance'],
    ['ResourceDevelopment', 'weaponization'],
    ['InitialAccess', 'delivery'],
    ['CredentialAccess', 'exploitation'],
    ['Execution', 'installation'],
    ['Persistence', 'installation'],
    ['PrivilegeEscalation', 'installation'],
    ['DefenseEvasion', 'installation'],
    ['CommandAndControl', 'command-and-control'],
    ['Discovery', 'command-and-control'],
    ['Collection', 'command-and-control'],
    ['LateralMovement', 'lateral-movement'],
    ['Exfiltration', 'actions-on-objectives'],
    ['Impact', 'actions-on-objectives'],
  ])('maps the tactic %s to %s', (tactic, phase) => {
    expect(phasesOf({ tactics: [tactic] })).toEqual([phase]);
  });

  it('accepts tactic spellings other than PascalCase', () => {
    expect(phasesOf({ tactics: ['credential-access', 'Lateral Movement'] })).toEqual(['exploitation', 'lateral-movement']);
  });

  it('lets a technique override replace the tactic phases (T1190 is exploitation, not delivery)', () => {
    expect(phasesOf({ tactics: ['InitialAccess'], techniques: ['T1190'] })).toEqual(['exploitation']);
  });

  it('applies a parent technique override to its sub-techniques', () => {
    expect(phasesOf({ tactics: ['InitialAccess'], techniques: ['T1566.001'] })).toEqual(['delivery']);
    expect(phasesOf({ tactics: ['Persistence'], techniques: ['t1078.004'] })).toEqual(['exploitation']);
  });

  it('uses the tactics when no technique has an override', () => {
    expect(phasesOf({ tactics: ['Execution'], techniques: ['T1059.001'] })).toEqual(['installation']);
  });

  it('applies tenant overrides for tactics and techniques and reports invalid phases', () => {
    const m = compileKillChain({
      tactics: { Discovery: 'reconnaissance' },
      techniques: { 'T1059.001': 'command-and-control', T1003: 'nonsense' },
    });

    expect(phasesOf({ tactics: ['Discovery'] }, m)).toEqual(['reconnaissance']);
    expect(phasesOf({ tactics: ['Execution'], techniques: ['T1059.001'] }, m)).toEqual(['command-and-control']);
    expect(phasesOf({ tactics: ['Execution'], techniques: ['T1059.003'] }, m)).toEqual(['installation']);
    expect(m.invalid).toEqual([{ path: '$.killChain.techniques.T1003', value: 'nonsense' }]);
  });

  it('remembers spellings per mapping: a spelling resolved under one mapping keeps its meaning under another', () => {
    const tenant = compileKillChain({ tactics: { Discovery: 'reconnaissance' }, techniques: { T1021: 'delivery' } });
    const alert = { tactics: ['Discovery', 'discovery'], techniques: [] };
    const moved = { tactics: ['LateralMovement'], techniques: ['T1021.001'] };

    const first = [phasesOf(alert), phasesOf(moved)];
    const second = [phasesOf(alert, tenant), phasesOf(moved, tenant)];
    const again = [phasesOf(alert), phasesOf(moved)];

    expect(first).toEqual([['command-and-control'], ['lateral-movement']]);
    expect(second).toEqual([['reconnaissance'], ['delivery']]);
    expect(again).toEqual(first);
  });

  it('ignores phase names it does not know in a mask', () => {
    expect(maskOf(['exploitation', 'installation', 'Exploitation', 'bogus', ''] as unknown as KillChainPhase[])).toBe(
      maskOf(['exploitation', 'installation']),
    );
    expect(phasesOfMask(maskOf([...KILL_CHAIN_PHASES]))).toEqual([...KILL_CHAIN_PHASES]);
  });

  it("uses the playbook's implied phases only when no alert yields a phase", () => {
    const bare = makeCase({ caseId: 'x', name: 'firewall relay alert' });
    const tagged = makeCase({ caseId: 'y', name: 'tagged', tactics: ['Impact'] });

    expect(casePhases(bare, defaults, ['lateral-movement'])).toEqual(['lateral-movement']);
    expect(casePhases(tagged, defaults, ['lateral-movement'])).toEqual(['actions-on-objectives']);
  });

  it('unions the phases of all alerts of an incident in kill-chain order', () => {
    const c = makeCase({ caseId: 'inc', alerts: [{ tactics: ['LateralMovement'] }, { tactics: ['CredentialAccess'] }] });

    expect(casePhases(c, defaults)).toEqual(['exploitation', 'lateral-movement']);
  });

  it('computes mask helpers consistently with the phase order', () => {
    const m = maskOf(['delivery', 'lateral-movement', 'installation']);

    expect(phaseCount(m)).toBe(3);
    expect(KILL_CHAIN_PHASES[lowestPhase(m)]).toBe('delivery');
    expect(KILL_CHAIN_PHASES[highestPhase(m)]).toBe('lateral-movement');
    expect(lowestPhase(0)).toBe(-1);
  });

  it('gives every case its own phases from the shared arrays, and none can be changed through a case', () => {
    const delivery = makeCase({ caseId: 'd', name: 'x', tactics: ['InitialAccess'] });
    const lateral = makeCase({ caseId: 'l', name: 'x', tactics: ['LateralMovement', 'InitialAccess'] });

    const first = casePhases(delivery, defaults);
    const other = casePhases(lateral, defaults);
    const again = casePhases(delivery, defaults);

    expect(first).toEqual(['delivery']);
    expect(other).toEqual(['delivery', 'lateral-movement']);
    expect(again).toEqual(['delivery']);
    expect(() => (first as KillChainPhase[]).push('installation')).toThrow(TypeError);
    expect(casePhases(delivery, defaults)).toEqual(['delivery']);
  });
});
