/**
 * Who gets which notification for a triaged case revision, per the tenant's
 * notify matrix and contact hours. Pure: the pipeline commits the planned
 * records to the outbox; a dispatcher delivers them.
 *
 * Idempotency keys (the outbox rejects a second insert of the same key):
 * - first report: `tenant|case|first-report|contact|channel` — once per case, whatever
 *   the redeliveries or revisions;
 * - escalation on a new revision whose severity is above what was already notified:
 *   `tenant|case|escalation|contact|channel|rN` — once per revision;
 * - a first report again after every earlier one was abandoned (retries exhausted, nobody told):
 *   `tenant|case|first-report|contact|channel|rN`, so it cannot collide with the abandoned keys.
 *
 * "Already notified" counts only what reached or may still reach someone (see announcedSoFar):
 * a revision whose every entry was abandoned announced nothing, so a later revision at the same
 * severity notifies again instead of leaving the alert unannounced.
 */
import type { TenantPolicy } from '../config/policy';
import { compareSeverity, type NotificationKind, type Severity } from '../model/domain';
import type { NotificationRecord } from '../store/port';

/** Channels a contact can be reached on. */
export const CHANNELS = ['teams', 'email', 'pagerduty'] as const;
/** A notification channel. */
export type Channel = (typeof CHANNELS)[number];

/** Input of the planner. */
export interface PlanInput {
  readonly tenantId: string;
  readonly caseId: string;
  readonly revision: number;
  readonly severity: Severity;
  /** Highest severity already notified for this case (previous revisions), if any. */
  readonly previouslyNotified?: Severity;
  /**
   * A first report was planned before and abandoned (Announced.firstReportKeyed): a first report now
   * is keyed by revision, as the old key is taken by the abandoned entries.
   */
  readonly firstReportKeyed?: boolean;
  readonly policy: TenantPolicy;
  /** Whether `now` falls in the tenant's business hours (contacts with `hours: business`). */
  readonly businessHours: boolean;
  /** The message body (first report text) to send. */
  readonly payload: string;
  readonly now: string;
}

/** Builds the idempotency key of an outbox entry. */
export function notificationKey(p: {
  tenantId: string;
  caseId: string;
  kind: NotificationKind;
  contact: string;
  channel: Channel;
  revision?: number;
  /** Key a first report by revision too (a first report again after the earlier one was abandoned). */
  perRevision?: boolean;
}): string {
  const base = `${p.tenantId}|${p.caseId}|${p.kind}|${p.contact}|${p.channel}`;
  return p.kind === 'first-report' && p.perRevision !== true ? base : `${base}|r${p.revision ?? 0}`;
}

/** A revision that planned notifications, and the severity they announce (TriageResult.notifiedRevisions). */
export interface NotifiedRevision {
  readonly revision: number;
  readonly severity: Severity;
}

/** What a case's earlier revisions announced (announcedSoFar). */
export interface Announced {
  /** Highest severity a revision announced with an entry sent or still pending (queued, in retry); undefined when none. */
  readonly severity?: Severity;
  /** The highest-severity revision above `severity` whose every entry was abandoned (the latest of equals), if any. */
  readonly abandoned?: NotifiedRevision;
  /** A first-report entry exists (abandoned, since nothing counts as announced): its plain key is taken. */
  readonly firstReportKeyed: boolean;
}

/**
 * What the case has announced so far, from its notifying revisions (`history`) and its outbox entries.
 * A revision counts unless every one of its entries listed is abandoned (`failed`: retries exhausted,
 * or its text lost); one entry sent or pending is enough (someone was, or will be, told). A revision
 * with no entry listed counts too: its entries may have outlived their retention (Cosmos TTL), and
 * only an abandoned entry shows nobody was told. An entry of a revision `history` does not name (a
 * result written before the history was kept) counts as announcing the highest severity in `history`,
 * what such results assumed. Pure.
 */
export function announcedSoFar(
  history: readonly NotifiedRevision[],
  records: readonly Pick<NotificationRecord, 'revision' | 'kind' | 'status'>[],
): Announced {
  const listed = new Set<number>();
  const live = new Set<number>();
  let firstReportKeyed = false;
  for (const r of records) {
    listed.add(r.revision);
    if (r.status !== 'failed') live.add(r.revision);
    if (r.kind === 'first-report') firstReportKeyed = true;
  }
  const named = new Set(history.map((h) => h.revision));
  let severity: Severity | undefined;
  let planned: Severity | undefined;
  const raise = (s: Severity | undefined, by: Severity): Severity => (s === undefined || compareSeverity(by, s) > 0 ? by : s);
  for (const h of history) {
    planned = raise(planned, h.severity);
    if (live.has(h.revision) || !listed.has(h.revision)) severity = raise(severity, h.severity);
  }
  if (planned !== undefined && [...live].some((r) => !named.has(r))) severity = raise(severity, planned);
  let abandoned: NotifiedRevision | undefined;
  for (const h of history) {
    if (live.has(h.revision) || !listed.has(h.revision)) continue;
    if (severity !== undefined && compareSeverity(h.severity, severity) <= 0) continue;
    if (abandoned === undefined || compareSeverity(h.severity, abandoned.severity) >= 0) abandoned = h;
  }
  return { ...(severity !== undefined ? { severity } : {}), ...(abandoned ? { abandoned } : {}), firstReportKeyed };
}

function addressOf(contact: TenantPolicy['contacts'][number], channel: Channel): string | undefined {
  switch (channel) {
    case 'teams':
      return contact.teams;
    case 'email':
      return contact.email;
    case 'pagerduty':
      return contact.pagerduty;
    default: {
      const never: never = channel;
      return never;
    }
  }
}

/** Plans the outbox entries for one case revision (empty when nothing is due). */
export function planNotifications(input: PlanInput): NotificationRecord[] {
  const { policy } = input;
  let kind: NotificationKind;
  if (input.previouslyNotified === undefined) kind = 'first-report';
  else if (compareSeverity(input.severity, input.previouslyNotified) > 0) kind = 'escalation';
  else return [];
  const rule = policy.notify[input.severity];
  const names = rule?.first ?? [];
  const out: NotificationRecord[] = [];
  for (const name of names) {
    const contact = policy.contacts.find((c) => c.name === name);
    if (!contact) continue; // schema validation guarantees existence; defensive only
    if (contact.hours === 'business' && !input.businessHours) continue;
    for (const channel of CHANNELS) {
      const to = addressOf(contact, channel);
      if (!to) continue;
      out.push({
        key: notificationKey({
          tenantId: input.tenantId,
          caseId: input.caseId,
          kind,
          contact: name,
          channel,
          revision: input.revision,
          perRevision: input.firstReportKeyed === true,
        }),
        tenantId: input.tenantId,
        caseId: input.caseId,
        revision: input.revision,
        kind,
        channel,
        recipient: `${name} <${to}>`,
        payload: input.payload,
        createdAt: input.now,
        status: 'queued',
        attempts: 0,
      });
    }
  }
  return out;
}
