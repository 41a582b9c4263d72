/**
 * Brute force (seed §6): many authentication attempts against accounts or a
 * service. First report high, asking whether it is a misconfiguration or an
 * allowed exception.
 */
import { ipsWithScope, renderFirstReport, subjectHost } from './report';
import type { Playbook } from './types';

/** The brute-force playbook. */
export const bruteForce: Playbook = {
  id: 'brute-force',
  title: 'Brute force',
  summary: 'Repeated authentication attempts against accounts or a service (password guessing, spraying, stuffing).',
  recognition: {
    ruleNamePatterns: [
      /brute[- ]?force/i,
      /password[- ]spray/i,
      /credential[- ]stuffing/i,
      // "Successful sign-in after multiple failed sign-ins" is unauthorized access, not brute force.
      /^(?!.*\bsuccess).*\b(multiple|many|excessive|repeated|numerous)\s+failed\s+(sign[- ]?ins?|log[io]ns?|logons?|authentications?)/i,
    ],
    techniques: ['T1110'],
    tactics: ['CredentialAccess'],
    indicatorHit: false,
  },
  impliedPhases: ['exploitation'],
  defaultScenario: 'brute-force-on-accounts',
  nominalSeverity: 'high',
  baseSeverity() {
    return { severity: 'high', detail: 'brute force: high per the runbook' };
  },
  confirm(ctx) {
    const target = subjectHost(ctx);
    const ips = ipsWithScope(ctx);
    const q = [
      `Is this a misconfiguration (a device or service still using an old password) or an allowed exception (an authorised scan or test)${target ? ` against ${target}` : ''}?`,
    ];
    if (ips.length > 0) q.push(`Do you know the address${ips.length > 1 ? 'es' : ''} ${ips.join(', ')}?`);
    return q;
  },
  notes() {
    return [];
  },
  evidence: [
    { query: 'fw-src-dst-port', when: 'always' },
    { query: 'signin-success-after-failures', when: 'always' },
    { query: 'ip-reputation', when: 'external-ip' },
    { query: 'whois', when: 'external-ip' },
    { query: 'proxy-fanout-internal', when: 'always' },
    { query: 'proxy-post-out', when: 'always' },
  ],
  limits: ['Attempts against services whose authentication logs are not collected are not seen.'],
  firstReport(ctx) {
    return renderFirstReport(bruteForce, ctx);
  },
};
