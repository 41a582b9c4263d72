/**
 * Outbox delivery. The outbox (the store's notification records) is the source of truth: a record
 * is created at most once per key, and only the holder of its claim sends it. A claim excludes every
 * other delivery attempt, in this process too (one owner per `deliver` call), and a record seen before
 * its claim was taken is read again and sent only while the store still says `queued`. A `sent` mark the
 * store refuses is kept in memory, written by the next delivery or drain of the process, and its record
 * is not sent again meanwhile. So a record is sent once, except when the process dies between a send and
 * its `sent` mark (it is then sent again once its claim expires), or when a send answers only after its
 * claim lapsed (below). The JSON-lines channel drops that repeat
 * itself (it remembers
 * the keys it has written, and reads the file's recent lines when a process first writes to it); other
 * channels get the key for their own de-duplication (PagerDuty `dedup_key`, Teams/Graph message ids in
 * their own issue).
 * A send that answers only after its claim expired (a send past its deadline, or a process that stalled)
 * may have been sent by the worker that took the record over too: it is logged as `outbox.late-send`
 * with the record's key, so an operator can look for the duplicate.
 *
 * A claim is renewed while its send is in flight (a heartbeat), so a slow send is never taken over
 * mid-send; a send gets at most 45 s, then counts as a failed attempt, its claim kept to expiry in case the
 * channel still delivers it.
 *
 * A failed send stays `queued` and is due again after an exponential backoff counted from `createdAt`
 * (`nextAttemptAt`); after `maxAttempts` it becomes `failed`. What is due is sent by `drain`, which runs
 * every minute (the `outboxDrain` timer function; `startDrainLoop` in `triage serve`) and asks the store
 * for due entries only (`dueCutoffs`), at most 500. A redelivery of the alert sends a first attempt at
 * once, but a retry only once it is due.
 */
import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConfigError, TriageError } from '../errors';
import type { Logger } from '../log';
import { BoundedMap } from '../store/boundedMap';
import type { NotificationRecord, Store } from '../store/port';
import { withRetry } from '../store/retry';

/** Delivers one outbox record to its channel. Throws on failure. */
export interface ChannelSender {
  /**
   * Sends `n`. `signal` is aborted when the dispatcher stops waiting for this send (its deadline passed,
   * or its claim was taken over): a channel that can stops then (e.g. passes it to `fetch`), so a send
   * given up as failed is less likely to arrive anyway.
   */
  send(n: NotificationRecord, signal?: AbortSignal): Promise<void>;
}

/** How much of an existing file the JSON-lines channel reads for the keys already in it. */
const TAIL_BYTES = 16 * 1024 * 1024;
/** How many written keys the JSON-lines channel remembers per file (≈ 40 bytes each). */
const REMEMBERED_KEYS = 100_000;

/** What one process knows of one JSON-lines file: shared by every channel on it, so two channels on one file dedupe together. */
interface FileMemory {
  /** Digests of the keys in the file's recent lines and of those written since, oldest first. */
  readonly keys: BoundedMap<string, true>;
  /** The file did not end with a newline (a write torn by a crash): the next line starts a new one first. */
  torn: boolean;
}

const memories = new Map<string, FileMemory>();

function keyDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 22);
}

/** The keys of the last `TAIL_BYTES` of the file (lines that are not JSON objects with a string `key` are skipped). */
function readMemory(file: string): FileMemory {
  const memory: FileMemory = { keys: new BoundedMap(REMEMBERED_KEYS), torn: false };
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return memory; // no file yet: nothing written
  }
  try {
    const size = fstatSync(fd).size;
    const from = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    memory.torn = buf.length > 0 && buf[buf.length - 1] !== 0x0a;
    const lines = buf.toString('utf8').split('\n');
    // Read from the middle of the file: the first line is a fragment.
    if (from > 0) lines.shift();
    for (const line of lines) {
      const key = keyOfLine(line);
      if (key !== undefined) remember(memory, key);
    }
  } finally {
    closeSync(fd);
  }
  return memory;
}

function keyOfLine(line: string): string | undefined {
  if (line.trim() === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined; // a line torn by a crash, or not ours
  }
  return typeof v === 'object' && v !== null && 'key' in v && typeof v.key === 'string' ? v.key : undefined;
}

function remember(memory: FileMemory, key: string): void {
  memory.keys.set(keyDigest(key), true);
}

/**
 * The embedded default channel: appends one JSON line per notification to a
 * file (`OUTBOX_FILE`, default `./data/outbox.jsonl`) so an operator can `tail -f` it.
 * A key already in the file is not written again: a record re-sent after a lost `sent` mark (a crash,
 * a store failure) would otherwise appear twice. It knows the keys of the file's last 16 MiB when the
 * process first writes to it, and the last 100,000 it wrote since; a repeat comes minutes after the
 * original (once its claim expires), well inside both. Writers in other processes are not seen.
 */
export class FileChannel implements ChannelSender {
  /** Creates the channel; the parent folder is created on first send. */
  constructor(private readonly file: string) {}

  /** Appends the record as one JSON line, unless its key is already in the file. */
  async send(n: NotificationRecord): Promise<void> {
    const path = resolve(this.file);
    let memory = memories.get(path);
    if (!memory) {
      mkdirSync(dirname(path), { recursive: true });
      memory = readMemory(path);
      memories.set(path, memory);
    }
    if (memory.keys.has(keyDigest(n.key))) return;
    const line = JSON.stringify({
      key: n.key,
      tenantId: n.tenantId,
      caseId: n.caseId,
      kind: n.kind,
      channel: n.channel,
      to: n.recipient,
      at: new Date().toISOString(),
      message: n.payload,
    });
    appendFileSync(path, `${memory.torn ? '\n' : ''}${line}\n`);
    memory.torn = false;
    remember(memory, n.key);
  }
}

/** How long a sender may hold a record before another worker may take it over. */
const CLAIM_MS = 120_000;
/**
 * Age after which a claim is renewed before its record is sent. A delivery claims all its records up front
 * and sends them one after the other: behind slow sends, a later record's claim could expire mid-send and
 * another worker take it over and send it too. Half the claim leaves a send and its mark the other half.
 */
const RENEW_AFTER_MS = CLAIM_MS / 2;
/**
 * A send still in flight this long renews its claim once (a third of the claim's life), so a slow send is not
 * taken over mid-send. Once is enough: the send deadline (SEND_TIMEOUT_MS) comes before a second beat would.
 */
const HEARTBEAT_MS = CLAIM_MS / 3;
/**
 * Longest wait for one send: shorter than the life its claim has left when the send starts (at least
 * CLAIM_MS − RENEW_AFTER_MS, see holdClaim), with room for the mark, so the claim cannot lapse before the
 * send is settled even if no heartbeat reaches the store. A channel that hangs thus costs an attempt, not
 * the record.
 */
const SEND_TIMEOUT_MS = 45_000;

/** Lease id of an outbox record: the key may hold characters Cosmos ids cannot. */
export function claimId(key: string): string {
  return `outbox-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** When failed sends are tried again, and when to give up. */
export interface OutboxRetryPolicy {
  /** Wait after the first attempt before the second; doubled for each further one. */
  readonly baseMs: number;
  /** Upper bound of one wait between two attempts. */
  readonly maxGapMs: number;
  /** Attempts after which an entry that still fails is abandoned (`failed`). */
  readonly maxAttempts: number;
}

/**
 * The default: 30 s, 1 min, 2 min, … between attempts (at most 1 h), abandoned after 8 attempts, about
 * 64 minutes after the entry was queued: a channel down longer than that needs an operator anyway.
 */
export const OUTBOX_RETRY: OutboxRetryPolicy = { baseMs: 30_000, maxGapMs: 3_600_000, maxAttempts: 8 };

/**
 * When an entry that has had `attempts` attempts is due again (epoch ms): `createdAt` plus the waits
 * after each attempt, `baseMs·2^k` capped at `maxGapMs` (uncapped: `createdAt + baseMs·(2^attempts − 1)`).
 * Counted from `createdAt` because the outbox keeps no time of the last attempt. Pure.
 */
export function nextAttemptAt(n: Pick<NotificationRecord, 'createdAt' | 'attempts'>, policy: OutboxRetryPolicy = OUTBOX_RETRY): number {
  return Date.parse(n.createdAt) + waitAfter(n.attempts, policy);
}

/** The waits after `attempts` attempts, added up (see nextAttemptAt). */
function waitAfter(attempts: number, policy: OutboxRetryPolicy): number {
  let wait = 0;
  for (let k = 0; k < attempts; k++) {
    const gap = policy.baseMs * 2 ** k;
    if (gap >= policy.maxGapMs) {
      wait += (attempts - k) * policy.maxGapMs;
      break;
    }
    wait += gap;
  }
  return wait;
}

/**
 * The store's `due` cut-offs at `now` (listNotifications): entry i is `now − wait(i)`, the latest createdAt
 * at which an entry with i attempts is due, for i = 0 … maxAttempts. An entry is due when
 * `createdAt + wait(attempts) ≤ now`, that is `createdAt ≤ now − wait(attempts)`, so the store compares
 * createdAt with a constant and needs no due-time column. An entry with more attempts than that (left by a
 * policy that allowed more) gets the last cut-off, as isDue gives it. Pure.
 */
export function dueCutoffs(now: Date, policy: OutboxRetryPolicy = OUTBOX_RETRY): string[] {
  return Array.from({ length: policy.maxAttempts + 1 }, (_, i) => new Date(now.getTime() - waitAfter(i, policy)).toISOString());
}

/**
 * Whether an entry may be attempted at `now`. An unreadable `createdAt` counts as due, so it is never stranded.
 * An entry with more attempts than `maxAttempts` (left by a policy that allowed more) waits as one with
 * `maxAttempts` does, its one last attempt: the store lists it from the last cut-off on (dueCutoffs), and an
 * entry listed but held back here would take one of a drain's 500 places without being sent, so enough of
 * them would keep the due entries behind them waiting. Pure.
 */
export function isDue(n: Pick<NotificationRecord, 'createdAt' | 'attempts'>, now: Date, policy: OutboxRetryPolicy = OUTBOX_RETRY): boolean {
  return !(now.getTime() < nextAttemptAt({ createdAt: n.createdAt, attempts: Math.min(n.attempts, policy.maxAttempts) }, policy));
}

/** Options of one delivery. */
export interface DeliverOptions {
  /**
   * Records whose view is current: the caller committed them in this very delivery, so no other
   * attempt can have sent them yet (`true`: all of them; a set: those keys). They are sent without
   * another read, unless their claim had to be renewed first (slow sends before them). Every other
   * record is read again once claimed, and sent only while still `queued`.
   */
  readonly fresh?: boolean | ReadonlySet<string>;
  /**
   * Send a first attempt only once due too (drains). Without it a first attempt (`attempts` 0) is sent at
   * once; a retry (`attempts` > 0) is always sent only when due (`isDue`), so a redelivery of the alert does
   * not cut a failed entry's backoff short.
   */
  readonly onlyDue?: boolean;
}

/** Attempts at recording a send that succeeded before it is given up as unrecorded. */
const MARK_ATTEMPTS = 3;

/** Dispatcher settings beyond its ports. */
export interface DispatcherOptions {
  /** Retry and abandonment of failed sends (default OUTBOX_RETRY). */
  readonly retry?: OutboxRetryPolicy;
  /** Waits between attempts at recording a send (default: setTimeout); injected by tests. */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Starts a one-shot timer and returns its cancel: the heartbeat and the deadline of a send (default: an
   * unref'd setTimeout, so neither keeps the process alive); injected by tests.
   */
  readonly setTimer?: (ms: number, fn: () => void) => () => void;
}

/** Default DispatcherOptions.setTimer. */
function unrefTimer(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
}

/** What became of one send (sendHeld). */
type SendOutcome =
  /** The channel took it; `lapsed`: only once the claim had expired or been taken over (another worker may send it too). */
  | { readonly kind: 'sent'; readonly lapsed: LateSendReason | undefined }
  /** The channel refused it. */
  | { readonly kind: 'failed'; readonly err: unknown }
  /**
   * No answer by the deadline: it may still arrive; `late` settles when the channel answers after all.
   * `claimUntil`: when the claim expires (epoch ms; the send holds none after it), final once sendHeld returned.
   */
  | { readonly kind: 'timed-out'; readonly late: Promise<void>; readonly claimUntil: () => number }
  /**
   * Another worker took the claim over during the send (this process stalled past its expiry): the record is
   * theirs. `late` settles if the channel answers after all (then both may have sent it).
   */
  | { readonly kind: 'lost'; readonly late: Promise<void> };

/** Why a send that went through may have been sent twice (the `outbox.late-send` event). */
type LateSendReason = 'claim-expired' | 'claim-taken-over';

/** Drain batch bound: one drain sends at most this many entries (the next run takes the rest). */
const DRAIN_LIMIT = 500;

/** A send whose `sent` mark the store refused, to be written when it answers again. */
interface UnrecordedSend {
  readonly tenantId: string;
  readonly caseId: string;
  readonly key: string;
  readonly sentAt: string;
  readonly attempts: number;
}

/** Per store, this process's sends whose mark is still to be written: shared by every dispatcher on the store (pipeline, drain). */
const unrecordedByStore = new WeakMap<Store, BoundedMap<string, UnrecordedSend>>();
/** Bound of that memory: beyond it the oldest are forgotten (their records may then be sent again after their claims expire). */
const UNRECORDED_MAX = 10_000;

/**
 * Delivers queued outbox records through a sender and records the outcome.
 * Before sending, a delivery claims the record (a lease with expiry, conditional create) under an owner
 * of its own: two deliveries racing on the same record, in two processes or in one, never both send,
 * and a claim left by a crashed worker is taken over once it expires.
 */
export class OutboxDispatcher {
  private readonly ownerBase = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private calls = 0;
  private readonly retry: OutboxRetryPolicy;
  private readonly setTimer: (ms: number, fn: () => void) => () => void;

  /** Creates a dispatcher. */
  constructor(
    private readonly store: Store,
    private readonly sender: ChannelSender,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
    private readonly options: DispatcherOptions = {},
  ) {
    this.retry = options.retry ?? OUTBOX_RETRY;
    this.setTimer = options.setTimer ?? unrefTimer;
  }

  /**
   * Sends the given queued records, each key once: claim them all, then send each and record its
   * outcome at once. Where the store groups writes (SQLite) the claims commit together, before any
   * send. The outcomes are not grouped on purpose: a crash between a send and its record may repeat
   * that one notification, never a whole batch of them. Behind slow sends, a claim older than half its
   * life is renewed before its record is sent (and the record read again); a record another worker took
   * over meanwhile is left to it, returned as seen. During a send its claim is renewed every 40 s, and a
   * send is given up after 45 s (sendHeld). A record that failed before is sent only once due (`isDue`):
   * others are returned as seen, unclaimed. Returns one record per key, as it now stands.
   * A store error stops the delivery (it throws); the claims of the records not sent are given back.
   */
  async deliver(records: readonly NotificationRecord[], options: DeliverOptions = {}): Promise<NotificationRecord[]> {
    return (await this.deliverCounting(records, options)).out;
  }

  /** deliver, also saying how many records this call sent (not those shown `sent` because they were before). */
  private async deliverCounting(
    records: readonly NotificationRecord[],
    options: DeliverOptions,
  ): Promise<{ out: NotificationRecord[]; sent: number }> {
    // One owner per call, not per process: an owner may take its own lease again, and the Functions
    // host runs invocations of one process concurrently.
    const owner = `${this.ownerBase}:${++this.calls}`;
    const now = this.clock();
    const expiresAt = new Date(now.getTime() + CLAIM_MS).toISOString();
    const { fresh } = options;
    const isFresh = (key: string): boolean => fresh === true || (typeof fresh === 'object' && fresh.has(key));
    const mayAttempt = (n: NotificationRecord): boolean => (n.attempts === 0 && !options.onlyDue) || isDue(n, now, this.retry);
    // The same alert twice in one batch hands over its entries twice. A view that is no longer
    // `queued` wins: status never goes back to `queued`.
    const unique = new Map<string, NotificationRecord>();
    for (const n of records) {
      const seen = unique.get(n.key);
      if (!seen || (seen.status === 'queued' && n.status !== 'queued')) unique.set(n.key, n);
    }
    // Sent already, their mark refused: never sent again, whether or not the mark can be written now.
    const unrecorded = new Map(this.unrecorded().entries());
    await this.recordUnrecorded();
    const claimAll = async (): Promise<Set<string>> => {
      const mine = new Set<string>();
      for (const n of unique.values()) {
        // Not due by this view: a later one has as many attempts or more (or is settled), so not due either.
        if (n.status !== 'queued' || unrecorded.has(n.key) || !mayAttempt(n)) continue;
        const lease = { tenantId: n.tenantId, caseId: claimId(n.key), owner, expiresAt };
        // Not acquired: another attempt is sending it right now.
        if ((await this.store.acquireLease(lease, now.toISOString())).acquired) mine.add(n.key);
      }
      return mine;
    };
    const claimed = this.store.unitOfWork ? await this.store.unitOfWork(claimAll) : await claimAll();
    // Claims to give back if this stops before their record is settled.
    const open = new Set(claimed);
    const out: NotificationRecord[] = [];
    let sent = 0;
    try {
      const stored = await this.reread([...unique.values()].filter((n) => claimed.has(n.key) && !isFresh(n.key)));
      for (const seen of unique.values()) {
        if (!claimed.has(seen.key)) {
          const u = unrecorded.get(seen.key);
          out.push(u ? { ...seen, status: 'sent', sentAt: u.sentAt, attempts: u.attempts } : seen);
          continue;
        }
        // A renewed claim runs CLAIM_MS from the renewal, which comes after this instant: counting from here errs early.
        const beforeHold = this.clock().getTime();
        const claim = await this.holdClaim(seen, owner, now);
        if (claim === 'lost') {
          // Taken over by another worker once our claim expired: it sends the record (or has); neither
          // send nor mark it here, and leave its claim alone.
          this.log.warn('notification.claim.lost', { tenantId: seen.tenantId, caseId: seen.caseId, step: 'notify', channel: seen.channel });
          open.delete(seen.key);
          out.push(seen);
          continue;
        }
        // A renewed claim may have lapsed in between, and another worker sent the record meanwhile: read it again.
        const n = claim === 'renewed' ? (await this.reread([seen])).get(seen.key) : isFresh(seen.key) ? seen : stored.get(seen.key);
        if (n?.status !== 'queued') {
          // Settled by another attempt since it was read (its claim is kept to expiry, as after a send
          // of ours), or gone.
          if (!n) await this.release(seen, owner);
          open.delete(seen.key);
          out.push(n ?? seen);
          continue;
        }
        if (!mayAttempt(n)) {
          // Failed again by another attempt since it was read: wait for its next turn.
          await this.release(n, owner);
          open.delete(n.key);
          out.push(n);
          continue;
        }
        const claimUntil = claim === 'held' ? now.getTime() + CLAIM_MS : beforeHold + CLAIM_MS;
        const done = await this.sendOne(n, owner, () => open.delete(n.key), claimUntil);
        if (done.status === 'sent') sent++;
        out.push(done);
        open.delete(n.key);
      }
    } finally {
      for (const key of open) {
        const n = unique.get(key);
        if (n) await this.release(n, owner).catch((err: unknown) => this.log.warn('notification.claim.kept', claimContext(n, err)));
      }
    }
    return { out, sent };
  }

  /**
   * Sends what is due (a first attempt a crash or an outage interrupted, a retry after a failed send),
   * at most 500 entries per call, oldest first; returns how many were sent. The store answers with the due
   * entries only (`dueCutoffs`) and at most 500 of them: a backlog waiting out its backoff during a long
   * channel outage is neither read every minute nor in the way of the entries that are due.
   */
  async drain(filter: { tenantId?: string; caseId?: string } = {}): Promise<number> {
    const now = this.clock();
    const listed = await this.store.listNotifications({
      ...filter,
      status: 'queued',
      due: { createdBy: dueCutoffs(now, this.retry) },
      limit: DRAIN_LIMIT,
    });
    // The store returns a createdAt that is not a canonical instant as due: isDue decides for those.
    const due = listed.filter((n) => isDue(n, now, this.retry));
    if (due.length === 0) {
      // Nothing to send, but a refused mark may be written now.
      await this.recordUnrecorded();
      return 0;
    }
    return (await this.deliverCounting(due, { onlyDue: true })).sent;
  }

  /**
   * Makes sure this delivery still holds the claim on `n` (taken at `takenAt`) for long enough to send and
   * record it. A claim younger than RENEW_AFTER_MS is `held` without asking the store (the common case); an
   * older one is extended under the same owner (`renewed`: it may have expired in between, so the record's
   * status must be read again), unless another owner holds it now (`lost`).
   */
  private async holdClaim(n: NotificationRecord, owner: string, takenAt: Date): Promise<'held' | 'renewed' | 'lost'> {
    if (this.clock().getTime() - takenAt.getTime() <= RENEW_AFTER_MS) return 'held';
    return (await this.renewClaim(n, owner)) ? 'renewed' : 'lost';
  }

  /** Extends the claim on `n` to a whole CLAIM_MS from now under the same owner; false when another owner holds it. */
  private async renewClaim(n: NotificationRecord, owner: string): Promise<boolean> {
    const at = this.clock();
    const lease = { tenantId: n.tenantId, caseId: claimId(n.key), owner, expiresAt: new Date(at.getTime() + CLAIM_MS).toISOString() };
    return (await this.store.acquireLease(lease, at.toISOString())).acquired;
  }

  /**
   * Sends `n` under its claim: renews the claim once if the send is still in flight after HEARTBEAT_MS, and
   * stops waiting after SEND_TIMEOUT_MS (aborting the channel's signal). No renewal outlives the call: the
   * timers are cancelled and a renewal in progress is awaited before it returns. A renewal the store refuses
   * is logged (the deadline keeps the send inside the claim's life anyway).
   */
  private async sendHeld(n: NotificationRecord, owner: string, claimUntil: number): Promise<SendOutcome> {
    const abort = new AbortController();
    const ctx = { tenantId: n.tenantId, caseId: n.caseId, step: 'notify', channel: n.channel };
    let settled = false;
    let lost = false;
    let until = claimUntil;
    let renewing: Promise<void> = Promise.resolve();
    let cancelBeat = (): void => undefined;
    const beat = (): void => {
      cancelBeat = this.setTimer(HEARTBEAT_MS, () => {
        const renewedFrom = this.clock().getTime();
        renewing = this.renewClaim(n, owner).then(
          (held) => {
            if (held) until = Math.max(until, renewedFrom + CLAIM_MS);
            if (settled || held) return;
            // Taken over: this process stalled past the claim's expiry. The new owner sends it; stop ours if the channel can.
            lost = true;
            this.log.warn('notification.claim.lost', ctx);
            abort.abort(new DOMException('the claim was taken over by another delivery', 'AbortError'));
          },
          (err: unknown) => {
            this.log.warn('notification.claim.renew.failed', { ...ctx, err });
          },
        );
      });
    };
    let cancelDeadline = (): void => undefined;
    const deadline = new Promise<'timed-out'>((resolve) => {
      cancelDeadline = this.setTimer(SEND_TIMEOUT_MS, () => resolve('timed-out'));
    });
    beat();
    // A sender that throws instead of rejecting fails the same way.
    const send = (async () => this.sender.send(n, abort.signal))();
    try {
      const first = await Promise.race([send.then(() => 'sent' as const), deadline]);
      if (first === 'sent')
        return { kind: 'sent', lapsed: lost ? 'claim-taken-over' : this.clock().getTime() >= until ? 'claim-expired' : undefined };
      abort.abort(new DOMException('the send deadline passed', 'TimeoutError'));
      // A getter: a renewal still in flight (awaited below) may move the expiry on.
      return lost ? { kind: 'lost', late: send } : { kind: 'timed-out', late: send, claimUntil: () => until };
    } catch (err) {
      return lost ? { kind: 'lost', late: send } : { kind: 'failed', err };
    } finally {
      settled = true;
      cancelBeat();
      cancelDeadline();
      await renewing;
    }
  }

  /** This process's sends on this store whose `sent` mark is still to be written. */
  private unrecorded(): BoundedMap<string, UnrecordedSend> {
    let m = unrecordedByStore.get(this.store);
    if (!m) {
      m = new BoundedMap(UNRECORDED_MAX);
      unrecordedByStore.set(this.store, m);
    }
    return m;
  }

  /** Writes the `sent` marks the store refused before, oldest first; stops at the first refusal (the store is still down). */
  private async recordUnrecorded(): Promise<void> {
    const pending = this.unrecorded();
    for (const u of [...pending.values()]) {
      try {
        await this.store.markNotification(u.tenantId, u.key, { status: 'sent', sentAt: u.sentAt, attempts: u.attempts });
      } catch {
        return;
      }
      pending.delete(u.key);
      this.log.info('notification.sent.recorded', { tenantId: u.tenantId, caseId: u.caseId, step: 'notify' });
    }
  }

  /** The stored records of the cases of `records`, by key (one read per case). */
  private async reread(records: readonly NotificationRecord[]): Promise<Map<string, NotificationRecord>> {
    const cases = new Map<string, { tenantId: string; caseId: string }>();
    for (const n of records) cases.set(`${n.tenantId}\n${n.caseId}`, { tenantId: n.tenantId, caseId: n.caseId });
    const byKey = new Map<string, NotificationRecord>();
    for (const c of cases.values()) for (const n of await this.store.listNotifications(c)) byKey.set(n.key, n);
    return byKey;
  }

  /**
   * Sends one claimed, queued record and records the outcome. Throws only when a failure cannot be recorded.
   * `keepClaim` is called when the claim must be kept to its expiry even if this throws (a send that may still arrive).
   */
  private async sendOne(n: NotificationRecord, owner: string, keepClaim: () => void, claimUntil: number): Promise<NotificationRecord> {
    const attempts = n.attempts + 1;
    if (n.payload === '') {
      // Nothing to say: the text is gone (Cosmos: its payload document expired before this entry
      // was delivered). Sending an empty message and calling it sent would lose the notification
      // silently; `failed` keeps it visible on the case and out of every later drain.
      const lastError = 'payload missing: the notification text is no longer stored';
      await this.store.markNotification(n.tenantId, n.key, { status: 'failed', attempts, lastError });
      this.log.error('notification.payload.missing', {
        tenantId: n.tenantId,
        caseId: n.caseId,
        step: 'notify',
        kind: n.kind,
        channel: n.channel,
      });
      return { ...n, status: 'failed', attempts, lastError };
    }
    const outcome = await this.sendHeld(n, owner, claimUntil);
    switch (outcome.kind) {
      case 'sent':
        break;
      case 'failed':
        return this.recordFailure(n, attempts, outcome.err, owner);
      case 'timed-out': {
        // Counted as a failed attempt (with its backoff), but the claim is kept to its expiry, not given
        // back, even if this delivery stops: the channel may still deliver it, and no retry may start
        // meanwhile. If it does answer in this process, the send is recorded after all, once the failure
        // mark is written (the sent mark then replaces it).
        keepClaim();
        const timeout = new DOMException(`no answer from the channel within ${SEND_TIMEOUT_MS / 1000} s`, 'TimeoutError');
        const failing = this.recordFailure(n, attempts, timeout, owner, { keepClaim: true });
        // When the channel answered, not when the failure mark is written: that decides whether the claim still held.
        const answeredAt = outcome.late.then(() => this.clock().getTime());
        void Promise.allSettled([failing, answeredAt]).then(([, answered]) =>
          answered.status === 'fulfilled'
            ? this.recordLateSend(n, attempts, answered.value >= outcome.claimUntil() ? 'claim-expired' : undefined)
            : undefined,
        );
        return failing;
      }
      case 'lost':
        // The new owner settles it (a send of ours that went through anyway is the crash case): no mark, no
        // release. If the channel still answers, both may have sent it: an operator is told which record.
        void outcome.late.then(
          () => this.logLateSend(n, attempts, 'claim-taken-over', false),
          () => undefined,
        );
        return n;
      default: {
        const never: never = outcome;
        return never;
      }
    }
    // Sent: from here on nothing may count it as a failed send (that would release the claim and send it again).
    const sentAt = this.clock().toISOString();
    const recorded = await this.recordSent(n, sentAt, attempts);
    if (recorded) {
      this.log.info('notification.sent', { tenantId: n.tenantId, caseId: n.caseId, step: 'notify', kind: n.kind, channel: n.channel });
    }
    // Answered only after the claim lapsed (this process stalled): the worker that took it over may have sent it too.
    if (outcome.lapsed !== undefined) this.logLateSend(n, attempts, outcome.lapsed, recorded);
    return { ...n, status: 'sent', sentAt, attempts };
  }

  /**
   * Records a send that succeeded, trying a few times. If the store still refuses, the claim is kept, the
   * mark is remembered for the next delivery or drain of this process to write (the record is not sent
   * again meanwhile), and the failure is logged at error level: if the process ends first, the record is
   * sent again once its claim expires.
   */
  private async recordSent(n: NotificationRecord, sentAt: string, attempts: number): Promise<boolean> {
    try {
      await withRetry(() => this.store.markNotification(n.tenantId, n.key, { status: 'sent', sentAt, attempts }), {
        attempts: MARK_ATTEMPTS,
        baseMs: 100,
        maxMs: 1_000,
        isRetryable: () => true,
        ...(this.options.sleep ? { sleep: this.options.sleep } : {}),
      });
      return true;
    } catch (err) {
      this.unrecorded().set(n.key, { tenantId: n.tenantId, caseId: n.caseId, key: n.key, sentAt, attempts });
      this.log.error('notification.sent.unrecorded', { ...claimContext(n, err), attempts });
      return false;
    }
  }

  /**
   * Records a send that answered after its deadline, once its failure was recorded; never throws (nobody
   * awaits it). `lapsed`: the claim had expired when the channel answered, so another worker may have
   * taken the record over and sent it too: logged as `outbox.late-send` whether or not the mark is written.
   */
  private async recordLateSend(n: NotificationRecord, attempts: number, lapsed: LateSendReason | undefined): Promise<void> {
    let recorded = false;
    try {
      recorded = await this.recordSent(n, this.clock().toISOString(), attempts);
      if (recorded && lapsed === undefined) {
        this.log.info('notification.sent.late', {
          tenantId: n.tenantId,
          caseId: n.caseId,
          step: 'notify',
          kind: n.kind,
          channel: n.channel,
        });
      }
    } catch (err) {
      this.log.error('notification.sent.unrecorded', { ...claimContext(n, err), attempts });
    }
    if (lapsed !== undefined) this.logLateSend(n, attempts, lapsed, recorded);
  }

  /**
   * Logs a send the channel took after this delivery's claim on it had lapsed (`outbox.late-send`): the
   * worker that took the record over may have sent it too. The record's key names it for the operator
   * (and for the channel's own de-duplication, where it has one); `recorded` says whether it is marked sent.
   */
  private logLateSend(n: NotificationRecord, attempts: number, reason: LateSendReason, recorded: boolean): void {
    this.log.warn('outbox.late-send', {
      tenantId: n.tenantId,
      caseId: n.caseId,
      step: 'notify',
      kind: n.kind,
      channel: n.channel,
      key: n.key,
      attempts,
      reason,
      recorded,
    });
  }

  /**
   * Records a failed send: queued for a later attempt, or `failed` once out of attempts; then gives the claim
   * back, unless `keepClaim` (a send that may still arrive).
   */
  private async recordFailure(
    n: NotificationRecord,
    attempts: number,
    err: unknown,
    owner: string,
    options: { keepClaim?: boolean } = {},
  ): Promise<NotificationRecord> {
    const lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const ctx = { tenantId: n.tenantId, caseId: n.caseId, step: 'notify', channel: n.channel };
    let result: NotificationRecord;
    if (attempts >= this.retry.maxAttempts) {
      await this.store.markNotification(n.tenantId, n.key, { status: 'failed', attempts, lastError });
      result = { ...n, status: 'failed', attempts, lastError };
      this.log.error('notification.abandoned', { ...ctx, kind: n.kind, attempts });
    } else {
      await this.store.markNotification(n.tenantId, n.key, { status: 'queued', attempts, lastError });
      result = { ...n, attempts, lastError };
      this.log.warn('notification.failed', { ...ctx, attempts, err });
    }
    // The next attempt (any worker) may take it when due; after a success the claim is kept until it
    // expires instead, so an attempt holding a stale "queued" view of a fresh record cannot send it again.
    if (!options.keepClaim) await this.release(n, owner);
    return result;
  }

  private async release(n: NotificationRecord, owner: string): Promise<void> {
    await this.store.releaseLease(n.tenantId, claimId(n.key), owner);
  }
}

function claimContext(n: NotificationRecord, err: unknown): Record<string, unknown> & { tenantId: string; caseId: string } {
  return { tenantId: n.tenantId, caseId: n.caseId, step: 'notify', kind: n.kind, channel: n.channel, err };
}

/** A running drain loop. */
export interface DrainLoop {
  /** Stops the loop; resolves once a drain in progress has finished. */
  stop(): Promise<void>;
}

/**
 * Drains the outbox every `everyMs` until stopped: in a long-running process (`triage serve`) what
 * the `outboxDrain` timer function does in Azure. One drain at a time (the next is scheduled when the
 * last has ended, so a slow channel never stacks drains); a failed drain is logged and the loop goes on.
 * The timer does not keep the process alive.
 */
export function startDrainLoop(dispatcher: Pick<OutboxDispatcher, 'drain'>, log: Logger, everyMs: number): DrainLoop {
  if (!Number.isFinite(everyMs) || everyMs < 1)
    throw new ConfigError('outbox drain interval', `must be a positive number of ms, got ${everyMs}`);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(tick, everyMs);
    timer.unref();
  };
  const tick = (): void => {
    running = (async () => {
      try {
        const sent = await dispatcher.drain();
        if (sent > 0) log.info('outbox.drained', { step: 'notify', sent });
      } catch (err) {
        // A store outage is expected now and then (warn); anything else is a bug worth an error line. Both retry next time.
        if (err instanceof TriageError) log.warn('outbox.drain.failed', { step: 'notify', err });
        else log.error('outbox.drain.failed', { step: 'notify', err });
      }
    })();
    void running.then(schedule);
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
