import fc from 'fast-check';
import {
  clean,
  cleanJoin,
  EVIDENCE_QUERIES,
  EVIDENCE_QUERY_IDS,
  getPlaybook,
  isPlaybookId,
  localTime,
  PLAYBOOK_IDS,
  PLAYBOOKS,
  selectEvidence,
} from '../../../playbooks';
import type { PlaybookContext } from '../../../playbooks/types';
import { createBrain } from '../../../shared/triage/brain';
import { compilePolicy } from '../../../shared/triage/compiled';
import { factsOf } from '../../../shared/triage/facts';
import { account, contosoPolicy, host, ip, makeCase, proc, resolved, SimulatedStore, triage } from '../../fixtures/brain/factory';

function ctxOf(c: ReturnType<typeof makeCase>, ruleSeverity?: 'high'): PlaybookContext {
  const policy = contosoPolicy();
  return {
    case: c,
    classification: { playbook: 'x', classifiedBy: 'test', ...(ruleSeverity ? { ruleSeverity } : {}) },
    facts: factsOf(c, compilePolicy(policy), undefined),
    policy,
  };
}

describe('playbook registry', () => {
  it('holds the seven playbooks in priority order with generic last', () => {
    expect(PLAYBOOKS.map((p) => p.id)).toEqual([
      'command-execution',
      'brute-force',
      'lateral-movement',
      'unauthorized-access',
      'reputation',
      'suspicious-communication',
      'generic',
    ]);
    expect(PLAYBOOKS.map((p) => p.id)).toEqual([...PLAYBOOK_IDS]);
  });

  it('returns generic for an unknown id', () => {
    expect(isPlaybookId('toString')).toBe(false);
    expect(getPlaybook('nope').id).toBe('generic');
  });

  it("declares the seed's first-report levels", () => {
    expect(Object.fromEntries(PLAYBOOKS.map((p) => [p.id, p.nominalSeverity]))).toEqual({
      'command-execution': 'critical',
      'brute-force': 'high',
      'lateral-movement': 'medium',
      'unauthorized-access': 'medium',
      reputation: 'medium',
      'suspicious-communication': 'medium',
      generic: 'provider',
    });
  });

  it('refers only to catalogued evidence queries, and every catalogued query is used', () => {
    const used = new Set(PLAYBOOKS.flatMap((p) => p.evidence.map((e) => e.query)));

    for (const id of used) expect(EVIDENCE_QUERIES[id]?.id).toBe(id);
    expect([...used].sort()).toEqual([...EVIDENCE_QUERY_IDS].sort());
  });

  it('declares techniques as parent ATT&CK ids', () => {
    for (const p of PLAYBOOKS) for (const t of p.recognition.techniques) expect(t).toMatch(/^T\d{4}$/);
  });
});

describe('evidence selection', () => {
  it('asks for reputation and WHOIS only when an external address is involved', () => {
    const steps = getPlaybook('unauthorized-access').evidence;
    const external = ctxOf(makeCase({ caseId: 'e', entities: [ip('203.0.113.9')] }));
    const internal = ctxOf(makeCase({ caseId: 'i', entities: [ip('10.1.2.3')] }));

    expect(selectEvidence(steps, external).map((q) => q.id)).toEqual(['signin-success-after-failures', 'ip-reputation', 'whois']);
    expect(selectEvidence(steps, internal).map((q) => q.id)).toEqual(['signin-success-after-failures', 'proxy-fanout-internal']);
  });

  it('asks for DMZ-inbound traffic only for high-severity rule entries (the K5-1 type)', () => {
    const steps = getPlaybook('unauthorized-access').evidence;
    const c = makeCase({ caseId: 'k', entities: [ip('172.16.10.5')] });

    expect(selectEvidence(steps, ctxOf(c, 'high')).map((q) => q.id)).toContain('dmz-inbound');
    expect(selectEvidence(steps, ctxOf(c)).map((q) => q.id)).not.toContain('dmz-inbound');
  });
});

describe('first report text', () => {
  it('shows control characters in attacker-controlled values instead of starting new lines', () => {
    expect(clean('a\nb\r\u2028c\u0007')).toBe('a\\nb\\r\\x2028c\\x07');
    expect(clean('x'.repeat(400))).toBe(`${'x'.repeat(300)}… (400 chars)`);
  });

  it('cannot be given forged lines through a command line or title', () => {
    const c = makeCase({
      caseId: 'forge',
      name: 'K2-3 run\nWhy INFORMATIONAL',
      entities: [host('ws-fin-023'), proc('calc.exe\nPlease confirm\n  1. Nothing to see')],
    });

    const report = triage(createBrain(), new SimulatedStore(), c).scored.firstReport;

    expect(report.split('\n').filter((l) => l.startsWith('Why '))).toEqual(['Why CRITICAL']);
    expect(report.split('\n').filter((l) => l === 'Please confirm')).toHaveLength(1);
  });

  it('has the sections in a fixed order', () => {
    const c = makeCase({ caseId: 'order', name: 'K4-1 Brute force', entities: [ip('203.0.113.77'), account('k.tanaka@contoso.example')] });

    const report = triage(createBrain(), new SimulatedStore(), c).scored.firstReport;
    const headings = report
      .split('\n')
      .filter((l) => /^[A-Z][^ ]*( [A-Za-z(]|$)/.test(l) && !l.startsWith('Case ') && !l.startsWith('First '));

    expect(headings).toEqual([
      'What happened',
      'Entities',
      'Why HIGH',
      'Kill chain',
      'Threat level (NIST SP 800-30): moderate (scenario brute-force-on-accounts)',
      'Please confirm',
      'Next checks (evidence queries)',
      'Limits',
    ]);
    expect(report.startsWith('[HIGH] Brute force: K4-1 Brute force\n')).toBe(true);
  });

  it('lists the next checks that fit each case, case after case, with the same playbook', () => {
    const brain = createBrain();
    const external = makeCase({ caseId: 'ext', name: 'K4-1 Brute force', entities: [ip('203.0.113.77')] });
    const internal = makeCase({ caseId: 'int', name: 'K4-1 Brute force', entities: [ip('10.20.7.41')] });
    const checks = (report: string) => report.split('\n').filter((l) => l.startsWith('  - ') && l.includes(': ') && l.endsWith(']'));

    const first = checks(triage(brain, new SimulatedStore(), external).scored.firstReport);
    const second = checks(triage(brain, new SimulatedStore(), internal).scored.firstReport);
    const third = checks(triage(brain, new SimulatedStore(), external).scored.firstReport);

    expect(first.some((l) => l.startsWith('  - whois:'))).toBe(true);
    expect(second.some((l) => l.startsWith('  - whois:'))).toBe(false);
    expect(second.some((l) => l.startsWith('  - fw-src-dst-port:'))).toBe(true);
    expect(third).toEqual(first);
  });

  it("keeps each playbook's own checks and limits when playbooks alternate under one brain", () => {
    const brain = createBrain();
    const bruteForce = makeCase({ caseId: 'bf', name: 'K4-1 Brute force', entities: [ip('203.0.113.77')] });
    const commands = makeCase({ caseId: 'ce', name: 'K2-3 run', entities: [host('ws-fin-023'), ip('203.0.113.77')] });
    const limits = (report: string) => report.split('\nLimits\n')[1]?.split('\n\n')[0];

    const first = triage(brain, new SimulatedStore(), bruteForce);
    const second = triage(brain, new SimulatedStore(), commands);
    const third = triage(brain, new SimulatedStore(), bruteForce);

    expect([first.cls.playbook, second.cls.playbook]).toEqual(['brute-force', 'command-execution']);
    expect(limits(first.scored.firstReport)).toBe(
      getPlaybook('brute-force')
        .limits.map((l) => `  - ${l}`)
        .join('\n'),
    );
    expect(limits(second.scored.firstReport)).toBe(
      getPlaybook('command-execution')
        .limits.map((l) => `  - ${l}`)
        .join('\n'),
    );
    expect(second.scored.firstReport).not.toContain('  - signin-success-after-failures:');
    expect(third.scored.firstReport).toBe(first.scored.firstReport);
  });

  it('joins cleaned values exactly as cleaning each value and joining would (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 40 })), fc.integer({ min: 1, max: 30 }), (values, max) => {
        expect(cleanJoin(values, max, ', ')).toBe(values.map((v) => clean(v, max)).join(', '));
      }),
      { numRuns: 2000 },
    );
  });

  it('shows local times across a DST change in the tenant zone', () => {
    expect(localTime('2026-03-08T06:59:00.000Z', 'America/New_York')).toBe('2026-03-08 01:59 America/New_York');
    expect(localTime('2026-03-08T07:00:00.000Z', 'America/New_York')).toBe('2026-03-08 03:00 America/New_York');
    expect(localTime('not a time', 'America/New_York')).toBe('unknown time');
  });

  it('shows detection time in UTC and in the tenant time zone', () => {
    const c = makeCase({ caseId: 'tz', name: 'K4-1 Brute force', detectedAt: '2026-11-20T01:13:05.000Z' });

    const report = triage(createBrain(), new SimulatedStore(), c, resolved()).scored.firstReport;

    expect(report).toContain('Detected: 2026-11-20T01:13:05.000Z (2026-11-20 10:13 Asia/Tokyo)');
  });
});
