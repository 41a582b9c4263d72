/**
 * Explainable severity. Steps, in order, each recorded in `reasons` when it
 * applies (with from/to):
 * 1. base — the playbook's base severity (seed §6 levels), effect `set`;
 * 2. policy rule — the tenant's rule entry severity (`rules.K1-1.severity`): the
 *    customer's runbook, so it may raise OR lower;
 * 3. indicators — a known-bad entity (tenant blacklist, global indicator set, or
 *    enrichment evidence) raises to at least MEDIUM and never lowers. A floor
 *    rather than "+1 level" keeps the seed's "reputation hit → medium" true and
 *    does not turn every brute force from a listed scanner into critical;
 * 4. correlation — a multi-stage verdict raises to at least HIGH and never lowers
 *    (seed §5: at high and critical a senior engineer investigates; a multi-stage
 *    attack needs that whatever its parts' levels). A floor, not "+1 level": a chain
 *    is flagged on the case of it that arrives last (the earlier ones are not judged
 *    again), so "+1" made the chain's highest severity depend on arrival order —
 *    brute force (high) then C2 (medium) peaked at high in time order and at
 *    critical when the brute force arrived second. With a floor the chain peaks at
 *    max(its cases' own levels, high) in every order.
 * Every step sets a level or raises to a floor on the scale, so none can leave it: nothing is clamped.
 */

import { compareSeverity, type Evidence, type KillChainVerdict, type Severity, type SeverityReason } from '../model/domain';
import { INDICATOR_EVIDENCE_SOURCES, type IndicatorHit } from '../triage/indicators';

/** Input of the scoring steps. */
export interface ScoreInput {
  /** Playbook id (for the base reason's rule name). */
  readonly playbook: string;
  readonly base: { readonly severity: Severity; readonly detail: string };
  /** The policy rule code and its severity, when the rule entry sets one. */
  readonly rule?: { readonly code: string; readonly severity: Severity } | undefined;
  readonly indicatorHits: readonly IndicatorHit[];
  readonly evidence: readonly Evidence[];
  readonly verdict: KillChainVerdict;
}

/** Severity and the steps that produced it. */
export interface SeverityOutcome {
  readonly severity: Severity;
  readonly reasons: readonly SeverityReason[];
}

/** The severity an indicator hit raises to at least. */
const INDICATOR_FLOOR: Severity = 'medium';

/** The severity a multi-stage kill-chain verdict raises to at least (see step 4). */
const MULTI_STAGE_FLOOR: Severity = 'high';

/** `sev`, raised to `floor` when below it (a floor never lowers). */
function atLeast(sev: Severity, floor: Severity): Severity {
  return compareSeverity(sev, floor) < 0 ? floor : sev;
}

const MAX_LISTED = 3;

function effectOf(from: Severity, to: Severity): SeverityReason['effect'] {
  const d = compareSeverity(to, from);
  return d > 0 ? 'raise' : d < 0 ? 'lower' : 'keep';
}

function isIndicatorEvidence(e: Evidence): boolean {
  return e.status === 'found' && (INDICATOR_EVIDENCE_SOURCES as readonly string[]).includes(e.source);
}

/** Runs the scoring steps. Pure. */
export function scoreSeverity(input: ScoreInput): SeverityOutcome {
  const reasons: SeverityReason[] = [];
  let sev = input.base.severity;
  reasons.push({ rule: `playbook:${input.playbook}`, effect: 'set', to: sev, detail: input.base.detail });

  if (input.rule) {
    const to = input.rule.severity;
    reasons.push({
      rule: `policy:rules.${input.rule.code}`,
      effect: effectOf(sev, to),
      from: sev,
      to,
      detail: `the tenant's runbook sets rule ${input.rule.code} to ${to}`,
    });
    sev = to;
  }

  const evidenceHits = input.evidence.filter(isIndicatorEvidence);
  if (input.indicatorHits.length > 0 || evidenceHits.length > 0) {
    const to = atLeast(sev, INDICATOR_FLOOR);
    const listed = [
      ...input.indicatorHits.map((h) => `${h.key} on ${h.source}${h.category ? ` (${h.category})` : ''}`),
      ...evidenceHits.map((e) => `${e.source}: ${e.finding}`),
    ];
    const shown = listed.slice(0, MAX_LISTED).join('; ') + (listed.length > MAX_LISTED ? `; +${listed.length - MAX_LISTED} more` : '');
    reasons.push({
      rule: 'indicator-hit',
      effect: effectOf(sev, to),
      from: sev,
      to,
      detail: `known-bad indicator (at least ${INDICATOR_FLOOR}): ${shown}`,
    });
    sev = to;
  }

  if (input.verdict.multiStage) {
    const to = atLeast(sev, MULTI_STAGE_FLOOR);
    reasons.push({
      rule: 'kill-chain',
      effect: effectOf(sev, to),
      from: sev,
      to,
      detail: `${input.verdict.detail ?? `multi-stage: phases ${input.verdict.phases.join(' → ')}`} (a multi-stage attack is at least ${MULTI_STAGE_FLOOR}${to === sev ? `; already ${sev}` : ''})`,
    });
    sev = to;
  }

  return { severity: sev, reasons };
}
