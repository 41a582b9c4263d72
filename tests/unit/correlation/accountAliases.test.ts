import {
  accountAliasKeys,
  buildCorrelationPlan,
  compileAccountDirectory,
  compileCorrelationSettings,
  withAccountAliases,
} from '../../../shared/correlation/plan';
import type { Entity } from '../../../shared/model/domain';
import { createBrain } from '../../../shared/triage/brain';
import { account, contosoPolicy, host, ip, makeCase, resolved, SimulatedStore, triage } from '../../fixtures/brain/factory';

/** The Contoso policy with a directory: CONTOSO has two UPN suffixes, FABRIKAM one. */
const DIRECTORY = {
  domains: [
    { netbios: 'CONTOSO', upnSuffixes: ['contoso.com', 'Contoso.OnMicrosoft.com'] },
    { netbios: 'fabrikam', upnSuffixes: ['fabrikam.example'] },
  ],
};
const withDirectory = contosoPolicy({ directory: DIRECTORY });
const dir = compileAccountDirectory(withDirectory.directory);

function aliases(e: Entity): string[] {
  if (dir === undefined) throw new Error('the test directory compiled to nothing');
  return accountAliasKeys(e, dir);
}

describe('account aliases from the tenant directory', () => {
  it('gives an account known only as DOMAIN\\name a UPN key for every suffix of its domain, whatever the case', () => {
    const nt = account('CONTOSO\\Alice', ['account:sid:S-1-5-21-1-2-3-1104']);

    const keys = aliases(nt);

    expect(keys).toEqual(['account:alice@contoso.com', 'account:alice@contoso.onmicrosoft.com']);
  });

  it('gives an account known only by UPN the NT key of the domain its suffix belongs to', () => {
    expect(aliases(account('alice@contoso.onmicrosoft.com'))).toEqual(['account:contoso\\alice']);
    expect(aliases(account('bob@fabrikam.example', ['account:aad:0f1e2d3c']))).toEqual(['account:fabrikam\\bob']);
  });

  it.each([
    ['both spellings already', account('alice@contoso.com', ['account:contoso\\alice'])],
    ['a UPN whose own NT domain differs from the mapped one', account('alice@contoso.com', ['account:corp\\alice'])],
    ['an unmapped NetBIOS domain', account('NORTHWIND\\alice')],
    ['an unmapped UPN suffix', account('alice@northwind.example')],
    ['a bare name', account('administrator')],
    ['an object id only', account('aad:0f1e2d3c-0000-4000-8000-000000000001')],
    ['a SID only', account('sid:S-1-5-21-1-2-3-500')],
    ['a hashed (over-long) key beside an NT spelling', { ...account('~sha256:ab'), altKeys: ['account:contoso\\alice'] }],
    ['a host, even one named like an account', host('contoso.com')],
  ])('derives nothing for %s', (_what, e) => {
    expect(aliases(e)).toEqual([]);
  });

  it('looks up and stores the alias keys beside the account key, and leaves other entities alone', () => {
    const c = makeCase({ caseId: 'a1', entities: [account('CONTOSO\\alice'), ip('203.0.113.9')] });

    const plan = buildCorrelationPlan(c, ['exploitation'], compileCorrelationSettings(withDirectory));

    expect(plan.keys).toEqual([
      'account:contoso\\alice',
      'account:alice@contoso.com',
      'account:alice@contoso.onmicrosoft.com',
      'ip:203.0.113.9',
    ]);
    expect(plan.lookup).toEqual(plan.keys);
  });

  it('adds nothing for a tenant without a directory: same keys, the very same case object for correlation', () => {
    const settings = compileCorrelationSettings(contosoPolicy());
    const c = makeCase({ caseId: 'a2', entities: [account('CONTOSO\\alice')] });

    const plan = buildCorrelationPlan(c, [], settings);

    expect(settings.directory).toBeUndefined();
    expect(plan.keys).toEqual(['account:contoso\\alice']);
    expect(withAccountAliases(c, settings.directory)).toBe(c);
  });

  it('never aliases a bare account name, even under a directory', () => {
    const c = makeCase({ caseId: 'a3', entities: [account('alice')] });

    const plan = buildCorrelationPlan(c, [], compileCorrelationSettings(withDirectory));

    expect(plan.keys).toEqual(['account:alice']);
  });

  it("ignores an account whose alias is on the tenant's non-correlating list", () => {
    // contosoPolicy lists account:svc-scan@contoso.example as non-correlating.
    const policy = contosoPolicy({ directory: { domains: [{ netbios: 'CONTOSO', upnSuffixes: ['contoso.example'] }] } });
    const c = makeCase({ caseId: 'a4', entities: [account('CONTOSO\\svc-scan')] });

    const plan = buildCorrelationPlan(c, [], compileCorrelationSettings(policy));

    expect(plan.keys).toEqual([]);
    expect(plan.ignored).toEqual([
      { key: 'account:contoso\\svc-scan', why: 'policy network.nonCorrelating: account:svc-scan@contoso.example' },
    ]);
  });

  it('adds the alias keys to the accounts of the case correlation sees, without changing the case', () => {
    const c = makeCase({ caseId: 'a5', entities: [host('ws-017.corp.contoso.example'), account('alice@contoso.com')] });

    const view = withAccountAliases(c, dir);

    expect(view.entities[1]?.altKeys).toEqual(['account:contoso\\alice']);
    expect(view.entities[0]).toBe(c.entities[0]);
    expect(c.entities[1]?.altKeys).toEqual([]);
  });
});

describe('correlation through a directory alias', () => {
  const windows = (caseId: string, detectedAt: string) =>
    makeCase({
      caseId,
      detectedAt,
      tactics: ['CredentialAccess'],
      entities: [account('CONTOSO\\alice'), host('ws-017.corp.contoso.example')],
    });
  const signIn = (caseId: string, detectedAt: string, upn = 'alice@contoso.com') =>
    makeCase({ caseId, detectedAt, tactics: ['InitialAccess'], entities: [account(upn), ip('198.51.100.9')] });

  it('links a later alice@contoso.com sign-in to an earlier CONTOSO\\alice alert, and says it went through the alias', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    triage(brain, store, windows('w1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));

    const run = triage(brain, store, signIn('s1', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    expect(run.verdict.relatedCaseIds).toEqual(['w1']);
    expect(run.verdict.detail).toContain('through directory alias account:contoso\\alice for account:alice@contoso.com');
  });

  it('links them in the other arrival order too, through a suffix other than the first', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    triage(brain, store, signIn('s1', '2026-11-20T02:00:00.000Z', 'alice@contoso.onmicrosoft.com'), resolved(withDirectory));

    const run = triage(brain, store, windows('w1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));

    expect(run.verdict.relatedCaseIds).toEqual(['s1']);
    expect(run.verdict.detail).toContain('through directory alias account:alice@contoso.onmicrosoft.com for account:contoso\\alice');
  });

  it('links a CONTOSO\\alice alert to a sign-in stored before the tenant had a directory', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    triage(brain, store, signIn('s1', '2026-11-20T01:00:00.000Z', 'alice@contoso.onmicrosoft.com'), resolved(contosoPolicy()));

    const run = triage(brain, store, windows('w1', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    expect(run.verdict.relatedCaseIds).toEqual(['s1']);
  });
});
