/**
 * The step runner: parse → dedupe → classify → correlate → score → notify → persist.
 * (enrich, investigate and write-back arrive with their own issues; a result lists
 * exactly the steps that ran.)
 *
 * Exactly-once design
 * - The case revision, its correlation sightings and its outbox entries are committed
 *   together by one conditional write (`putCase` with the etag read at dedupe). A racing
 *   worker loses with ConcurrencyConflictError, re-reads, and finds a duplicate.
 * - Outbox keys are deterministic (case, kind, recipient[, revision]); the store inserts
 *   each key at most once, so no redelivery can notify twice.
 * - Delivery happens after the commit; whatever is still queued (crash between commit and
 *   delivery) is delivered on the next delivery of the same input or by `drain`.
 */
import type { PolicyRegistry, ResolvedPolicy } from '../config/policy';
import { lookupKeys } from '../correlation/plan';
import { ConcurrencyConflictError, InputValidationError, isTransient, StoreUnavailableError, TriageError } from '../errors';
import type { Logger } from '../log';
import type { Case, NotificationRef, Severity, StepRecord, TriageResult } from '../model/domain';
import { compareSeverity } from '../model/domain';
import { parseJsonText } from '../model/json';
import { type BodyKind, type ParseOutcome, parseBody } from '../model/parse';
import { firstReportDue, isBusinessHours, secondReportDue } from '../notify/hours';
import type { OutboxDispatcher } from '../notify/outbox';
import { planNotifications } from '../notify/plan';
import { toSentinelSeverity } from '../severity/sentinel';
import type { CaseRecord, EntitySighting, NotificationRecord, ParkedItem, Store } from '../store/port';
import type { Brain, Classification, CorrelationPlan } from './brain';
import { parkId, rawAt } from './park';

/** What became of one item of a delivery. */
export const ITEM_STATUSES = ['triaged', 'revised', 'duplicate', 'stale', 'rejected', 'ignored', 'failed'] as const;
/** Status of one item. */
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** The outcome of one item (a case, a rejected record, …). */
export interface ItemOutcome {
  readonly path: string;
  readonly status: ItemStatus;
  readonly caseId?: string;
  readonly tenantId?: string;
  readonly result?: TriageResult;
  readonly error?: { readonly name: string; readonly message: string; readonly issues?: readonly { path: string; reason: string }[] };
  readonly parkedId?: string;
}

/** The outcome of one delivery (HTTP body, Event Hub batch, replay file). */
export interface IngestOutcome {
  readonly items: readonly ItemOutcome[];
  readonly counts: Readonly<Record<ItemStatus, number>>;
}

/** Where a delivery came from, for parking and logs. */
export interface IngestOptions {
  readonly kind: BodyKind;
  /** `http:/api/incidents`, `eventhub:<hub>`, `replay:<file>`… */
  readonly source: string;
}

/** Dependencies of the pipeline (ports). */
export interface PipelineDeps {
  readonly store: Store;
  readonly policies: PolicyRegistry;
  readonly brain: Brain;
  readonly log: Logger;
  readonly dispatcher?: OutboxDispatcher;
  readonly clock?: () => Date;
  /** In-process attempts for transient failures before an item is parked (default 4). */
  readonly attempts?: number;
  /** Backoff base in ms between attempts (default 50, doubled each time, with jitter). */
  readonly backoffMs?: number;
  /** Bodies larger than this are refused (default 1 MiB). */
  readonly maxBodyBytes?: number;
}

function emptyCounts(): Record<ItemStatus, number> {
  return { triaged: 0, revised: 0, duplicate: 0, stale: 0, rejected: 0, ignored: 0, failed: 0 };
}

function errorInfo(err: unknown): NonNullable<ItemOutcome['error']> {
  if (err instanceof InputValidationError) return { name: err.name, message: err.message, issues: err.issues };
  if (err instanceof Error) {
    const issues = (err as { issues?: readonly { path: string; reason: string }[] }).issues;
    return issues ? { name: err.name, message: err.message, issues } : { name: err.name, message: err.message };
  }
  return { name: 'Error', message: String(err) };
}

/** A committed case whose delivery waits for the end of the unit of work. */
interface Deferred {
  /** Index of its item in the delivery's outcomes. */
  index: number;
  readonly record: CaseRecord;
  readonly outbox: readonly NotificationRecord[];
}

/** What the pipeline knows before scoring: policy, playbook, correlation plan and candidates. */
interface Judgement {
  readonly policy: ResolvedPolicy;
  readonly cls: Classification;
  readonly plan: CorrelationPlan;
  readonly sightings: EntitySighting[];
  /** Keys the store found at or over the infrastructure bound (no rows read). */
  readonly saturated: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The triage pipeline. One instance per process; safe for concurrent calls. */
export class Pipeline {
  private readonly clock: () => Date;
  private readonly attempts: number;
  private readonly backoffMs: number;
  /** Bodies larger than this are refused. */
  readonly maxBodyBytes: number;

  /** Creates a pipeline over its ports. */
  constructor(private readonly deps: PipelineDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.attempts = deps.attempts ?? 4;
    this.backoffMs = deps.backoffMs ?? 50;
    this.maxBodyBytes = deps.maxBodyBytes ?? 1_048_576;
  }

  /** The store this pipeline writes to. */
  get store(): Store {
    return this.deps.store;
  }

  /**
   * Runs a raw body (bytes or text) through the pipeline: size limit and JSON parsing first;
   * a body that cannot be read is parked whole and reported as one rejected item.
   */
  async ingestText(text: string | Buffer, options: IngestOptions): Promise<IngestOutcome> {
    let body: unknown;
    try {
      body = parseJsonText(text, this.maxBodyBytes);
    } catch (err) {
      if (!(err instanceof TriageError)) throw err;
      const raw = typeof text === 'string' ? text : text.toString('utf8');
      const item = await this.park({ path: '$', error: err, raw, source: options.source });
      return { items: [item], counts: { ...emptyCounts(), rejected: 1 } };
    }
    return this.ingest(body, options);
  }

  /** Runs an already-parsed body through the pipeline; every item gets its own outcome. */
  async ingest(body: unknown, options: IngestOptions): Promise<IngestOutcome> {
    const receivedAt = this.clock().toISOString();
    const parsed: ParseOutcome[] = parseBody(body, options.kind, receivedAt);
    const { store } = this.deps;
    let items: ItemOutcome[];
    if (parsed.length > 1 && store.unitOfWork) {
      // Several items (an Event Hub batch): one commit for all of them. Delivery waits until the
      // commit, so nothing is ever sent for a case that a crash or rollback could still undo.
      const deferred: Deferred[] = [];
      items = await store.unitOfWork(async () => {
        const out: ItemOutcome[] = [];
        for (const [i, p] of parsed.entries()) {
          const before = deferred.length;
          out.push(await this.handleParsed(p, options, body, deferred));
          for (let k = before; k < deferred.length; k++) (deferred[k] as Deferred).index = i;
        }
        return out;
      });
      await this.deliverDeferred(deferred, items);
    } else {
      items = [];
      for (const p of parsed) items.push(await this.handleParsed(p, options, body));
    }
    const counts = emptyCounts();
    for (const i of items) counts[i.status]++;
    return { items, counts };
  }

  private async handleParsed(p: ParseOutcome, options: IngestOptions, body: unknown, deferred?: Deferred[]): Promise<ItemOutcome> {
    switch (p.status) {
      case 'ok':
        return this.processWithRetry(p.case, p.path, options, body, deferred);
      case 'ignored':
        return { path: p.path, status: 'ignored', error: { name: 'Ignored', message: p.reason } };
      case 'rejected':
        return this.park({ path: p.path, error: p.error, raw: p.raw, source: options.source, tenantId: p.tenantId });
      default: {
        const never: never = p;
        return never;
      }
    }
  }

  private async processWithRetry(
    c: Case,
    path: string,
    options: IngestOptions,
    body: unknown,
    deferred?: Deferred[],
  ): Promise<ItemOutcome> {
    let lastErr: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        return { path, ...(await this.processCase(c, deferred)) };
      } catch (err) {
        lastErr = err;
        if (!isTransient(err) && !(err instanceof StoreUnavailableError)) break;
        if (attempt < this.attempts) await sleep(this.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
    this.deps.log.error('case.failed', { tenantId: c.tenantId, caseId: c.caseId, err: lastErr });
    // Never lose an alert: what still fails after the in-process retries is parked for `triage parked replay`.
    // If parking fails too (store down), this throws and the trigger's retry policy redelivers.
    // The original item (not the parsed Case) is kept, so a replay goes through parsing again.
    const raw = rawAt(body, path) ?? body;
    const parked = await this.park({ path, error: lastErr, raw, source: options.source, tenantId: c.tenantId });
    return { ...parked, status: 'failed', caseId: c.caseId };
  }

  /** Keeps a rejected item with its reason and body; returns its outcome. */
  private async park(p: { path: string; error: unknown; raw: unknown; source: string; tenantId?: string }): Promise<ItemOutcome> {
    const info = errorInfo(p.error);
    let body = typeof p.raw === 'string' ? p.raw : JSON.stringify(p.raw ?? null);
    // Only a body already refused for its size can exceed this: everything else is kept whole for replay.
    if (body.length > this.maxBodyBytes) body = `${body.slice(0, this.maxBodyBytes)}…[truncated ${body.length - this.maxBodyBytes} chars]`;
    const item: ParkedItem = {
      id: parkId(p.source, p.path, body),
      ...(p.tenantId ? { tenantId: p.tenantId } : {}),
      source: p.source,
      reason: info.message,
      errorName: info.name,
      issues: info.issues ?? [{ path: p.path, reason: info.message }],
      body,
      parkedAt: this.clock().toISOString(),
    };
    await this.deps.store.park(item);
    this.deps.log.warn('item.parked', {
      tenantId: p.tenantId,
      step: 'parse',
      path: p.path,
      reason: info.message.slice(0, 500),
      parkedId: item.id,
    });
    return { path: p.path, status: 'rejected', error: info, parkedId: item.id, ...(p.tenantId ? { tenantId: p.tenantId } : {}) };
  }

  /**
   * Triages one parsed case: dedupe against the store, judge, commit, deliver.
   * Throws only for transient infrastructure failures (retried by the caller).
   */
  async processCase(c: Case, deferred?: Deferred[]): Promise<Omit<ItemOutcome, 'path'>> {
    const { store, log } = this.deps;
    const clog = log.child({ tenantId: c.tenantId, caseId: c.caseId });
    for (let round = 0; round < 5; round++) {
      const existing = await store.getCase(c.tenantId, c.caseId);
      if (existing) {
        if (existing.fingerprint === c.fingerprint) {
          if (deferred) {
            // Inside a unit of work: finish an interrupted delivery only after the commit.
            const records =
              existing.result.notifications.length > 0 ? await store.listNotifications({ tenantId: c.tenantId, caseId: c.caseId }) : [];
            if (records.some((n) => n.status === 'queued')) deferred.push({ index: -1, record: existing, outbox: records });
            return { status: 'duplicate', caseId: c.caseId, tenantId: c.tenantId, result: mergeOutbox(existing.result, records) };
          }
          const current = await this.deliverQueued(existing);
          clog.debug('case.duplicate', { step: 'dedupe', revision: existing.revision });
          return { status: 'duplicate', caseId: c.caseId, tenantId: c.tenantId, result: current.result };
        }
        if (existing.revisionKey > c.revisionKey) {
          clog.info('case.stale', { step: 'dedupe', stored: existing.revisionKey, received: c.revisionKey });
          return { status: 'stale', caseId: c.caseId, tenantId: c.tenantId, result: existing.result };
        }
      }
      const { record, sightings, outbox } = this.judge(c, existing, await this.related(c));
      try {
        const saved = await store.putCase(record, sightings, existing?.etag, outbox);
        if (deferred) {
          deferred.push({ index: -1, record: saved, outbox });
          return { status: existing ? 'revised' : 'triaged', caseId: c.caseId, tenantId: c.tenantId, result: saved.result };
        }
        const delivered = await this.deliver(saved, outbox);
        clog.info('case.triaged', { step: 'persist', revision: saved.revision, severity: delivered.result.severity });
        return { status: existing ? 'revised' : 'triaged', caseId: c.caseId, tenantId: c.tenantId, result: delivered.result };
      } catch (err) {
        // Lost a race (another worker committed this case first): re-read and dedupe again.
        if (err instanceof ConcurrencyConflictError) continue;
        throw err;
      }
    }
    throw new ConcurrencyConflictError(`case ${c.caseId}: too many concurrent updates`);
  }

  private resolvePolicy(tenantId: string): ResolvedPolicy {
    return this.deps.policies.resolve(tenantId);
  }

  /** Classifies the case and fetches its correlation candidates (the one store query of the hot path). */
  private async related(c: Case): Promise<Judgement> {
    const policy = this.resolvePolicy(c.tenantId);
    const cls = this.deps.brain.classify(c, policy);
    const plan = this.deps.brain.planCorrelation(c, cls, policy);
    if (plan.keys.length === 0) return { sightings: [], saturated: [], policy, cls, plan };
    const at = Date.parse(c.detectedAt);
    const { sightings, saturated } = await this.deps.store.findRelated({
      tenantId: c.tenantId,
      keys: lookupKeys(plan.keys),
      from: new Date(at - plan.windowMs).toISOString(),
      to: new Date(at + plan.windowMs).toISOString(),
      excludeCaseId: c.caseId,
      limitPerKey: plan.infrastructureThreshold + 1,
    });
    return { sightings, saturated, policy, cls, plan };
  }

  /** Pure part: classify, correlate, score, plan notifications. */
  private judge(
    c: Case,
    existing: CaseRecord | undefined,
    ctx: Judgement,
  ): { record: CaseRecord; sightings: EntitySighting[]; outbox: NotificationRecord[] } {
    const { brain } = this.deps;
    const { policy, cls, plan } = ctx;
    const now = this.clock();
    const steps: StepRecord[] = [
      { step: 'parse', status: 'ok', detail: c.shape },
      { step: 'dedupe', status: 'ok', detail: existing ? `new revision after r${existing.revision}` : 'new case' },
    ];
    steps.push({ step: 'classify', status: 'ok', detail: `${cls.playbook} (${cls.classifiedBy})` });
    const killChain = brain.correlate(c, plan, ctx.sightings, policy, ctx.saturated);
    steps.push({
      step: 'correlate',
      status: 'ok',
      detail: `${killChain.relatedCaseIds.length} related case(s)${killChain.multiStage ? ', multi-stage' : ''}`,
    });
    const scored = brain.score(c, cls, killChain, [], policy);
    steps.push({ step: 'score', status: 'ok', detail: scored.severity });

    const revision = existing ? existing.revision + 1 : 1;
    const notifyBy = firstReportDue(c.detectedAt, policy.policy).toISOString();
    const previouslyNotified = highestNotified(existing);
    const outbox = planNotifications({
      tenantId: c.tenantId,
      caseId: c.caseId,
      revision,
      severity: scored.severity,
      previouslyNotified,
      policy: policy.policy,
      businessHours: isBusinessHours(now, policy.policy),
      payload: scored.firstReport,
      now: now.toISOString(),
    });
    steps.push({ step: 'notify', status: 'ok', detail: `${outbox.length} notification(s) queued` });
    steps.push({ step: 'persist', status: 'ok' });
    const second = secondReportDue(new Date(c.detectedAt), scored.severity, policy.policy);
    const carried = existing?.result.notifications ?? [];
    const result: TriageResult = {
      caseId: c.caseId,
      tenantId: c.tenantId,
      revision,
      title: c.title,
      source: c.source,
      playbook: cls.playbook,
      classifiedBy: cls.classifiedBy,
      severity: scored.severity,
      providerSeverity: c.providerSeverity,
      sentinelSeverity: toSentinelSeverity(scored.severity).severity,
      reasons: scored.reasons,
      killChain,
      ...(scored.threatLevel ? { threatLevel: scored.threatLevel } : {}),
      evidence: [],
      entities: c.entities.map((e) => ({ key: e.key, kind: e.kind, label: e.label })),
      firstReport: scored.firstReport,
      sla: {
        detectedAt: c.detectedAt,
        notifyBy,
        ...(second ? { secondReportBy: second.toISOString() } : {}),
      },
      notifications: [...carried, ...outbox.map(toRef)],
      policy: { source: policy.source, ...(policy.file ? { name: policy.policy.tenant.name } : {}) },
      steps,
      triagedAt: now.toISOString(),
    };
    const keys = new Set<string>(plan.keys);
    const sightings: EntitySighting[] = [...keys].map((entityKey) => ({
      tenantId: c.tenantId,
      entityKey,
      caseId: c.caseId,
      detectedAt: c.detectedAt,
      phases: plan.phases,
      playbook: cls.playbook,
      severity: scored.severity,
    }));
    const record: CaseRecord = {
      tenantId: c.tenantId,
      caseId: c.caseId,
      revision,
      revisionKey: c.revisionKey,
      fingerprint: c.fingerprint,
      state: 'done',
      detectedAt: c.detectedAt,
      case: c,
      result,
    };
    return { record, sightings, outbox };
  }

  /** Delivers freshly committed outbox entries; the outbox, not the case record, holds delivery status. */
  private async deliver(saved: CaseRecord, outbox: readonly NotificationRecord[]): Promise<CaseRecord> {
    const { dispatcher } = this.deps;
    if (!dispatcher || outbox.length === 0) return saved;
    try {
      const sent = await dispatcher.deliver(outbox);
      return { ...saved, result: mergeOutbox(saved.result, sent) };
    } catch (err) {
      // The case is committed and its outbox entries are queued: a failed delivery must not turn
      // the triage into a failure (and a retry of it). The next delivery of the input, or a drain,
      // sends what is still queued.
      this.deps.log.warn('notify.deferred', { tenantId: saved.tenantId, caseId: saved.caseId, step: 'notify', err });
      return saved;
    }
  }

  /** Delivers the outbox entries of a committed unit of work in one go, and folds the outcome into each item. */
  private async deliverDeferred(deferred: readonly Deferred[], items: ItemOutcome[]): Promise<void> {
    const { dispatcher } = this.deps;
    if (!dispatcher || deferred.length === 0) return;
    let sent: NotificationRecord[];
    try {
      sent = await dispatcher.deliver(deferred.flatMap((d) => d.outbox));
    } catch (err) {
      // Committed and queued: the next delivery of the batch, or a drain, sends what is left.
      this.deps.log.warn('notify.deferred', { step: 'notify', cases: deferred.length, err });
      return;
    }
    const byCase = new Map<string, NotificationRecord[]>();
    for (const n of sent) byCase.set(`${n.tenantId}|${n.caseId}`, [...(byCase.get(`${n.tenantId}|${n.caseId}`) ?? []), n]);
    for (const d of deferred) {
      const item = items[d.index];
      const records = byCase.get(`${d.record.tenantId}|${d.record.caseId}`) ?? [];
      if (item?.result) items[d.index] = { ...item, result: mergeOutbox(item.result, records) };
    }
  }

  /** A duplicate delivery: finish any delivery a crash interrupted, and show the current delivery status. */
  private async deliverQueued(existing: CaseRecord): Promise<CaseRecord> {
    if (existing.result.notifications.length === 0) return existing;
    let records = await this.deps.store.listNotifications({ tenantId: existing.tenantId, caseId: existing.caseId });
    if (this.deps.dispatcher && records.some((n) => n.status === 'queued')) records = await this.deps.dispatcher.deliver(records);
    return { ...existing, result: mergeOutbox(existing.result, records) };
  }
}

/**
 * Folds outbox records (the source of truth for delivery) into a result: notification
 * statuses and the SLA's first-notified time (earliest sent first report) and verdict.
 */
export function mergeOutbox(result: TriageResult, records: readonly NotificationRecord[]): TriageResult {
  if (records.length === 0) return result;
  const notifications = [...records].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.key.localeCompare(b.key)).map(toRef);
  const firstSent = records
    .filter((n) => n.kind === 'first-report' && n.status === 'sent' && n.sentAt)
    .map((n) => n.sentAt as string)
    .sort()[0];
  const sla = firstSent
    ? { ...result.sla, firstNotifiedAt: firstSent, met: Date.parse(firstSent) <= Date.parse(result.sla.notifyBy) }
    : result.sla;
  return { ...result, notifications, sla };
}

function toRef(n: NotificationRecord): NotificationRef {
  return { channel: n.channel, to: n.recipient, kind: n.kind, at: n.sentAt ?? n.createdAt, status: n.status };
}

function highestNotified(existing: CaseRecord | undefined): Severity | undefined {
  if (!existing || existing.result.notifications.length === 0) return undefined;
  // The severity of a previous revision is what its notifications announced.
  const sev = existing.result.severity;
  return compareSeverity(sev, 'informational') >= 0 ? sev : undefined;
}
