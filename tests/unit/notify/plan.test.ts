import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy } from '../../../shared/config/policy';
import { planNotifications } from '../../../shared/notify/plan';
import { SAMPLES } from '../../helpers/cli';

const policy = parsePolicy(readFileSync(join(SAMPLES, 'policy.example.yaml'), 'utf8'), 'policy.example.yaml');
const base = { tenantId: 't1', caseId: 'c1', revision: 1, policy, payload: 'first report', now: '2026-11-20T01:13:06.000Z' };

describe('notification planning', () => {
  it('sends a high case first report to on-call (Teams and e-mail) and IT security (e-mail)', () => {
    const out = planNotifications({ ...base, severity: 'high', businessHours: false });

    expect(out.map((n) => `${n.kind} ${n.channel} ${n.recipient}`)).toEqual([
      'first-report teams SOC on-call <https://example.invalid/workflows/soc-oncall>',
      'first-report email SOC on-call <soc-oncall@contoso.example>',
      'first-report email Contoso IT security <itsec@contoso.example>',
    ]);
    expect(new Set(out.map((n) => n.key)).size).toBe(3);
  });

  it('records an informational case without notifying anyone', () => {
    expect(planNotifications({ ...base, severity: 'informational', businessHours: true })).toEqual([]);
  });

  it('keys the first report by case, kind and recipient only, so a new revision cannot repeat it', () => {
    const r1 = planNotifications({ ...base, severity: 'medium', businessHours: true });
    const r2 = planNotifications({ ...base, revision: 2, severity: 'medium', businessHours: true });

    expect(r2.map((n) => n.key)).toEqual(r1.map((n) => n.key));
  });

  it('escalates once per revision when a new revision raises severity, and stays quiet otherwise', () => {
    const raised = planNotifications({ ...base, revision: 2, severity: 'critical', previouslyNotified: 'medium', businessHours: true });
    const same = planNotifications({ ...base, revision: 2, severity: 'medium', previouslyNotified: 'medium', businessHours: true });

    expect(raised.every((n) => n.kind === 'escalation' && n.key.endsWith('|r2'))).toBe(true);
    expect(raised.length).toBeGreaterThan(0);
    expect(same).toEqual([]);
  });

  it('skips business-hours contacts outside business hours', () => {
    const p = parsePolicy(
      readFileSync(join(SAMPLES, 'policy.example.yaml'), 'utf8').replace(
        'critical: { first: [SOC on-call, Contoso IT security]',
        'critical: { first: [Senior engineer]',
      ),
      'x.yaml',
    );

    expect(planNotifications({ ...base, policy: p, severity: 'critical', businessHours: false })).toEqual([]);
    expect(planNotifications({ ...base, policy: p, severity: 'critical', businessHours: true })).toHaveLength(1);
  });
});
