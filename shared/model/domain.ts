/**
 * Domain types shared by every layer. Inputs are validated into these at the
 * edge (see `shared/model/parse.ts`); nothing past the edge sees raw JSON.
 */

/** Severity scale, lowest first (index order is the order compareSeverity uses). */
export const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'] as const;
/** A triage severity. */
export type Severity = (typeof SEVERITIES)[number];

/** Compares two severities: negative when a < b. */
export function compareSeverity(a: Severity, b: Severity): number {
  return SEVERITIES.indexOf(a) - SEVERITIES.indexOf(b);
}

/** Entity kinds the product understands. */
export const ENTITY_KINDS = ['ip', 'host', 'account', 'url', 'domain', 'filehash', 'process', 'file', 'mailbox', 'cloud-app'] as const;
/** An entity kind. */
export type EntityKind = (typeof ENTITY_KINDS)[number];

/**
 * An entity (IP, host, account, …) with canonical keys.
 * `key` is `kind:canonical` (e.g. `ip:203.0.113.77`, `host:vpn01.corp.contoso.example`,
 * `account:k.tanaka@contoso.example`, `filehash:sha256:…`); `altKeys` are other
 * canonical spellings of the same thing (`host:vpn01`, `account:contoso\\k.tanaka`)
 * used for correlation.
 */
export interface Entity {
  readonly kind: EntityKind;
  readonly key: string;
  readonly altKeys: readonly string[];
  /** Short display label (already the canonical value; attacker-controlled, escape on output). */
  readonly label: string;
  /** Selected typed fields from the source (address, hostName, commandLine, …). */
  readonly fields: Readonly<Record<string, string | number | boolean>>;
}

/** The input shapes the product accepts. */
export const INPUT_SHAPES = ['incident', 'security-alert', 'eventhub-envelope', 'generic'] as const;
/** An input shape. */
export type InputShape = (typeof INPUT_SHAPES)[number];

/** One detection. */
export interface Alert {
  /** SystemAlertId (Sentinel) or the source's alert id (generic). */
  readonly id: string;
  /** Log Analytics workspace id the alert belongs to. */
  readonly tenantId: string;
  readonly name: string;
  readonly description?: string;
  /** Analytic rule ids (GUIDs or ARM ids) and policy rule codes such as `K4-1` found in the alert. */
  readonly ruleIds: readonly string[];
  /** Analytic rule display names (used for name-prefix rule matching). */
  readonly ruleNames: readonly string[];
  readonly productName: string;
  readonly providerSeverity: Severity;
  /** ATT&CK tactics, PascalCase as Sentinel spells them (`CredentialAccess`). */
  readonly tactics: readonly string[];
  /** ATT&CK technique ids, sub-techniques included (`T1059`, `T1059.001`). */
  readonly techniques: readonly string[];
  readonly entities: readonly Entity[];
  readonly startTime: string;
  readonly endTime: string;
  /** When the detection was generated: the SLA clock starts here. ISO 8601 UTC. */
  readonly detectedAt: string;
}

/** Reference to the Sentinel incident behind a case. */
export interface SentinelRef {
  readonly incidentArmId: string;
  readonly incidentName: string;
  readonly incidentNumber?: number;
  readonly etag?: string;
  readonly url?: string;
  readonly status?: string;
  readonly lastModifiedTimeUtc: string;
}

/** The unit of triage: an incident with its alerts, or one stand-alone alert. */
export interface Case {
  readonly caseId: string;
  readonly tenantId: string;
  readonly source: 'incident' | 'alert';
  readonly shape: InputShape;
  readonly sentinel?: SentinelRef;
  readonly title: string;
  readonly description?: string;
  readonly providerSeverity: Severity;
  readonly alerts: readonly Alert[];
  /** Entities of the case, deduplicated by key. */
  readonly entities: readonly Entity[];
  readonly detectedAt: string;
  readonly receivedAt: string;
  /**
   * Orders revisions of the same case: the incident's `lastModifiedTimeUtc`, or
   * the alert's generation time. A delivery with an older revisionKey is stale.
   */
  readonly revisionKey: string;
  /** Hash of the normalised content (excluding receivedAt): same hash = same delivery. */
  readonly fingerprint: string;
}

/** Kill-chain phases (Lockheed Martin, with actions-on-objectives split as in the seed). */
export const KILL_CHAIN_PHASES = [
  'reconnaissance',
  'weaponization',
  'delivery',
  'exploitation',
  'installation',
  'command-and-control',
  'lateral-movement',
  'actions-on-objectives',
] as const;
/** A kill-chain phase. */
export type KillChainPhase = (typeof KILL_CHAIN_PHASES)[number];

/** NIST SP 800-30 qualitative scale. */
export const NIST_LEVELS = ['very-low', 'low', 'moderate', 'high', 'very-high'] as const;
/** A NIST SP 800-30 qualitative level. */
export type NistLevel = (typeof NIST_LEVELS)[number];

/** One step that moved (or confirmed) severity, with before/after and why. */
export interface SeverityReason {
  readonly rule: string;
  readonly effect: 'set' | 'raise' | 'lower' | 'keep';
  readonly from?: Severity;
  readonly to: Severity;
  readonly detail: string;
}

/** Kill-chain verdict for a case. */
export interface KillChainVerdict {
  readonly phases: readonly KillChainPhase[];
  readonly stage: KillChainPhase | null;
  readonly relatedCaseIds: readonly string[];
  readonly multiStage: boolean;
  /** Entities that were ignored for correlation, with why (policy list or automatic infrastructure rule). */
  readonly ignoredEntities: readonly { key: string; why: string }[];
  readonly detail?: string;
}

/** Names of pipeline steps in order. */
export const STEP_NAMES = [
  'parse',
  'dedupe',
  'classify',
  'enrich',
  'investigate',
  'correlate',
  'score',
  'notify',
  'write-back',
  'persist',
] as const;
/** A pipeline step name. */
export type StepName = (typeof STEP_NAMES)[number];

/** What happened in one step. */
export interface StepRecord {
  readonly step: StepName;
  readonly status: 'ok' | 'skipped' | 'failed';
  readonly detail?: string;
}

/** Evidence gathered by enrichment / investigation. */
export interface Evidence {
  readonly source: string;
  readonly query?: string;
  readonly finding: string;
  readonly status: 'found' | 'clear' | 'unavailable' | 'error';
}

/** Notification kinds. */
export const NOTIFICATION_KINDS = ['first-report', 'escalation', 'second-report'] as const;
/** A notification kind. */
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** A planned or sent notification as carried in a result. */
export interface NotificationRef {
  readonly channel: string;
  readonly to: string;
  readonly kind: NotificationKind;
  readonly at: string;
  readonly status: 'queued' | 'sent' | 'failed' | 'suppressed';
}

/** A revision that planned notifications, and the severity they announce (TriageResult.notifiedRevisions). */
export interface NotifiedRevision {
  readonly revision: number;
  readonly severity: Severity;
  /**
   * How many outbox entries it planned (absent in results written before it was kept). Only when every
   * one of them is listed as abandoned was nobody told: on Cosmos an entry's TTL runs from its last mark,
   * so an entry sent at once expires before a sibling abandoned an hour later, and the abandoned one
   * listed alone says nothing of the others.
   */
  readonly entries?: number;
}

/** The verdict of triage for one case revision: what `triage replay` prints and what the store keeps. */
export interface TriageResult {
  readonly caseId: string;
  readonly tenantId: string;
  readonly revision: number;
  readonly title: string;
  readonly source: 'incident' | 'alert';
  readonly playbook: string;
  /** How the playbook was chosen (policy rule, rule name, technique, fallback). */
  readonly classifiedBy: string;
  readonly severity: Severity;
  readonly providerSeverity: Severity;
  /** Sentinel's scale for write-back (Sentinel has no Critical: critical → High plus a tag). */
  readonly sentinelSeverity: 'Informational' | 'Low' | 'Medium' | 'High';
  readonly reasons: readonly SeverityReason[];
  readonly killChain: KillChainVerdict;
  readonly threatLevel?: NistLevel;
  readonly evidence: readonly Evidence[];
  readonly entities: readonly { key: string; kind: EntityKind; label: string }[];
  readonly firstReport?: string;
  readonly sla: {
    readonly detectedAt: string;
    readonly notifyBy: string;
    readonly firstNotifiedAt?: string;
    readonly acknowledgedAt?: string;
    readonly secondReportBy?: string;
    readonly met?: boolean;
  };
  readonly notifications: readonly NotificationRef[];
  /**
   * The highest severity planned for announcement so far, over every revision (a first report,
   * then escalations), shown to the analyst. Planning reads `notifiedRevisions` with the case's
   * outbox instead (an abandoned notification announced nothing); this is its fallback only for
   * results written before that history was kept. Absent while nobody has been notified.
   */
  readonly notifiedSeverity?: Severity;
  /**
   * Every revision that planned notifications, with the severity they announce and how many entries
   * it planned (`entries`, absent where written before it was kept), oldest first. A revision whose
   * entries were all abandoned (retries exhausted) announced nothing: a later revision is planned against
   * the others (notify/plan.ts announcedSoFar). Absent in results written before it.
   */
  readonly notifiedRevisions?: readonly NotifiedRevision[];
  /** Whether the tenant had a policy file or the documented defaults applied. */
  readonly policy: { readonly source: 'tenant' | 'default'; readonly name?: string };
  readonly steps: readonly StepRecord[];
  readonly triagedAt: string;
}
