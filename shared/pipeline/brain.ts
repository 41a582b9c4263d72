/**
 * The judgement the pipeline delegates: which playbook, which kill-chain phases,
 * what severity and why. Implementations are pure (no I/O): the pipeline fetches
 * correlation candidates from the store and hands them in.
 */
import type { ResolvedPolicy } from '../config/policy';
import type { Case, Evidence, KillChainPhase, KillChainVerdict, NistLevel, Severity, SeverityReason } from '../model/domain';
import type { EntitySighting } from '../store/port';

/** The playbook chosen for a case and why. */
export interface Classification {
  /** Playbook id (`brute-force`, `command-execution`, …, `generic`). */
  readonly playbook: string;
  /** Human-readable: `policy rule K4-1`, `rule name "…"`, `technique T1110`, `fallback`. */
  readonly classifiedBy: string;
  /** Policy rule code that matched, when any (`K4-1`). */
  readonly ruleCode?: string;
  /** Severity forced by the policy rule entry, when any. */
  readonly ruleSeverity?: Severity;
  /** Scenario name for the NIST threat level lookup, when known. */
  readonly scenario?: string;
}

/** What the pipeline must look up for correlation. */
export interface CorrelationPlan {
  /** Entity keys of the case (already without non-correlating ones): what its sightings are indexed under. */
  readonly keys: readonly string[];
  /**
   * The keys to look up in the store: the subset of `keys` worth a look-up (it finds the same related cases as all of
   * them) plus, under a tenant `directory`, the accounts' alias keys, which are looked up but never stored, so they
   * are not in `keys`.
   */
  readonly lookup: readonly string[];
  /** Keys left out by policy, with why. */
  readonly ignored: readonly { key: string; why: string }[];
  /** Look-up window around `detectedAt` in milliseconds (before and after: order-independent). */
  readonly windowMs: number;
  /** Other cases per entity (over all its keys) or per key beyond which the entity is treated as infrastructure. */
  readonly infrastructureThreshold: number;
  /** Kill-chain phases of this case itself (indexed with its entity keys). */
  readonly phases: readonly KillChainPhase[];
}

/** The scored verdict. */
export interface Scored {
  readonly severity: Severity;
  readonly reasons: readonly SeverityReason[];
  readonly threatLevel?: NistLevel;
  /** First-report text (plain text; channels escape it for their format). */
  readonly firstReport: string;
}

/** The triage brain. */
export interface Brain {
  classify(c: Case, policy: ResolvedPolicy): Classification;
  planCorrelation(c: Case, cls: Classification, policy: ResolvedPolicy): CorrelationPlan;
  /**
   * `sightings` are the store rows for the plan's keys; `saturated` the keys the store reported
   * at or over the infrastructure bound without rows (treated as infrastructure).
   */
  correlate(
    c: Case,
    plan: CorrelationPlan,
    sightings: readonly EntitySighting[],
    policy: ResolvedPolicy,
    saturated?: readonly string[],
  ): KillChainVerdict;
  score(c: Case, cls: Classification, verdict: KillChainVerdict, evidence: readonly Evidence[], policy: ResolvedPolicy): Scored;
}
