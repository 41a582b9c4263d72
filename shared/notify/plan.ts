/**
 * Who gets which notification for a triaged case revision, per the tenant's
 * notify matrix and contact hours. Pure: the pipeline commits the planned
 * records to the outbox; a dispatcher delivers them.
 *
 * Idempotency keys (the outbox rejects a second insert of the same key):
 * - first report: `tenant|case|first-report|contact|channel` — once per case, whatever
 *   the redeliveries or revisions;
 * - escalation on a new revision whose severity is above what was already notified:
 *   `tenant|case|escalation|contact|channel|rN` — once per revision.
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
}): string {
  const base = `${p.tenantId}|${p.caseId}|${p.kind}|${p.contact}|${p.channel}`;
  return p.kind === 'first-report' ? base : `${base}|r${p.revision ?? 0}`;
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
        key: notificationKey({ tenantId: input.tenantId, caseId: input.caseId, kind, contact: name, channel, revision: input.revision }),
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
