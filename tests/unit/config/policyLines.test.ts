/**
 * `withPolicyLines`: every error of a policy file names the line to fix, including the errors found
 * after the schema passed (checkPolicy, duplicate tenants) and members that are missing altogether.
 */
import { parsePolicy, withPolicyLines } from '../../../shared/config/policy';
import { PolicyError } from '../../../shared/errors';
import { checkPolicy } from '../../../shared/triage/checkPolicy';

const TEXT = [
  '# contoso', // 1
  '', // 2
  'tenant:', // 3
  '  id: t1', // 4
  '  name: Contoso', // 5
  'rules:', // 6
  '  K1-1: { playbook: nope }', // 7
  '  "K.2":', // 8
  '    playbook: brute-force', // 9
  '    scenario: nah', // 10
  'contacts:', // 11
  '  - { name: SOC, email: soc@example.com }', // 12
  'killChain:', // 13
  '  techniques:', // 14
  '    T1059.001: bogus', // 15
  '',
].join('\n');

const at = (path: string) => ({ path, reason: 'r' });

describe('withPolicyLines', () => {
  it('adds the line where the value of each path starts, for dotted, indexed and quoted members', () => {
    const issues = [at('$.tenant.id'), at('$.rules.K1-1.playbook'), at('$.rules["K.2"].scenario'), at('$.contacts[0].email')];

    const out = withPolicyLines(TEXT, issues);

    expect(out.map((i) => i.path)).toEqual([
      '$.tenant.id (line 4)',
      '$.rules.K1-1.playbook (line 7)',
      '$.rules["K.2"].scenario (line 10)',
      '$.contacts[0].email (line 12)',
    ]);
  });

  it('places a missing member on the line of the key of its nearest present ancestor', () => {
    const issues = [at('$.tenant.timezone'), at('$.rules["K.2"].severity'), at('$.contacts[3].name'), at('$.sla.notifyWithin')];

    const out = withPolicyLines(TEXT, issues);

    expect(out.map((i) => i.path)).toEqual([
      '$.tenant.timezone (line 3)',
      '$.rules["K.2"].severity (line 8)',
      '$.contacts[3].name (line 11)',
      '$.sla.notifyWithin (line 3)',
    ]);
  });

  it('keeps the reason, and leaves alone issues that are not JSON paths or that an empty document cannot place', () => {
    const syntax = { path: 'line 2', reason: 'bad indentation' };

    expect(withPolicyLines(TEXT, [syntax, { path: '$.tenant.id', reason: 'duplicate tenant id t1' }])).toEqual([
      syntax,
      { path: '$.tenant.id (line 4)', reason: 'duplicate tenant id t1' },
    ]);
    expect(withPolicyLines('', [at('$.tenant')])).toEqual([at('$.tenant')]);
  });

  it('places a rule on the key the policy keeps: the last of two keys with the same name, and a null key (the rule "")', () => {
    const text = [
      'tenant: { id: t1, name: T }', // 1
      'rules:', // 2
      '  1: { playbook: brute-force }', // 3
      '  "1": { playbook: nope }', // 4
      '  ~: { playbook: nah }', // 5
      '',
    ].join('\n');
    const policy = parsePolicy(text, 'a.yaml');

    const out = withPolicyLines(text, checkPolicy(policy));

    expect(policy.rules['1']?.playbook).toBe('nope');
    expect(out.map((i) => i.path)).toEqual(['$.rules["1"].playbook (line 4)', '$.rules[""].playbook (line 5)']);
  });

  it('places every checkPolicy issue of a parsed file, a kill-chain key with a dot included', () => {
    const issues = checkPolicy(parsePolicy(TEXT, 'contoso.yaml'));

    const out = withPolicyLines(TEXT, issues);

    expect(out.map((i) => i.path)).toEqual([
      '$.rules["K1-1"].playbook (line 7)',
      '$.rules["K.2"].scenario (line 10)',
      '$.killChain.techniques["T1059.001"] (line 15)',
    ]);
  });
});

describe('parsePolicy', () => {
  it('names the line of a missing member: that of its parent key', () => {
    const text = 'tenant:\n  id: t1\nsla: { notifyWithin: PT15M }\n';

    let issues: readonly { path: string }[] = [];
    try {
      parsePolicy(text, 'a.yaml');
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      issues = e.issues;
    }

    expect(issues.map((i) => i.path)).toEqual(['$.tenant.name (line 1)']);
  });
});
