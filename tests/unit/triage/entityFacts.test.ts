import type { Entity } from '../../../shared/model/domain';
import { compilePolicy } from '../../../shared/triage/compiled';
import { computeFacts } from '../../../shared/triage/facts';
import { contosoPolicy, host, ip, makeCase } from '../../fixtures/brain/factory';

// Contoso maintenance terminals: ws-ops-001, ws-ops-002 and 10.20.9.0/28.
const contoso = compilePolicy(contosoPolicy());
const elsewhere = compilePolicy(contosoPolicy({ network: { internal: ['10.0.0.0/8'], maintenanceHosts: ['ws-fin-023'] } }));

function factsOfEntity(e: Entity, policy = contoso) {
  const facts = computeFacts(makeCase({ caseId: `c-${e.key}`, name: 'activity', entities: [e] }), policy, undefined);
  return facts.entities[0];
}

describe('entity facts remembered per policy', () => {
  it('gives each policy its own answer for the same address, asked alternately', () => {
    const address = ip('10.20.9.5');

    const answers = [factsOfEntity(address), factsOfEntity(address, elsewhere), factsOfEntity(address), factsOfEntity(address, elsewhere)];

    expect(answers.map((f) => f?.maintenance)).toEqual([true, false, true, false]);
  });

  it('gives each policy its own answer for the same host name, asked alternately', () => {
    const workstation = host('ws-fin-023.corp.contoso.example');

    const answers = [factsOfEntity(workstation), factsOfEntity(workstation, elsewhere), factsOfEntity(workstation)];

    expect(answers.map((f) => f?.maintenance)).toEqual([false, true, false]);
  });

  it('works a host out afresh when the same key comes with other alt keys', () => {
    const device = (altKeys: string[]): Entity => ({ kind: 'host', key: 'host:mde:4f2a9c', altKeys, label: 'mde:4f2a9c', fields: {} });

    const named = factsOfEntity(device(['host:ws-ops-001']));
    const unnamed = factsOfEntity(device([]));
    const namedAgain = factsOfEntity(device(['host:ws-ops-001']));

    expect([named?.maintenance, unnamed?.maintenance, namedAgain?.maintenance]).toEqual([true, false, true]);
  });

  it('keeps the entity of each case in its facts, not the one first seen with that key', () => {
    const first = ip('203.0.113.77');
    const second = { ...ip('203.0.113.77'), label: '203.0.113.77 (second spelling)' };

    factsOfEntity(first);
    const facts = factsOfEntity(second);

    expect(facts?.entity).toBe(second);
    expect(facts?.value).toBe('203.0.113.77');
    expect(facts?.scope).toBe('external');
  });
});
