import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry, parsePolicy } from '../../../shared/config/policy';
import { PolicyError } from '../../../shared/errors';
import { ROOT, SAMPLES } from '../../helpers/cli';

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
