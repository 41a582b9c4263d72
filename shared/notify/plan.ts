/**
 * Who gets which notification for a triaged case revision, per the tenant's
 * notify matrix and contact hours. Pure: the pipeline commits the planned
 * records to the outbox; a dispatcher delivers them.
 *
 * Idempotency keys (the outbox rejects a second insert of the same key):
 * - first report: `tenant|case|first-report|contact|channel` — once per case, whatever
 *   the redeliveries or revisions, unless every earlier one was abandoned (below);
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
import { compareSeverity, type NotificationKind, type NotifiedRevision, type Severity } from '../model/domain';
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
 * or its text lost) and, when it says how many it planned (`entries`), all of them are listed; one
 * entry sent or pending is enough (someone was, or will be, told). A revision with fewer entries listed
 * counts too: the others may have outlived their retention (Cosmos TTL), and only an abandoned entry
 * shows nobody was told. An entry of a revision `history` does not name (a result written before the
 * history was kept) counts as announcing the severity of the first revision `history` names after it:
 * that result's `notifiedSeverity`, the highest announced then, what such results assumed; not a level a
 * later revision planned, or an escalation abandoned since would count as announced for ever. Pure.
 */
export function announcedSoFar(
  history: readonly NotifiedRevision[],
  records: readonly Pick<NotificationRecord, 'revision' | 'kind' | 'status'>[],
): Announced {
  const failed = new Map<number, number>();
  const live = new Set<number>();
  let firstReportKeyed = false;
  for (const r of records) {
    if (r.status === 'failed') failed.set(r.revision, (failed.get(r.revision) ?? 0) + 1);
    else live.add(r.revision);
    if (r.kind === 'first-report') firstReportKeyed = true;
  }
  const named = new Set(history.map((h) => h.revision));
  const gone = (h: NotifiedRevision): boolean => !live.has(h.revision) && (failed.get(h.revision) ?? 0) >= Math.max(1, h.entries ?? 1);
  let severity: Severity | undefined;
  let planned: Severity | undefined;
  const raise = (s: Severity | undefined, by: Severity): Severity => (s === undefined || compareSeverity(by, s) > 0 ? by : s);
  for (const h of history) {
    planned = raise(planned, h.severity);
    if (!gone(h)) severity = raise(severity, h.severity);
  }
  for (const r of live) {
    if (named.has(r)) continue;
    // The first revision named after it (the history is oldest first); failing that, the highest named.
    const after = history.find((h) => h.revision > r)?.severity ?? planned;
    if (after !== undefined) severity = raise(severity, after);
  }
  let abandoned: NotifiedRevision | undefined;
  for (const h of history) {
    if (!gone(h)) continue;
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
