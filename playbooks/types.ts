/**
 * The shape of a playbook: one risk category of the seed's first-line analysis
 * (seed-digest §6) as data plus two small pure functions (base severity, first
 * report). Playbooks never do I/O; evidence queries are declared by id and run by
 * the enrichment/investigation steps.
 */
import type { TenantPolicy } from '../shared/config/policy';
import type { Case, KillChainPhase, KillChainVerdict, NistLevel, Severity, SeverityReason } from '../shared/model/domain';
import type { Classification } from '../shared/pipeline/brain';
import type { CaseFacts } from '../shared/triage/facts';
import type { EvidenceQueryId } from './evidence';

/** Playbook ids, in classification priority order (most severe nominal base first; generic last). */
export const PLAYBOOK_IDS = [
  'command-execution',
  'brute-force',
  'lateral-movement',
  'unauthorized-access',
  'reputation',
  'suspicious-communication',
  'generic',
] as const;
/** A playbook id. */
export type PlaybookId = (typeof PLAYBOOK_IDS)[number];

/** When a declared evidence query applies to a case. */
export const EVIDENCE_CONDITIONS = ['always', 'external-ip', 'internal-only', 'rule-severity-high'] as const;
/**
 * - `always`;
 * - `external-ip`: some IP entity of the case is external (reputation, WHOIS);
 * - `internal-only`: the case has IP entities and all are internal/DMZ (check for spread);
 * - `rule-severity-high`: the tenant's rule entry sets high or critical (the seed's K5-1 type).
 */
export type EvidenceCondition = (typeof EVIDENCE_CONDITIONS)[number];

/** One recommended next check of a playbook. */
export interface EvidenceStep {
  readonly query: EvidenceQueryId;
  readonly when: EvidenceCondition;
}

/** How a playbook is recognised when the tenant's rule map does not name it. */
export interface Recognition {
  /** Tested against analytic rule names, alert names and the case title. */
  readonly ruleNamePatterns: readonly RegExp[];
  /** ATT&CK technique ids (parents; `T1059` also matches `T1059.001`). */
  readonly techniques: readonly string[];
  /** ATT&CK tactics, PascalCase (`Execution`). */
  readonly tactics: readonly string[];
  /** Chosen when an entity of the case is on a blacklist / indicator list (reputation). */
  readonly indicatorHit: boolean;
}

/** What a playbook sees to decide its base severity and questions. */
export interface PlaybookContext {
  readonly case: Case;
  readonly classification: Classification;
  readonly facts: CaseFacts;
  readonly policy: TenantPolicy;
}

/** A playbook's base severity with its explanation. */
export interface BaseSeverity {
  readonly severity: Severity;
  /** Why, in one readable sentence (goes into `reasons[0].detail`). */
  readonly detail: string;
}

/** Everything the first-report builder may use. */
export interface ReportContext extends PlaybookContext {
  readonly severity: Severity;
  readonly reasons: readonly SeverityReason[];
  readonly verdict: KillChainVerdict;
  readonly threatLevel?: NistLevel | undefined;
  readonly scenario?: string | undefined;
  /** detectedAt + sla.notifyWithin, ISO 8601 UTC. */
  readonly notifyBy: string;
  /** How long after the SLA deadline the report is being built, when it is late (ms). */
  readonly lateByMs?: number | undefined;
}

/** A playbook. */
export interface Playbook {
  readonly id: PlaybookId;
  /** Short human title (`Brute force`). */
  readonly title: string;
  /** What the category is, one sentence. */
  readonly summary: string;
  readonly recognition: Recognition;
  /** Kill-chain phases assumed when the case's alerts carry no tactic/technique. */
  readonly impliedPhases: readonly KillChainPhase[];
  /** NIST scenario used for the threat level when the rule entry names none. */
  readonly defaultScenario?: string;
  /** Nominal base severity for documentation (`provider` = the source's own severity). */
  readonly nominalSeverity: Severity | 'provider';
  /** Base severity per the seed's first-report levels. */
  baseSeverity(ctx: PlaybookContext): BaseSeverity;
  /** What the customer is asked to confirm (plain text, one question per entry). */
  confirm(ctx: PlaybookContext): string[];
  /** Playbook-specific lines for the report (e.g. the DMZ management device named). */
  notes(ctx: PlaybookContext): string[];
  /** Recommended next checks, run later by investigation. */
  readonly evidence: readonly EvidenceStep[];
  /** What this category cannot see (seed §4: say it honestly). */
  readonly limits: readonly string[];
  /** Builds the first report (plain text; channels escape it for their format). */
  firstReport(ctx: ReportContext): string;
}
