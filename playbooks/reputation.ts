/**
 * Reputation hit (seed §6): traffic to or from a known-bad address, domain or
 * file. First report medium; WHOIS and third-party reputation rule out false
 * positives.
 */
import { recognitionTexts, ruleNameMatch } from './recognition';
import { clean, renderFirstReport, subjectHost } from './report';
import type { Playbook } from './types';

/** The reputation playbook. */
export const reputation: Playbook = {
  id: 'reputation',
  title: 'Reputation hit',
  summary: 'An address, domain or file of the case is on a threat-indicator list (known-bad source or destination).',
  recognition: {
    ruleNamePatterns: [
      /\bTI map\b/i,
      /\bthreat intel(ligence)?\b/i,
      /\b(known|listed)\s+(bad|malicious|botnet|c2|c&c|malware)\b/i,
      /\b(black|block|deny)list(ed)?\b/i,
      /\breputation\b/i,
    ],
    techniques: [],
    tactics: [],
    indicatorHit: true,
  },
  impliedPhases: ['command-and-control'],
  defaultScenario: 'c2-communication',
  nominalSeverity: 'medium',
  baseSeverity(ctx) {
    // The seed's level (medium) stands when a runbook entry (K3-1) or the rule name ("TI map …")
    // says this is a reputation hit. Only a case chosen because an entity is listed, and by
    // nothing else (classification step 5: no rule entry, no name pattern, and this playbook has
    // no ATT&CK ids), keeps the provider's higher judgement, so an indicator hit never lowers a case.
    // The name check repeats step 2 for this playbook (the Classification carries no step): it is
    // pure and runs only for the rare high/critical case without a rule entry.
    const p = ctx.case.providerSeverity;
    if (
      (p === 'high' || p === 'critical') &&
      ctx.classification.ruleCode === undefined &&
      ruleNameMatch(reputation.recognition, recognitionTexts(ctx.case)) === undefined
    ) {
      return {
        severity: p,
        detail: `reputation hit chosen by an indicator hit alone: medium per the runbook, but the provider rated it ${p} and no rule entry or rule name pins it`,
      };
    }
    return { severity: 'medium', detail: 'reputation hit: medium per the runbook' };
  },
  confirm(ctx) {
    const listed = ctx.facts.indicatorHits.map((h) => clean(h.key, 120));
    const host = subjectHost(ctx);
    const q = [
      `Is ${listed.length > 0 ? listed.join(', ') : 'the flagged address'} a known business partner or service of yours (possible false positive)?`,
    ];
    if (host) q.push(`Did ${host} intentionally connect to it?`);
    return q;
  },
  notes(ctx) {
    return ctx.facts.indicatorHits.map(
      (h) =>
        `Listed: ${clean(h.key, 120)} on ${clean(h.source, 60)}${h.category ? ` (${clean(h.category, 60)})` : ''}${h.description ? `: ${clean(h.description, 160)}` : ''}`,
    );
  },
  evidence: [
    { query: 'whois', when: 'always' },
    { query: 'ip-reputation', when: 'always' },
    { query: 'proxy-domain-success', when: 'always' },
  ],
  limits: ['Indicator lists lag behind new infrastructure: an unlisted address is not proof of safety.'],
  firstReport(ctx) {
    return renderFirstReport(reputation, ctx);
  },
};
