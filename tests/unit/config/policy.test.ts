import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { duplicateTenants, PolicyRegistry, parsePolicy } from '../../../shared/config/policy';
import { PolicyError } from '../../../shared/errors';
import { ROOT, SAMPLES, scratch } from '../../helpers/cli';

const example = readFileSync(join(SAMPLES, 'policy.example.yaml'), 'utf8');

function issuesOf(text: string): { path: string; reason: string }[] {
  try {
    parsePolicy(text, 'test.yaml');
  } catch (e) {
    if (e instanceof PolicyError) return [...e.issues];
    throw e;
  }
  return [];
}

describe('tenant policy', () => {
  it('expresses everything in the sample runbook', () => {
    const p = parsePolicy(example, 'policy.example.yaml');

    expect(p.tenant).toMatchObject({ id: '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b', timezone: 'Asia/Tokyo' });
    expect(p.tenant.businessHours).toEqual({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '18:00' });
    expect(p.network.maintenanceHosts).toContain('10.20.9.0/28');
    expect(p.rules['K5-1']).toEqual({ playbook: 'unauthorized-access', severity: 'high' });
    expect(p.correlation.window).toBe('P7D');
    expect(p.correlation.escalateWhen.distinctPhases).toBe(3);
    expect(p.sla.notifyWithin).toBe('PT15M');
    expect(p.notify.critical).toMatchObject({ escalateAfter: 'PT10M', escalateTo: ['Senior engineer'], secondReport: 'business' });
    expect(p.contacts.find((c) => c.name === 'Senior engineer')?.hours).toBe('business');
  });

  it('ships the sample tenant as the default policy folder', () => {
    const reg = PolicyRegistry.fromDirectory(join(ROOT, 'policies'));

    expect(reg.resolve('8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b').source).toBe('tenant');
  });

  it('triages an unknown workspace with the documented defaults, flagged as such', () => {
    const reg = new PolicyRegistry();

    const r = reg.resolve('00000000-0000-0000-0000-000000000000');

    expect(r.source).toBe('default');
    expect(r.policy.sla.notifyWithin).toBe('PT15M');
    expect(r.policy.notify.high?.first).toEqual(['SOC default']);
  });

  it('names the path and line of every error', () => {
    const text = example.replace('timezone: Asia/Tokyo', 'timezone: Mars/Olympus').replace('window: P7D', 'window: seven days');

    const issues = issuesOf(text);

    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          path: expect.stringMatching(/^\$\.tenant\.timezone \(line \d+\)$/),
          reason: expect.stringContaining('IANA'),
        }),
        expect.objectContaining({ path: expect.stringMatching(/^\$\.correlation\.window/), reason: expect.stringContaining('ISO 8601') }),
      ]),
    );
  });

  it('refuses a notify matrix naming an unknown contact', () => {
    const text = example.replace(
      'escalateTo: [Senior engineer], secondReport: business }\n  high',
      'escalateTo: [Senor engineer], secondReport: business }\n  high',
    );

    const issues = issuesOf(text);

    expect(issues).toEqual([
      expect.objectContaining({
        path: expect.stringContaining('$.notify.critical.escalateTo[0]'),
        reason: 'unknown contact "Senor engineer"',
      }),
    ]);
  });

  it('refuses unknown keys (a typo must not silently disable a rule)', () => {
    const issues = issuesOf(example.replace('maintenanceHosts:', 'maintenanceHost:'));

    expect(issues.some((i) => i.path.startsWith('$.network'))).toBe(true);
  });

  it('reports YAML syntax errors with their line', () => {
    const issues = issuesOf('tenant: { id: x\n  name: [\n');

    expect(issues[0]?.path).toMatch(/^line \d+$/);
  });
});

describe('tenant policy: tenant ids', () => {
  const UPPER = '8B0F5C2E-3F4A-4D6E-9A1B-2C3D4E5F6A7B';
  const LOWER = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

  it('applies a policy written with an upper-case workspace GUID to the lower-case id an alert carries', () => {
    const policy = parsePolicy(example.replace(LOWER, UPPER), 'contoso.yaml');
    const reg = new PolicyRegistry([{ policy, file: 'contoso.yaml' }]);

    const r = reg.resolve(LOWER);

    expect(policy.tenant.id).toBe(LOWER);
    expect(r.source).toBe('tenant');
    expect(r.file).toBe('contoso.yaml');
  });

  it('matches canonically even for a policy built in code, whichever case the caller resolves with', () => {
    const parsed = parsePolicy(example, 'contoso.yaml');
    const policy = { ...parsed, tenant: { ...parsed.tenant, id: UPPER } };
    const reg = new PolicyRegistry([{ policy }]);

    expect(reg.resolve(LOWER).source).toBe('tenant');
    expect(reg.resolve(UPPER).source).toBe('tenant');
    expect(reg.tenants()).toEqual([LOWER]);
  });

  it('refuses two policies whose tenant ids differ only in GUID case, naming both files', () => {
    const parsed = parsePolicy(example, 'a.yaml');
    const upper = { ...parsed, tenant: { ...parsed.tenant, id: UPPER } };

    const build = () =>
      new PolicyRegistry([
        { policy: parsed, file: 'a.yaml' },
        { policy: upper, file: 'b.yml' },
      ]);

    expect(build).toThrow(PolicyError);
    expect(
      duplicateTenants([
        { policy: parsed, file: 'a.yaml' },
        { policy: upper, file: 'b.yml' },
      ]),
    ).toEqual([
      expect.objectContaining({
        file: 'b.yml',
        issues: [{ path: '$.tenant.id', reason: `duplicate tenant id ${LOWER} (also in a.yaml)` }],
      }),
    ]);
  });

  it('refuses to load a folder holding the same tenant twice', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'a.yaml'), `tenant: { id: ${UPPER}, name: A }\n`);
    writeFileSync(join(dir, 'b.yml'), `tenant: { id: ${LOWER}, name: B }\n`);

    expect(() => PolicyRegistry.fromDirectory(dir)).toThrow(expect.objectContaining({ name: 'PolicyError', file: join(dir, 'b.yml') }));
  });
});

describe('tenant policy: duration ceilings', () => {
  const base = 'tenant: { id: t1, name: T1 }\n';
  const cases = [
    { path: '$.sla.notifyWithin', max: 'P1D', over: 'PT25H', yaml: (d: string) => `sla: { notifyWithin: ${d} }\n` },
    { path: '$.correlation.window', max: 'P90D', over: 'P91D', yaml: (d: string) => `correlation: { window: ${d} }\n` },
    { path: '$.notify.high.escalateAfter', max: 'P7D', over: 'P8D', yaml: (d: string) => `notify: { high: { escalateAfter: ${d} } }\n` },
  ];

  it.each(cases)('refuses $path above $max, naming the path', ({ path, max, over, yaml }) => {
    for (const d of [over, 'P300000Y']) {
      const issues = issuesOf(base + yaml(d));

      expect(issues).toEqual([
        { path: expect.stringMatching(new RegExp(`^${path.replace(/[$.]/g, '\\$&')} \\(line \\d+\\)$`)), reason: `must be at most ${max}` },
      ]);
    }
  });

  it.each(cases)('accepts $path at exactly $max', ({ max, yaml }) => {
    expect(issuesOf(base + yaml(max))).toEqual([]);
  });
});

describe('tenant policy: contacts and reserved keys', () => {
  it('refuses a second contact with the same name at the path of the second one', () => {
    const text =
      'tenant: { id: t9, name: T9 }\ncontacts:\n  - { name: On-call, email: a@x.example }\n  - { name: On-call, email: b@x.example }\nnotify:\n  critical: { first: [On-call] }\n';

    const issues = issuesOf(text);

    expect(issues).toEqual([{ path: '$.contacts[1].name (line 4)', reason: 'duplicate contact name "On-call" (also $.contacts[0])' }]);
  });

  it('refuses a notify matrix naming more contacts per severity than one atomic write holds', () => {
    const names = Array.from({ length: 21 }, (_, i) => `c${i}`);
    const contacts = names.map((n) => `  - { name: ${n}, email: ${n}@x.example, teams: "https://x.example/${n}", pagerduty: k${n} }`);
    const text = `tenant: { id: t9, name: T9 }\ncontacts:\n${contacts.join('\n')}\nnotify:\n  critical: { first: [${names.join(', ')}] }\n`;

    const issues = issuesOf(text);

    expect(issues).toEqual([{ path: expect.stringMatching(/^\$\.notify\.critical\.first/), reason: 'at most 20 contacts per severity' }]);
    expect(issuesOf(text.replace(', c20]', ']').replace(/\n {2}- \{ name: c20,[^\n]*/, ''))).toEqual([]);
  });

  it('refuses a __proto__ rule key instead of dropping it, and keeps other JavaScript-looking keys as rules', () => {
    const text =
      'tenant: { id: t5, name: T5 }\nrules:\n  __proto__: { playbook: brute-force, severity: critical }\n  constructor: { playbook: reputation }\n';

    const issues = issuesOf(text);
    const kept = parsePolicy('tenant: { id: t5, name: T5 }\nrules:\n  constructor: { playbook: reputation }\n', 'ok.yaml');

    expect(issues).toEqual([{ path: '$.rules.__proto__ (line 3)', reason: 'reserved key "__proto__" is not allowed' }]);
    expect(Object.hasOwn(kept.rules, 'constructor')).toBe(true);
  });
});
