/**
 * Generic fallback: a detection no other playbook recognises. Keeps the
 * provider's severity and asks the customer to review it.
 */
import { renderFirstReport } from './report';
import type { Playbook } from './types';

/** The generic playbook. */
export const generic: Playbook = {
  id: 'generic',
  title: 'Security alert',
  summary: 'Any detection no other playbook recognises: triaged at the provider severity.',
  recognition: { ruleNamePatterns: [], techniques: [], tactics: [], indicatorHit: false },
  impliedPhases: [],
  nominalSeverity: 'provider',
  baseSeverity(ctx) {
    return { severity: ctx.case.providerSeverity, detail: `no specific playbook: provider severity ${ctx.case.providerSeverity}` };
  },
  confirm() {
    return ['Is this activity expected in your environment?'];
  },
  notes() {
    return [];
  },
  evidence: [
    { query: 'ip-reputation', when: 'external-ip' },
    { query: 'whois', when: 'external-ip' },
  ],
  limits: ['No category-specific checks apply; the SOC reviews the alert manually.'],
  firstReport(ctx) {
    return renderFirstReport(generic, ctx);
  },
};
