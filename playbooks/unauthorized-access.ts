/**
 * Unauthorised access / authentication attack (seed §6). Medium by default; the
 * tenant's rule entry sets the level per rule type (the seed: K1-1 medium, K5-1
 * high). The report says whether the source is internal or external and asks
 * whether it was a maintenance login.
 */
import { clean, ipsWithScope, renderFirstReport } from './report';
import type { Playbook } from './types';

/** The unauthorized-access playbook. */
export const unauthorizedAccess: Playbook = {
  id: 'unauthorized-access',
  title: 'Unauthorised access',
  summary: 'A sign-in or access that should not have happened (authentication attack, abuse of remote access).',
  recognition: {
    ruleNamePatterns: [
      /\bunauthori[sz]ed\s+(access|log[io]n|logon|sign[- ]?in)/i,
      /\b(sign[- ]?in|log[io]n|logon)s?\s+from\s+(an?\s+)?(unusual|unfamiliar|anomalous|suspicious|new|unexpected|unknown)/i,
      /\b(impossible|atypical)\s+travel\b/i,
      /\bsuccessful\s+(sign[- ]?in|log[io]n|logon)\s+after\b/i,
    ],
    techniques: ['T1078', 'T1133'],
    tactics: ['InitialAccess'],
    indicatorHit: false,
  },
  impliedPhases: ['exploitation'],
  defaultScenario: 'abuse-of-remote-access',
  nominalSeverity: 'medium',
  baseSeverity() {
    return { severity: 'medium', detail: 'unauthorised access: medium unless the rule entry sets another level (K5-1-type rules: high)' };
  },
  confirm(ctx) {
    const who = ctx.facts.accounts.map((a) => clean(a.entity.label, 120));
    const ips = ipsWithScope(ctx);
    const q = [`Was this a maintenance login${who.length > 0 ? ` by ${who.join(', ')}` : ''} (planned work by your staff or a vendor)?`];
    if (ips.length > 0) q.push(`The source is ${scopeWord(ctx)} (${ips.join(', ')}): is that expected for this user?`);
    return q;
  },
  notes(ctx) {
    return [`Source: ${scopeWord(ctx)}${ctx.facts.ips.length > 0 ? ` (${ipsWithScope(ctx).join(', ')})` : ''}.`];
  },
  evidence: [
    { query: 'signin-success-after-failures', when: 'always' },
    { query: 'ip-reputation', when: 'external-ip' },
    { query: 'whois', when: 'external-ip' },
    { query: 'proxy-fanout-internal', when: 'internal-only' },
    { query: 'dmz-inbound', when: 'rule-severity-high' },
  ],
  limits: ['Sign-ins to systems whose authentication logs are not collected are not seen.'],
  firstReport(ctx) {
    return renderFirstReport(unauthorizedAccess, ctx);
  },
};

/**
 * The scopes of the alert's addresses, as the policy names them (`dmz` stays `dmz`: the runbook's
 * K5-1 step is about traffic from the DMZ inwards, so calling a DMZ source "internal" misleads).
 */
function scopeWord(ctx: Parameters<Playbook['notes']>[0]): string {
  if (ctx.facts.ips.length === 0) return 'unknown (no IP in the alert)';
  const scopes = [...new Set(ctx.facts.ips.map((i) => i.scope ?? 'unclassified'))];
  return scopes.length === 1 ? (scopes[0] as string) : `${scopes.join(' and ')} addresses`;
}
