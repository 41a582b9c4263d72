import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy } from '../../../shared/config/policy';
import { announcedSoFar, planNotifications } from '../../../shared/notify/plan';
import type { NotificationRecord } from '../../../shared/store/port';
import { SAMPLES } from '../../helpers/cli';

const policy = parsePolicy(readFileSync(join(SAMPLES, 'policy.example.yaml'), 'utf8'), 'policy.example.yaml');
const base = { tenantId: 't1', caseId: 'c1', policy, payload: 'first report', now: '2026-11-20T01:13:06.000Z', businessHours: true };

type Entry = Pick<NotificationRecord, 'revision' | 'kind' | 'status'>;
const entry = (revision: number, status: NotificationRecord['status'], kind: NotificationRecord['kind'] = 'first-report'): Entry => ({
  revision,
  kind,
  status,
});

describe('what a case has announced so far', () => {
  it('leaves out a revision whose every entry was abandoned, and names it', () => {
    const out = announcedSoFar([{ revision: 1, severity: 'high' }], [entry(1, 'failed'), entry(1, 'failed')]);

    expect(out.severity).toBeUndefined();
    expect(out.abandoned).toEqual({ revision: 1, severity: 'high' });
    expect(out.firstReportKeyed).toBe(true);
  });

  it('counts a revision one of whose entries was sent or is still pending', () => {
    const sentOne = announcedSoFar([{ revision: 1, severity: 'high' }], [entry(1, 'failed'), entry(1, 'sent')]);
    const pending = announcedSoFar([{ revision: 1, severity: 'high' }], [entry(1, 'queued')]);

    expect(sentOne).toEqual({ severity: 'high', firstReportKeyed: true });
    expect(pending.severity).toBe('high');
  });

  it('falls back to the highest level still announced when an escalation above it was abandoned', () => {
    const history = [
      { revision: 1, severity: 'medium' as const },
      { revision: 3, severity: 'critical' as const },
    ];

    const out = announcedSoFar(history, [entry(1, 'sent'), entry(3, 'failed', 'escalation')]);

    expect(out.severity).toBe('medium');
    expect(out.abandoned).toEqual({ revision: 3, severity: 'critical' });
  });

  it('counts a revision whose entries are no longer listed (outlived their retention): nothing shows they were abandoned', () => {
    expect(announcedSoFar([{ revision: 2, severity: 'high' }], []).severity).toBe('high');
  });

  it('counts an entry of a revision the history does not name at the level of the revision it names next (results from before it)', () => {
    expect(announcedSoFar([{ revision: 3, severity: 'high' }], [entry(1, 'sent'), entry(3, 'failed', 'escalation')]).severity).toBe('high');
  });

  it('counts such an entry at most at the level the history first names after it, so a later escalation abandoned still counts as abandoned', () => {
    // r1 (medium) and r2 (high) were announced before the history was kept (r2 stands for both); r3's critical escalation was abandoned
    const history = [
      { revision: 2, severity: 'high' as const },
      { revision: 3, severity: 'critical' as const, entries: 1 },
    ];

    const out = announcedSoFar(history, [entry(1, 'sent'), entry(2, 'sent', 'escalation'), entry(3, 'failed', 'escalation')]);

    expect(out.severity).toBe('high');
    expect(out.abandoned).toEqual({ revision: 3, severity: 'critical', entries: 1 });
  });

  it('counts a revision some of whose entries are no longer listed, even when those still listed were abandoned', () => {
    // Cosmos counts an entry's TTL from its last mark: an entry sent at once expires before a sibling abandoned an hour later
    const history = [{ revision: 1, severity: 'medium' as const, entries: 2 }];

    const siblingGone = announcedSoFar(history, [entry(1, 'failed')]);
    const bothAbandoned = announcedSoFar(history, [entry(1, 'failed'), entry(1, 'failed')]);

    expect(siblingGone.severity).toBe('medium');
    expect(siblingGone.abandoned).toBeUndefined();
    expect(bothAbandoned.severity).toBeUndefined();
    expect(bothAbandoned.abandoned).toEqual({ revision: 1, severity: 'medium', entries: 2 });
  });
});

describe('a first report after an abandoned one', () => {
  it('is keyed by revision, so it does not collide with the abandoned entries, and once per revision', () => {
    const abandoned = planNotifications({ ...base, revision: 1, severity: 'medium' });
    const again = planNotifications({ ...base, revision: 2, severity: 'medium', firstReportKeyed: true });
    const redelivered = planNotifications({ ...base, revision: 2, severity: 'medium', firstReportKeyed: true });

    expect(again.length).toBe(abandoned.length);
    expect(again.every((n) => n.kind === 'first-report' && n.key.endsWith('|r2'))).toBe(true);
    expect(again.filter((n) => abandoned.some((a) => a.key === n.key))).toEqual([]);
    expect(redelivered.map((n) => n.key)).toEqual(again.map((n) => n.key));
  });
});
