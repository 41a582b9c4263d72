/**
 * The texts a playbook's rule-name patterns are tested against, shared by classification
 * (`shared/triage/classify.ts`, step 2) and by playbooks that must know whether their own
 * name patterns chose a case (the reputation hit keeps a provider's higher level only when
 * they did not).
 */
import type { Case } from '../shared/model/domain';
import type { Recognition } from './types';

/** Each alert's analytic rule names and alert name, then the case title (a fresh array: callers may rewrite it). */
export function recognitionTexts(c: Case): string[] {
  const out: string[] = [];
  for (const a of c.alerts) {
    for (const n of a.ruleNames) out.push(n);
    out.push(a.name);
  }
  out.push(c.title);
  return out;
}

/**
 * The first of `texts` (a case's `recognitionTexts`, built once by the caller: classification tries
 * every playbook on them) that one of the rule-name patterns matches, in pattern order.
 */
export function ruleNameMatch(recognition: Recognition, texts: readonly string[]): string | undefined {
  for (const re of recognition.ruleNamePatterns) {
    const text = texts.find((t) => re.test(t));
    if (text !== undefined) return text;
  }
  return undefined;
}
