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

  it('gives an account known only by UPN the NT key of the domain its suffix belongs to and the UPN of every other suffix', () => {
    expect(aliases(account('alice@contoso.onmicrosoft.com'))).toEqual(['account:contoso\\alice', 'account:alice@contoso.com']);
    expect(aliases(account('bob@fabrikam.example', ['account:aad:0f1e2d3c']))).toEqual(['account:fabrikam\\bob']);
  });

  it('expands every readable spelling of an account that carries several, leaving its own keys and a hashed one out', () => {
    expect(aliases(account('alice@contoso.com', ['account:contoso\\alice']))).toEqual(['account:alice@contoso.onmicrosoft.com']);
    expect(aliases(account('alice@contoso.com', ['account:corp\\alice']))).toEqual([
      'account:contoso\\alice',
      'account:alice@contoso.onmicrosoft.com',
    ]);
    expect(aliases({ ...account('~sha256:ab'), altKeys: ['account:contoso\\alice'] })).toEqual([
      'account:alice@contoso.com',
      'account:alice@contoso.onmicrosoft.com',
    ]);
  });

  it.each([
    ['an unmapped NetBIOS domain', account('NORTHWIND\\alice')],
    ['an unmapped UPN suffix', account('alice@northwind.example')],
    ['a bare name', account('administrator')],
    ['an object id only', account('aad:0f1e2d3c-0000-4000-8000-000000000001')],
    ['a SID only', account('sid:S-1-5-21-1-2-3-500')],
    ['a hashed (over-long) key', account('~sha256:ab')],
    ['a host, even one named like an account', host('contoso.com')],
  ])('derives nothing for %s', (_what, e) => {
    expect(aliases(e)).toEqual([]);
  });

  it('looks the alias keys up beside the case keys but stores no alias row', () => {
    const c = makeCase({ caseId: 'a1', entities: [account('CONTOSO\\alice'), ip('203.0.113.9')] });
    const store = new SimulatedStore();

    const { plan } = triage(createBrain(), store, c, resolved(withDirectory));

    expect(plan.keys).toEqual(['account:contoso\\alice', 'ip:203.0.113.9']);
    expect(plan.lookup).toEqual([
      'account:contoso\\alice',
      'ip:203.0.113.9',
      'account:alice@contoso.com',
      'account:alice@contoso.onmicrosoft.com',
    ]);
    expect(store.rows.map((r) => r.entityKey)).toEqual(['account:contoso\\alice', 'ip:203.0.113.9']);
  });

  it('adds nothing for a tenant without a directory: same keys, the very same case object for correlation', () => {
    const settings = compileCorrelationSettings(contosoPolicy());
    const c = makeCase({ caseId: 'a2', entities: [account('CONTOSO\\alice')] });

    const plan = buildCorrelationPlan(c, [], settings);

    expect(settings.directory).toBeUndefined();
    expect(plan.keys).toEqual(['account:contoso\\alice']);
    expect(plan.lookup).toEqual(['account:contoso\\alice']);
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
    expect(plan.lookup).toEqual([]);
    expect(plan.ignored).toEqual([
      { key: 'account:contoso\\svc-scan', why: 'policy network.nonCorrelating: account:svc-scan@contoso.example' },
    ]);
  });

  it('adds the alias keys to the accounts of the case correlation sees, without changing the case', () => {
    const c = makeCase({ caseId: 'a5', entities: [host('ws-017.corp.contoso.example'), account('alice@contoso.com')] });

    const view = withAccountAliases(c, dir);

    expect(view.entities[1]?.altKeys).toEqual(['account:contoso\\alice', 'account:alice@contoso.onmicrosoft.com']);
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
  const signInFrom = (caseId: string, detectedAt: string, upn: string, address: string) =>
    makeCase({ caseId, detectedAt, tactics: ['InitialAccess'], entities: [account(upn), ip(address)] });
  const signIn = (caseId: string, detectedAt: string, upn = 'alice@contoso.com') => signInFrom(caseId, detectedAt, upn, '198.51.100.9');

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

  it('links UPN-only alice@s1 with alice@s2 through the directory, whichever arrives first', () => {
    const onPrem = (caseId: string, at: string) => signInFrom(caseId, at, 'alice@contoso.com', '203.0.113.1');
    const cloud = (caseId: string, at: string) => signInFrom(caseId, at, 'alice@contoso.onmicrosoft.com', '203.0.113.2');
    const brain = createBrain();
    const first = new SimulatedStore();
    const second = new SimulatedStore();
    triage(brain, first, onPrem('u1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));
    triage(brain, second, cloud('u2', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    const cloudLater = triage(brain, first, cloud('u2', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));
    const onPremLater = triage(brain, second, onPrem('u1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));

    expect(cloudLater.verdict.relatedCaseIds).toEqual(['u1']);
    expect(cloudLater.verdict.detail).toContain(
      'through directory alias account:alice@contoso.com for account:alice@contoso.onmicrosoft.com',
    );
    expect(onPremLater.verdict.relatedCaseIds).toEqual(['u2']);
    expect(onPremLater.verdict.detail).toContain(
      'through directory alias account:alice@contoso.onmicrosoft.com for account:alice@contoso.com',
    );
  });

  it('links an account that carries both spellings with a UPN of another suffix, whichever arrives first', () => {
    const both = (caseId: string, at: string) =>
      makeCase({
        caseId,
        detectedAt: at,
        tactics: ['CredentialAccess'],
        entities: [account('alice@contoso.com', ['account:contoso\\alice'])],
      });
    const cloud = (caseId: string, at: string) => signInFrom(caseId, at, 'alice@contoso.onmicrosoft.com', '203.0.113.2');
    const brain = createBrain();
    const first = new SimulatedStore();
    const second = new SimulatedStore();
    triage(brain, first, both('b1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));
    triage(brain, second, cloud('b2', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    const cloudLater = triage(brain, first, cloud('b2', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));
    const bothLater = triage(brain, second, both('b1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));

    expect(cloudLater.verdict.relatedCaseIds).toEqual(['b1']);
    expect(bothLater.verdict.relatedCaseIds).toEqual(['b2']);
  });

  it('names the alias only when the link was found through it, not for two alerts spelling the account alike', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    triage(brain, store, windows('w1', '2026-11-20T01:00:00.000Z'), resolved(withDirectory));

    const run = triage(brain, store, windows('w2', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    expect(run.verdict.relatedCaseIds).toEqual(['w1']);
    expect(run.verdict.detail).toBeDefined();
    expect(run.verdict.detail).not.toContain('through directory alias');
  });

  it('does not name the alias when the related case also carries the spelling this case has', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    const both = makeCase({
      caseId: 'm1',
      detectedAt: '2026-11-20T01:00:00.000Z',
      tactics: ['InitialAccess'],
      entities: [account('alice@contoso.com', ['account:contoso\\alice'])],
    });
    triage(brain, store, both, resolved(withDirectory));

    const run = triage(brain, store, windows('w1', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    expect(run.verdict.relatedCaseIds).toEqual(['m1']);
    expect(run.verdict.detail).toBeDefined();
    expect(run.verdict.detail).not.toContain('through directory alias');
  });

  it('names the alias through which the only correlating account links, though an account the policy leaves out spells it so', () => {
    // The alert names the account twice: by a listed object id beside CONTOSO\alice (left out), and by UPN (correlating).
    const policy = contosoPolicy({ directory: DIRECTORY, network: { ...withDirectory.network, nonCorrelating: ['account:aad:0f1e2d3c'] } });
    const brain = createBrain();
    const store = new SimulatedStore();
    triage(brain, store, windows('w1', '2026-11-20T01:00:00.000Z'), resolved(policy));
    const c = makeCase({
      caseId: 's1',
      detectedAt: '2026-11-20T02:00:00.000Z',
      tactics: ['InitialAccess'],
      entities: [account('aad:0f1e2d3c', ['account:contoso\\alice']), account('alice@contoso.com')],
    });

    const run = triage(brain, store, c, resolved(policy));

    expect(run.plan.keys).toEqual(['account:alice@contoso.com']);
    expect(run.verdict.relatedCaseIds).toEqual(['w1']);
    expect(run.verdict.detail).toContain('through directory alias account:contoso\\alice for account:alice@contoso.com');
  });

  it('links a CONTOSO\\alice alert to a sign-in stored before the tenant had a directory', () => {
    const brain = createBrain();
    const store = new SimulatedStore();
    triage(brain, store, signIn('s1', '2026-11-20T01:00:00.000Z', 'alice@contoso.onmicrosoft.com'), resolved(contosoPolicy()));

    const run = triage(brain, store, windows('w1', '2026-11-20T02:00:00.000Z'), resolved(withDirectory));

    expect(run.verdict.relatedCaseIds).toEqual(['s1']);
  });
});
