/**
 * Playbook selection. Steps, first match wins:
 * 1. the tenant's rule map (`policy.rules`): a key matches an alert's rule id
 *    exactly (case-insensitive; GUID, ARM id or its last segment, or a code such as
 *    `K4-1`), or is the prefix of a rule name, alert name or the case title
 *    (leading brackets/spaces skipped; the prefix must end at a word boundary, so
 *    `K1-1` does not match "K1-10 …"). When several rules match (an incident merging
 *    K1-1 and K5-1 alerts), the most severe wins — the rule's own severity, else the
 *    playbook's nominal one — so merging never under-triages; ties keep match order;
 * 2. playbook rule-name patterns (playbook priority order);
 * 3. ATT&CK techniques (sub-technique `T1059.001` matches `T1059`), best playbook priority;
 * 4. ATT&CK tactics, best playbook priority;
 * 5. an indicator hit on any entity → reputation;
 * 6. `generic`.
 * Playbook priority is `PLAYBOOK_IDS` order (most severe nominal base first).
 */
import { findPlaybook, getPlaybook, PLAYBOOKS } from '../../playbooks';
import { recognitionTexts, ruleNameMatch } from '../../playbooks/recognition';
import { clean } from '../../playbooks/report';
import type { Playbook } from '../../playbooks/types';
import { normalizeTactic } from '../correlation/killchain';
import { type Case, compareSeverity, type Severity } from '../model/domain';
import type { Classification } from '../pipeline/brain';
import type { CompiledPolicy, RuleRef } from './compiled';
import type { CaseFacts } from './facts';

/** Which step chose the playbook. */
export const CLASSIFICATION_STEPS = ['policy', 'rule-name', 'technique', 'tactic', 'indicator', 'fallback'] as const;
/** A classification step. */
export type ClassificationStep = (typeof CLASSIFICATION_STEPS)[number];

/** A classification with the step that produced it. */
export interface BrainClassification extends Classification {
  readonly via: ClassificationStep;
}

const RECOGNISERS = PLAYBOOKS.filter((p) => p.id !== 'generic');
const techniqueOwner = new Map<string, Playbook>();
const tacticOwner = new Map<string, Playbook>();
for (const pb of RECOGNISERS) {
  for (const t of pb.recognition.techniques) if (!techniqueOwner.has(t.toUpperCase())) techniqueOwner.set(t.toUpperCase(), pb);
  for (const t of pb.recognition.tactics) if (!tacticOwner.has(normalizeTactic(t))) tacticOwner.set(normalizeTactic(t), pb);
}
const priority = new Map<string, number>(PLAYBOOKS.map((p, i) => [p.id, i]));
const indicatorPlaybook = RECOGNISERS.find((p) => p.recognition.indicatorHit);

/** ASCII letter or digit (what `/[a-z0-9]/i` matches); NaN (past the end) is not. */
function isWordCode(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** Strips leading brackets, spaces and similar so "[K4-1] Brute force" starts with "k4-1". */
function nameForPrefix(s: string): string {
  // Most names start with the rule code itself: no regex needed to strip nothing.
  return (isWordCode(s.charCodeAt(0)) ? s : s.replace(/^[\s[\](){}<>#:|-]+/, '')).toLowerCase();
}

function startsWithKey(name: string, key: string): boolean {
  if (!name.startsWith(key)) return false;
  // A key ending in a word character must not run into more word characters ("K1-1" vs "K1-10").
  return !isWordCode(key.charCodeAt(key.length - 1)) || !isWordCode(name.charCodeAt(key.length));
}

function nominal(rule: RuleRef, c: Case): Severity {
  if (rule.entry.severity) return rule.entry.severity;
  const pb = findPlaybook(rule.entry.playbook);
  if (!pb || pb.nominalSeverity === 'provider') return c.providerSeverity;
  return pb.nominalSeverity;
}

function matchPolicyRules(c: Case, p: CompiledPolicy): { rule: RuleRef; how: string } | undefined {
  if (p.rulesByLength.length === 0) return undefined;
  // Matches are considered in the order found (rule ids, then name prefixes longest key first);
  // the first of the most severe wins. Kept as a running best, with the matched keys in a small
  // array (a case matches one or two rules), so nothing is allocated per candidate.
  let best: RuleRef | undefined;
  let bestHow = '';
  let bestSeverity: Severity | undefined;
  const seen: string[] = [];
  const consider = (rule: RuleRef, how: string): void => {
    seen.push(rule.lower);
    const severity = nominal(rule, c);
    if (bestSeverity === undefined || compareSeverity(severity, bestSeverity) > 0) {
      best = rule;
      bestHow = how;
      bestSeverity = severity;
    }
  };
  for (const a of c.alerts) {
    for (const id of a.ruleIds) {
      const lower = id.trim().toLowerCase();
      const slash = lower.lastIndexOf('/');
      const rule = p.rulesByKey.get(lower) ?? (slash >= 0 ? p.rulesByKey.get(lower.slice(slash + 1)) : undefined);
      if (rule && !seen.includes(rule.lower)) consider(rule, 'rule id');
    }
  }
  const names = recognitionTexts(c);
  for (let i = 0; i < names.length; i++) names[i] = nameForPrefix(names[i] ?? '');
  for (const rule of p.rulesByLength) {
    if (seen.includes(rule.lower)) continue;
    for (const n of names) {
      if (startsWithKey(n, rule.lower)) {
        consider(rule, 'name prefix');
        break;
      }
    }
  }
  return best ? { rule: best, how: bestHow } : undefined;
}

function byRuleName(c: Case): { pb: Playbook; text: string } | undefined {
  const texts = recognitionTexts(c);
  for (const pb of RECOGNISERS) {
    const text = ruleNameMatch(pb.recognition, texts);
    if (text !== undefined) return { pb, text };
  }
  return undefined;
}

function byTechnique(c: Case): { pb: Playbook; technique: string } | undefined {
  let best: { pb: Playbook; technique: string } | undefined;
  for (const a of c.alerts) {
    for (const t of a.techniques) {
      const id = t.trim().toUpperCase();
      const pb = techniqueOwner.get(id) ?? techniqueOwner.get(id.split('.')[0] ?? id);
      if (pb && (!best || (priority.get(pb.id) ?? 99) < (priority.get(best.pb.id) ?? 99))) best = { pb, technique: id };
    }
  }
  return best;
}

function byTactic(c: Case): { pb: Playbook; tactic: string } | undefined {
  let best: { pb: Playbook; tactic: string } | undefined;
  for (const a of c.alerts) {
    for (const t of a.tactics) {
      const pb = tacticOwner.get(normalizeTactic(t));
      if (pb && (!best || (priority.get(pb.id) ?? 99) < (priority.get(best.pb.id) ?? 99))) best = { pb, tactic: t };
    }
  }
  return best;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function result(pb: Playbook, via: ClassificationStep, classifiedBy: string, scenario?: string): Mutable<BrainClassification> {
  // Optional keys are set only when present (no conditional spreads: they are slow on this path).
  const out: Mutable<BrainClassification> = { playbook: pb.id, classifiedBy, via };
  const s = scenario ?? pb.defaultScenario;
  if (s) out.scenario = s;
  return out;
}

/** Chooses the playbook of a case (see the module comment for the order). Pure. */
export function classifyCase(c: Case, p: CompiledPolicy, facts: CaseFacts): BrainClassification {
  const policyMatch = matchPolicyRules(c, p);
  if (policyMatch) {
    const { rule, how } = policyMatch;
    const known = findPlaybook(rule.entry.playbook);
    const pb = known ?? getPlaybook('generic');
    const by = known
      ? `policy rule ${rule.key} (${how})`
      : `policy rule ${rule.key} (${how}) names unknown playbook "${clean(rule.entry.playbook, 60)}": generic used`;
    const out = result(pb, 'policy', by, rule.entry.scenario);
    out.ruleCode = rule.key;
    if (rule.entry.severity) out.ruleSeverity = rule.entry.severity;
    return out;
  }
  const named = byRuleName(c);
  if (named) return result(named.pb, 'rule-name', `rule name "${clean(named.text, 80)}" (${named.pb.id})`);
  const tech = byTechnique(c);
  if (tech) return result(tech.pb, 'technique', `technique ${clean(tech.technique, 20)} (${tech.pb.id})`);
  const tactic = byTactic(c);
  if (tactic) return result(tactic.pb, 'tactic', `tactic ${clean(tactic.tactic, 40)} (${tactic.pb.id})`);
  const hit = facts.indicatorHits[0];
  if (hit && indicatorPlaybook) {
    return result(indicatorPlaybook, 'indicator', `indicator hit ${clean(hit.key, 120)} (${clean(hit.source, 60)})`);
  }
  return result(getPlaybook('generic'), 'fallback', 'fallback');
}
