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
 *
 * Related alerts arriving at the same moment
 * - A case sees the related cases committed before its look-up. Two related alerts looked up at
 *   the same moment would both miss each other. In one process the look-up → write lock orders
 *   them (stores that apply writes on call: SQLite); an Event Hub batch (a unit of work) holds it
 *   for the whole unit. Across instances (Cosmos), with
 *   `recheckAfterCommit` (CORRELATION_RECHECK=true; one more query per case), each case is
 *   looked up again after its commit. A related case that appeared since the first look-up and
 *   whose stored verdict does not list this case missed it too: this case is then judged again
 *   on its first look-up plus the cases that missed it (what arrival in commit order would have
 *   shown it), and a changed verdict is written as a new revision (escalation
 *   notified as for any revision). One that lists this case saw it (it arrived after this
 *   commit) and nothing is done, as in arrival one after the other. Of two cases that missed
 *   each other, the one whose re-check runs after the other's commit revises itself; only when
 *   both re-checks read before either revision commits do both revise. A case whose re-check
 *   failed, or never ran (a crash right after the commit), keeps its first verdict.
 * - Across processes on one SQLite file the lock does not reach: there the look-up's answer tells,
 *   from the log positions the store follows anyway, whether another process committed correlation
 *   rows between the look-up and this case's commit (`othersCommittedSince`). Only such a case is
 *   re-checked, as above, with no setting and at no cost to a process alone. The reasoning holds as
 *   for Cosmos: SQLite commits one writer at a time, so of two cases that missed each other the one
 *   committed second is told and revises itself (the first is told only if it learns of the second
 *   before asking, and then finds it listed, or both revise as above); its re-check reads the other
 *   process's rows (the store catches its index up from the log before answering).
 */
import type { PolicyRegistry, ResolvedPolicy } from '../config/policy';
import { relatedQuery } from '../correlation/plan';
import { ConcurrencyConflictError, InputValidationError, isTransient, TriageError } from '../errors';
import type { Logger } from '../log';
import {
  type Case,
  compareSeverity,
  type NotificationRef,
  type NotifiedRevision,
  type Severity,
  type StepRecord,
  type TriageResult,
} from '../model/domain';
import { parseJsonText, stringifyJson } from '../model/json';
import { type BodyKind, type ParseOutcome, parseBody } from '../model/parse';
import { compareRevisionKeys } from '../model/revision';
import { firstReportDue, isBusinessHours, secondReportDue } from '../notify/hours';
import type { OutboxDispatcher } from '../notify/outbox';
import { type Announced, announcedSoFar, planNotifications } from '../notify/plan';
import { toSentinelSeverity } from '../severity/sentinel';
import type { CaseRecord, EntitySighting, NotificationRecord, ParkedItem, Store } from '../store/port';
import { withRetry } from '../store/retry';
import type { Brain, Classification, CorrelationPlan } from './brain';
import { fitParkedBody, parkId, rawAt } from './park';

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
  /**
   * Look a case's related cases up again after its commit, and revise the case when a case another
   * instance committed meanwhile did not see it and the verdict changes (see the module comment). Applies only to stores
   * that do not order look-ups and writes themselves (not `appliesWritesOnCall`: Cosmos). Off by
   * default: it costs one more store query per case (`CORRELATION_RECHECK`). SQLite needs no setting: its
   * answers tell when another process committed meanwhile, and only then is the case re-checked.
   */
  readonly recheckAfterCommit?: boolean;
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

/** Outbox entries of a committed case, waiting for delivery after the commit. */
interface Pending {
  /** Index of its item in the delivery's outcomes. */
  readonly index: number;
  readonly record: CaseRecord;
  readonly outbox: readonly NotificationRecord[];
}

/** Hands a committed case's outbox entries to the caller, who delivers them after its commit. */
type Defer = (record: CaseRecord, outbox: readonly NotificationRecord[]) => void;

/**
 * A re-check reads the appeared cases this many at a time (each is one point read). It reads them all:
 * after a burst on one host the cases that saw this one come first (newest first), and the one that
 * missed it would be left unread. They are bounded anyway: a key at the infrastructure bound returns no rows.
 */
const RECHECK_READS = 10;

/** How a delivery's cases are processed (decided once per delivery from the store). */
interface Mode {
  /** Hold the process-wide look-up → write lock (see lookupAndWrite). */
  readonly ordered: boolean;
  /**
   * Look the related cases up again after every commit (see recheckRelated); without it, only after a
   * commit the look-up's answer says other writers committed before (see recheckDue).
   */
  readonly recheck: boolean;
}

/** What the pipeline knows before scoring: policy, playbook, correlation plan and candidates. */
interface Judgement {
  readonly policy: ResolvedPolicy;
  readonly cls: Classification;
  readonly plan: CorrelationPlan;
  readonly sightings: EntitySighting[];
  /** Keys the store found at or over the infrastructure bound (no rows read). */
  readonly saturated: string[];
  /**
   * The look-up answer's own question (stores that can tell: SQLite), asked after the commit: did other
   * writers commit correlation rows since it was read (see recheckDue)? None without keys.
   */
  readonly othersCommittedSince?: () => boolean;
  /** The case's outbox entries, read before judging a revision of a case that has notified (announcedSoFar); none for a new case. */
  readonly earlier?: readonly NotificationRecord[];
}

/** The triage pipeline. One instance per process; safe for concurrent calls. */
export class Pipeline {
  private readonly clock: () => Date;
  /** Settles when the last holder of the look-up → write lock releases it. */
  private lookupTail: Promise<void> = Promise.resolve();
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

  /**
   * Runs an already-parsed body through the pipeline; every item gets its own outcome.
   * Outbox entries are delivered only after the commit that holds them: per item, or, when the
   * store groups writes (SQLite) and the body has several items (an Event Hub batch), after the
   * one commit of the whole body, so nothing is sent for a case a rollback could still undo.
   */
  async ingest(body: unknown, options: IngestOptions): Promise<IngestOutcome> {
    const receivedAt = this.clock().toISOString();
    const parsed: ParseOutcome[] = parseBody(body, options.kind, receivedAt);
    const { store } = this.deps;
    const items: ItemOutcome[] = [];
    const pending: Pending[] = [];
    // Inside a unit of work nobody else can look up or write meanwhile; outside one, a store whose
    // writes apply on call gets look-up → write ordered across concurrent deliveries (see lookupAndWrite).
    const inUnit = parsed.length > 1 && store.unitOfWork !== undefined;
    const mode: Mode = {
      ordered: !inUnit && store.appliesWritesOnCall === true,
      recheck: this.deps.recheckAfterCommit === true && store.appliesWritesOnCall !== true,
    };
    const run = async (p: ParseOutcome, index: number): Promise<void> => {
      items.push(await this.handleParsed(p, options, body, mode, (record, outbox) => pending.push({ index, record, outbox })));
    };
    if (inUnit && store.unitOfWork) {
      // A unit holds the look-up → write lock as a whole (stores that apply writes on call): a single
      // delivery that looked up before the unit began then issues its write before the unit looks up,
      // instead of writing after it, where neither would have seen the other (one connection: no re-check).
      const release = store.appliesWritesOnCall === true ? await this.lookupLock() : undefined;
      try {
        await store.unitOfWork(async () => {
          for (const [i, p] of parsed.entries()) await run(p, i);
        });
      } finally {
        release?.();
      }
      await this.deliverPending(pending.splice(0), items);
    } else {
      for (const [i, p] of parsed.entries()) {
        await run(p, i);
        await this.deliverPending(pending.splice(0), items);
      }
    }
    const counts = emptyCounts();
    for (const i of items) counts[i.status]++;
    return { items, counts };
  }

  private async handleParsed(p: ParseOutcome, options: IngestOptions, body: unknown, mode: Mode, defer: Defer): Promise<ItemOutcome> {
    switch (p.status) {
      case 'ok':
        return this.processWithRetry(p.case, p.path, options, body, mode, defer);
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
    mode: Mode,
    defer: Defer,
  ): Promise<ItemOutcome> {
    try {
      const outcome = await withRetry(() => this.processCase(c, mode, defer), {
        attempts: this.attempts,
        baseMs: this.backoffMs,
        maxMs: this.backoffMs * 2 ** this.attempts,
        isRetryable: isTransient,
      });
      return { path, ...outcome };
    } catch (err) {
      this.deps.log.error('case.failed', { tenantId: c.tenantId, caseId: c.caseId, step: 'persist', err });
      // Never lose an alert: what still fails after the in-process retries is parked for `triage parked replay`.
      // If parking fails too (store down), this throws and the trigger's retry policy redelivers.
      // The original item (not the parsed Case) is kept, so a replay goes through parsing again.
      const raw = rawAt(body, path) ?? body;
      const parked = await this.park({
        path,
        error: err,
        raw,
        source: options.source,
        tenantId: c.tenantId,
        caseId: c.caseId,
        step: 'persist',
      });
      return { ...parked, status: 'failed', caseId: c.caseId };
    }
  }

  /** Keeps a rejected item with its reason and body; returns its outcome. */
  private async park(p: {
    path: string;
    error: unknown;
    raw: unknown;
    source: string;
    tenantId?: string;
    /** Known when a parsed case failed later (the store kept failing), with the step it failed at; else a parse rejection. */
    caseId?: string;
    step?: 'persist';
  }): Promise<ItemOutcome> {
    const info = errorInfo(p.error);
    // Never throws for the item's content: a value nested thousands deep, or an event's bytes, is still kept as text.
    // Kept whole for replay unless, as stored, it would not fit a store item (see fitParkedBody).
    const body = fitParkedBody(stringifyJson(p.raw ?? null));
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
      ...(p.caseId ? { caseId: p.caseId } : {}),
      step: p.step ?? 'parse',
      path: p.path,
      reason: info.message.slice(0, 500),
      parkedId: item.id,
    });
    return { path: p.path, status: 'rejected', error: info, parkedId: item.id, ...(p.tenantId ? { tenantId: p.tenantId } : {}) };
  }

  /**
   * Triages one parsed case: dedupe against the store, judge, commit. What is to be delivered
   * (the new outbox entries, or those a crash left queued) is handed to `defer`; the caller
   * delivers after its commit. Throws only for transient infrastructure failures (retried by the caller).
   */
  private async processCase(c: Case, mode: Mode, defer: Defer): Promise<Omit<ItemOutcome, 'path'>> {
    const { store, log } = this.deps;
    const clog = log.child({ tenantId: c.tenantId, caseId: c.caseId });
    for (let round = 0; round < 5; round++) {
      const existing = await store.getCase(c.tenantId, c.caseId);
      if (existing) {
        if (existing.fingerprint === c.fingerprint) {
          // A repeat: show the current delivery status, and finish a delivery a crash interrupted.
          const records =
            existing.result.notifications.length > 0 ? await store.listNotifications({ tenantId: c.tenantId, caseId: c.caseId }) : [];
          if (records.some((n) => n.status === 'queued')) defer(existing, records);
          clog.debug('case.duplicate', { step: 'dedupe', revision: existing.revision });
          return { status: 'duplicate', caseId: c.caseId, tenantId: c.tenantId, result: mergeOutbox(existing.result, records) };
        }
        // Under one revision key, of two different contents the greater fingerprint wins, whichever
        // arrives last: redeliveries of both then converge instead of flipping the case back and forth
        // (and re-notifying) on every delivery. ARCHITECTURE §4 took any changed content as newer.
        const order = compareRevisionKeys(existing.revisionKey, c.revisionKey);
        if (order > 0 || (order === 0 && existing.fingerprint > c.fingerprint)) {
          clog.info('case.stale', { step: 'dedupe', stored: existing.revisionKey, received: c.revisionKey });
          return { status: 'stale', caseId: c.caseId, tenantId: c.tenantId, result: existing.result };
        }
      }
      // A revision is planned against what was announced, abandoned notifications left out: one read,
      // none for a new case or a case that never notified (the hot path).
      const earlier =
        existing && existing.result.notifications.length > 0
          ? await store.listNotifications({ tenantId: c.tenantId, caseId: c.caseId })
          : [];
      const { outbox, write, judgement } = await this.lookupAndWrite(c, existing, mode.ordered, earlier);
      let saved: CaseRecord;
      try {
        saved = await write;
      } catch (err) {
        // Lost a race (another worker committed this case first): re-read and dedupe again.
        if (err instanceof ConcurrencyConflictError) continue;
        throw err;
      }
      if (outbox.length > 0) defer(saved, outbox);
      clog.info('case.triaged', { step: 'persist', revision: saved.revision, severity: saved.result.severity });
      if (recheckDue(mode, judgement)) saved = await this.recheckRelated(c, saved, judgement, defer);
      return { status: existing ? 'revised' : 'triaged', caseId: c.caseId, tenantId: c.tenantId, result: saved.result };
    }
    throw new ConcurrencyConflictError(`case ${c.caseId}: too many concurrent updates`);
  }

  /**
   * After the commit of `saved`: looks its related cases up again. When cases appeared that the
   * first look-up did not see, and one of them does not list this case in its stored verdict (it
   * missed this case as this case missed it), judges the case again and writes a changed verdict
   * as the next revision. The case is already committed, so a failed re-check only logs: the first
   * verdict stands.
   */
  private async recheckRelated(c: Case, saved: CaseRecord, ctx: Judgement, defer: Defer): Promise<CaseRecord> {
    if (ctx.plan.keys.length === 0) return saved;
    const clog = this.deps.log.child({ tenantId: c.tenantId, caseId: c.caseId });
    try {
      const { sightings } = await this.deps.store.findRelated(relatedQuery(c, ctx.plan));
      const seen = new Set(ctx.sightings.map((s) => s.caseId));
      const appeared = new Set(sightings.filter((s) => !seen.has(s.caseId)).map((s) => s.caseId));
      if (appeared.size === 0) return saved;
      // A case that lists this one saw it: the pair was judged there, as arrival in turn would have.
      const missed = await this.missedBy(c, [...appeared]);
      if (missed.length === 0) return saved;
      const why = `re-correlated after commit r${saved.revision}: ${missed.length} related case(s) committed meanwhile without seeing this one`;
      // Judged on what arrival in commit order would have shown it: the first look-up plus the cases
      // that missed it, not the ones that came later and saw it (they judged their pair themselves).
      // Saturation stays as first seen: a key saturated since returns no rows, not even the first ones.
      const missedIds = new Set(missed);
      const visible = [...ctx.sightings, ...sightings.filter((s) => missedIds.has(s.caseId))];
      const { record, sightings: own, outbox } = this.judge(c, saved, { ...ctx, sightings: visible }, why);
      if (!verdictChanged(saved.result, record.result)) return saved;
      const revised = await this.deps.store.putCase(record, own, saved.etag, outbox);
      if (outbox.length > 0) defer(revised, outbox);
      clog.info('case.recorrelated', {
        step: 'correlate',
        revision: revised.revision,
        severity: revised.result.severity,
        missed: missed.length,
      });
      return revised;
    } catch (err) {
      // A newer revision was written meanwhile: it looked up after this commit, so it saw what this would have.
      if (err instanceof ConcurrencyConflictError) return saved;
      if (!(err instanceof TriageError)) throw err;
      clog.warn('case.recheck.failed', { step: 'correlate', err });
      return saved;
    }
  }

  /**
   * Looks up the case's related cases, judges it and issues its write. With `ordered`, a
   * process-wide lock spans the look-up and the *issuing* of the write (not its commit): the
   * store applies the write on call, so whoever looks up next sees this case, and two related
   * alerts arriving together correlate in arrival order rather than both missing each other. The
   * section awaits nothing slow (the look-up does not wait for a commit), so concurrent deliveries
   * still share group commits.
   */
  private async lookupAndWrite(
    c: Case,
    existing: CaseRecord | undefined,
    ordered: boolean,
    earlier: readonly NotificationRecord[],
  ): Promise<{ outbox: NotificationRecord[]; write: Promise<CaseRecord>; judgement: Judgement }> {
    const release = ordered ? await this.lookupLock() : undefined;
    try {
      const judgement: Judgement = { ...(await this.related(c)), earlier };
      const { record, sightings, outbox } = this.judge(c, existing, judgement);
      const write = this.deps.store.putCase(record, sightings, existing?.etag, outbox);
      write.catch(() => undefined); // awaited by the caller; this only keeps a rejection before that from being "unhandled"
      return { outbox, write, judgement };
    } finally {
      release?.();
    }
  }

  /**
   * The ids among `ids` whose stored verdict does not list `c` (a case gone meanwhile counts as seeing it),
   * read RECHECK_READS at a time.
   */
  private async missedBy(c: Case, ids: readonly string[]): Promise<string[]> {
    const missed: string[] = [];
    for (let from = 0; from < ids.length; from += RECHECK_READS) {
      const batch = ids.slice(from, from + RECHECK_READS);
      const records = await Promise.all(batch.map((id) => this.deps.store.getCase(c.tenantId, id)));
      for (const [i, r] of records.entries())
        if (r !== undefined && !r.result.killChain.relatedCaseIds.includes(c.caseId)) missed.push(batch[i] as string);
    }
    return missed;
  }

  /** Waits for the look-up → write lock; resolves to its release. */
  private async lookupLock(): Promise<() => void> {
    let release: () => void = () => undefined;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const before = this.lookupTail;
    this.lookupTail = before.then(() => mine);
    await before;
    return release;
  }

  /** Classifies the case and fetches its correlation candidates (the one store query of the hot path). */
  private async related(c: Case): Promise<Judgement> {
    const policy = this.deps.policies.resolve(c.tenantId);
    const cls = this.deps.brain.classify(c, policy);
    const plan = this.deps.brain.planCorrelation(c, cls, policy);
    if (plan.keys.length === 0) return { sightings: [], saturated: [], policy, cls, plan };
    const answer = await this.deps.store.findRelated(relatedQuery(c, plan));
    // Of the answer only its question is kept beside the rows (bound: LogAnswer's state is private).
    const othersCommittedSince = answer.othersCommittedSince?.bind(answer);
    return { sightings: answer.sightings, saturated: answer.saturated, policy, cls, plan, othersCommittedSince };
  }

  /** Pure part: classify, correlate, score, plan notifications. `why` explains a revision made without new input. */
  private judge(
    c: Case,
    existing: CaseRecord | undefined,
    ctx: Judgement,
    why?: string,
  ): { record: CaseRecord; sightings: EntitySighting[]; outbox: NotificationRecord[] } {
    const { brain } = this.deps;
    const { policy, cls, plan } = ctx;
    const now = this.clock();
    // Written twice below (the outbox entries' createdAt, the result's triagedAt): one instant, formatted once.
    const nowIso = now.toISOString();
    const steps: StepRecord[] = [
      { step: 'parse', status: 'ok', detail: c.shape },
      { step: 'dedupe', status: 'ok', detail: why ?? (existing ? `new revision after r${existing.revision}` : 'new case') },
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
    const history = notifiedHistory(existing, ctx.earlier ?? []);
    const announced = announcedSoFar(history, ctx.earlier ?? []);
    const previouslyNotified = announced.severity;
    const outbox = planNotifications({
      tenantId: c.tenantId,
      caseId: c.caseId,
      revision,
      severity: scored.severity,
      previouslyNotified,
      firstReportKeyed: announced.firstReportKeyed,
      policy: policy.policy,
      businessHours: isBusinessHours(now, policy.policy),
      payload: scored.firstReport,
      now: nowIso,
    });
    steps.push({ step: 'notify', status: 'ok', detail: notifyDetail(outbox.length, scored.severity, announced) });
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
      // Planned entries announce this revision's severity (a first report, or an escalation above the last).
      ...(outbox.length > 0 ? { notifiedSeverity: scored.severity } : previouslyNotified ? { notifiedSeverity: previouslyNotified } : {}),
      ...(outbox.length > 0
        ? { notifiedRevisions: [...history, { revision, severity: scored.severity, entries: outbox.length }] }
        : history.length > 0
          ? { notifiedRevisions: history }
          : {}),
      policy: { source: policy.source, ...(policy.file ? { name: policy.policy.tenant.name } : {}) },
      steps,
      triagedAt: nowIso,
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

  /**
   * Delivers committed outbox entries in one go and folds the outcome into each item's result
   * (the outbox, not the case record, holds delivery status). A failed delivery leaves the
   * entries queued and the triage a success: the next delivery of the input, or a drain, sends them.
   */
  private async deliverPending(pending: readonly Pending[], items: ItemOutcome[]): Promise<void> {
    const { dispatcher } = this.deps;
    if (!dispatcher || pending.length === 0) return;
    // Entries this delivery committed itself are current (sent without another read); a duplicate's
    // were read before, and another delivery may have sent them since.
    const fresh = new Set<string>();
    for (const d of pending) {
      const status = items[d.index]?.status;
      if (status === 'triaged' || status === 'revised') for (const n of d.outbox) fresh.add(n.key);
    }
    let sent: NotificationRecord[];
    try {
      sent = await dispatcher.deliver(
        pending.flatMap((d) => d.outbox),
        { fresh },
      );
    } catch (err) {
      this.deps.log.warn('notify.deferred', { step: 'notify', cases: pending.length, err });
      return;
    }
    const byKey = new Map(sent.map((n) => [n.key, n]));
    // An item can have several pending entries (a revision made by the post-commit re-check after
    // the first): its result shows the outcome of all of them.
    const byItem = new Map<number, NotificationRecord[]>();
    for (const d of pending) {
      const records = byItem.get(d.index) ?? [];
      for (const n of d.outbox) records.push(byKey.get(n.key) ?? n);
      byItem.set(d.index, records);
    }
    for (const [index, records] of byItem) {
      const item = items[index];
      if (!item?.result) continue;
      let all = records;
      // A later revision's result lists the earlier revisions' notifications too: its answer shows the
      // whole outbox of the case (as GET /api/cases does), not only the entries of this delivery.
      if (item.result.notifications.length > records.length) {
        try {
          all = await this.deps.store.listNotifications({ tenantId: item.result.tenantId, caseId: item.result.caseId });
        } catch (err) {
          if (!(err instanceof TriageError)) throw err;
          this.deps.log.warn('notify.outbox.unread', { tenantId: item.result.tenantId, caseId: item.result.caseId, step: 'notify', err });
        }
      }
      items[index] = { ...item, result: mergeOutbox(item.result, all) };
    }
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

/**
 * Whether to look a just-committed case's related cases up again: after every commit with `mode.recheck`
 * (Cosmos with CORRELATION_RECHECK); otherwise when its look-up's answer says another writer committed
 * correlation rows since it was read (SQLite with another process on the file), for a case committed
 * meanwhile may have missed this one as this one missed it. Asked of the answer, from memory: a process
 * alone pays nothing.
 */
function recheckDue(mode: Mode, judgement: Judgement): boolean {
  return mode.recheck || judgement.othersCommittedSince?.() === true;
}

/** Whether a re-judged result says something the stored one did not (worth a revision). */
function verdictChanged(before: TriageResult, after: TriageResult): boolean {
  const a = before.killChain;
  const b = after.killChain;
  return (
    before.severity !== after.severity ||
    before.threatLevel !== after.threatLevel ||
    a.multiStage !== b.multiStage ||
    a.stage !== b.stage ||
    a.relatedCaseIds.join('\n') !== b.relatedCaseIds.join('\n')
  );
}

/**
 * The revisions of the case that planned notifications, with the severity each announces. A result
 * written before `notifiedRevisions` existed gives one: its `notifiedSeverity` (before that, its own
 * severity when it lists notifications, the best it can tell), at the revision of its newest outbox entry.
 */
function notifiedHistory(existing: CaseRecord | undefined, records: readonly NotificationRecord[]): NotifiedRevision[] {
  if (!existing) return [];
  const r = existing.result;
  if (r.notifiedRevisions) return [...r.notifiedRevisions];
  const severity = r.notifiedSeverity ?? (r.notifications.length > 0 ? r.severity : undefined);
  if (severity === undefined) return [];
  const newest = records.reduce((m, n) => Math.max(m, n.revision), 0);
  return [{ revision: newest > 0 ? newest : existing.revision, severity }];
}

/**
 * The notify step's detail. A revision that notifies at or below a severity already planned does so only
 * because that notification was abandoned (nobody was told): the detail says so, for the analyst who
 * sees the same level announced twice.
 */
function notifyDetail(queued: number, severity: Severity, announced: Announced): string {
  const detail = `${queued} notification(s) queued`;
  const gone = announced.abandoned;
  if (queued === 0 || gone === undefined || compareSeverity(severity, gone.severity) > 0) return detail;
  return `${detail}, again: the ${gone.severity} notification of r${gone.revision} was abandoned (nobody was told)`;
}
