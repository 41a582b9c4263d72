/**
 * Playbook selection. Steps, first match wins:
 * 1. the tenant's rule map (`policy.rules`): a key matches an alert's rule id
 *    exactly (case-insensitive; GUID, ARM id or its last segment, or a code such as
 *    `K4-1`), or is the prefix of a rule name, alert name or the case title
 *    (leading brackets/spaces skipped; the prefix must end at a word boundary, so
 *    `K1-1` does not match "K1-10 …"). When several rules match (an incident merging
 *    K1-1 and K5-1 alerts), the most severe wins — the rule's own severity, else the
 *    base severity its playbook gives THIS case — so merging never under-triages; ties
 *    keep match order;
 * 2. playbook rule-name patterns;
 * 3. ATT&CK techniques (sub-technique `T1059.001` matches `T1059`);
 * 4. ATT&CK tactics;
 * 5. an indicator hit on any entity → reputation;
 * 6. `generic`.
 * In steps 2–4, of the playbooks that match, the one whose base severity for this case
 * is highest wins, ties by playbook priority (`PLAYBOOK_IDS` order, most severe nominal
 * base first). Not the nominal level alone: command execution is medium on a
 * maintenance terminal, and an incident merging it with a brute force (high) was
 * reported medium.
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
const indicatorPlaybook = RECOGNISERS.find((p) => p.recognition.indicatorHit);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

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

/**
 * The base severity a playbook gives this case (what scoring starts from), for choosing among
 * several matching playbooks. `ruleCode` as the classification would carry it (the reputation hit
 * keeps a provider's higher level only without one).
 */
function baseLevel(pb: Playbook, c: Case, p: CompiledPolicy, facts: CaseFacts, ruleCode?: string): Severity {
  const classification: Mutable<Classification> = { playbook: pb.id, classifiedBy: '' };
  if (ruleCode !== undefined) classification.ruleCode = ruleCode;
  return pb.baseSeverity({ case: c, classification, facts, policy: p.policy }).severity;
}

/** The severity a matched rule entry gives this case: its own, else its playbook's base (generic, the provider's, for an unknown one). */
function ruleLevel(rule: RuleRef, c: Case, p: CompiledPolicy, facts: CaseFacts): Severity {
  return rule.entry.severity ?? baseLevel(getPlaybook(rule.entry.playbook), c, p, facts, rule.key);
}

function matchPolicyRules(c: Case, p: CompiledPolicy, facts: CaseFacts): { rule: RuleRef; how: string } | undefined {
  if (p.rulesByLength.length === 0) return undefined;
  // Matches are considered in the order found (rule ids, then name prefixes longest key first);
  // the first of the most severe wins. Kept as a running best, with the matched keys in a small
  // array (a case matches one or two rules), so nothing is allocated per candidate; a level is
  // worked out only once a second rule matches (one match, the usual case, needs none).
  let best: RuleRef | undefined;
  let bestHow = '';
  let bestSeverity: Severity | undefined;
  const seen: string[] = [];
  const consider = (rule: RuleRef, how: string): void => {
    seen.push(rule.lower);
    if (best === undefined) {
      best = rule;
      bestHow = how;
      return;
    }
    bestSeverity ??= ruleLevel(best, c, p, facts);
    const severity = ruleLevel(rule, c, p, facts);
    if (compareSeverity(severity, bestSeverity) > 0) {
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

/**
 * Of the recognisers (priority order) that `match`, the first with the highest base severity for
 * this case. RECOGNISERS are in descending nominal order and, in steps 2–4, no playbook's base
 * exceeds its nominal level (only the reputation hit's can, and only when no name pattern chose it;
 * it has no techniques or tactics), so the search stops at the first playbook whose nominal level
 * is not above the best base found: usually right after the first match, at the cost of one
 * `baseSeverity` call. Only a first match below its nominal level (command execution on a
 * maintenance terminal) makes it try the next playbooks.
 */
function mostSevereMatch<T>(
  match: (pb: Playbook) => T | undefined,
  level: (pb: Playbook) => Severity,
): { readonly pb: Playbook; readonly value: T } | undefined {
  let best: { pb: Playbook; value: T } | undefined;
  let bestLevel: Severity | undefined;
  for (const pb of RECOGNISERS) {
    if (bestLevel !== undefined && pb.nominalSeverity !== 'provider' && compareSeverity(pb.nominalSeverity, bestLevel) <= 0) break;
    const value = match(pb);
    if (value === undefined) continue;
    const l = level(pb);
    if (bestLevel === undefined || compareSeverity(l, bestLevel) > 0) {
      best = { pb, value };
      bestLevel = l;
    }
  }
  return best;
}

function byRuleName(c: Case, level: (pb: Playbook) => Severity): { pb: Playbook; value: string } | undefined {
  const texts = recognitionTexts(c);
  return mostSevereMatch((pb) => ruleNameMatch(pb.recognition, texts), level);
}

/**
 * Of the playbooks owning some value of the case's alerts (`values`, each matched by `owner` to its
 * playbook and the value as shown), the most severe for this case; each playbook's first value is kept.
 */
function byOwnedValue(
  c: Case,
  values: (a: Case['alerts'][number]) => readonly string[],
  owner: (v: string) => { pb: Playbook; shown: string } | undefined,
  level: (pb: Playbook) => Severity,
): { pb: Playbook; value: string } | undefined {
  let found: Map<string, string> | undefined;
  for (const a of c.alerts) {
    for (const v of values(a)) {
      const o = owner(v);
      if (o === undefined || found?.has(o.pb.id)) continue;
      found ??= new Map();
      found.set(o.pb.id, o.shown);
    }
  }
  if (found === undefined) return undefined;
  const owned = found;
  return mostSevereMatch((pb) => owned.get(pb.id), level);
}

/** Owner of an ATT&CK technique (a sub-technique `T1059.001` falls back to `T1059`), shown upper-case. */
function techniqueOf(t: string): { pb: Playbook; shown: string } | undefined {
  const id = t.trim().toUpperCase();
  const pb = techniqueOwner.get(id) ?? techniqueOwner.get(id.split('.')[0] ?? id);
  return pb && { pb, shown: id };
}

/** Owner of an ATT&CK tactic, shown as written. */
function tacticOf(t: string): { pb: Playbook; shown: string } | undefined {
  const pb = tacticOwner.get(normalizeTactic(t));
  return pb && { pb, shown: t };
}

function result(pb: Playbook, via: ClassificationStep, classifiedBy: string, scenario?: string): Mutable<BrainClassification> {
  // Optional keys are set only when present (no conditional spreads: they are slow on this path).
  const out: Mutable<BrainClassification> = { playbook: pb.id, classifiedBy, via };
  const s = scenario ?? pb.defaultScenario;
  if (s) out.scenario = s;
  return out;
}

/** Chooses the playbook of a case (see the module comment for the order). Pure. */
export function classifyCase(c: Case, p: CompiledPolicy, facts: CaseFacts): BrainClassification {
  const policyMatch = matchPolicyRules(c, p, facts);
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
  const level = (pb: Playbook): Severity => baseLevel(pb, c, p, facts);
  const named = byRuleName(c, level);
  if (named) return result(named.pb, 'rule-name', `rule name "${clean(named.value, 80)}" (${named.pb.id})`);
  const tech = byOwnedValue(c, (a) => a.techniques, techniqueOf, level);
  if (tech) return result(tech.pb, 'technique', `technique ${clean(tech.value, 20)} (${tech.pb.id})`);
  const tactic = byOwnedValue(c, (a) => a.tactics, tacticOf, level);
  if (tactic) return result(tactic.pb, 'tactic', `tactic ${clean(tactic.value, 40)} (${tactic.pb.id})`);
  const hit = facts.indicatorHits[0];
  if (hit && indicatorPlaybook) {
    return result(indicatorPlaybook, 'indicator', `indicator hit ${clean(hit.key, 120)} (${clean(hit.source, 60)})`);
  }
  return result(getPlaybook('generic'), 'fallback', 'fallback');
}
