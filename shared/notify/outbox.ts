/**
 * Outbox delivery. The outbox (the store's notification records) is the source
 * of truth: a record is created at most once per key. Delivery is
 * at-least-once per record; channels make it effectively once (a JSON-lines
 * file here; PagerDuty `dedup_key`, Teams/Graph message ids in their own issue).
 */
import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from '../log';
import type { NotificationRecord, Store } from '../store/port';

/** Delivers one outbox record to its channel. Throws on failure. */
export interface ChannelSender {
  send(n: NotificationRecord): Promise<void>;
}

/**
 * The embedded default channel: appends one JSON line per notification to a
 * file (`OUTBOX_FILE`, default `./data/outbox.jsonl`) so an operator can `tail -f` it.
 */
export class FileChannel implements ChannelSender {
  private folderReady = false;

  /** Creates the channel; the parent folder is created on first send. */
  constructor(private readonly file: string) {}

  /** Appends the record as one JSON line. */
  async send(n: NotificationRecord): Promise<void> {
    if (!this.folderReady) {
      mkdirSync(dirname(this.file), { recursive: true });
      this.folderReady = true;
    }
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
    appendFileSync(this.file, `${line}\n`);
  }
}

/** How long a sender may hold a record before another worker may take it over. */
const CLAIM_MS = 120_000;

/** Lease id of an outbox record: the key may hold characters Cosmos ids cannot. */
export function claimId(key: string): string {
  return `outbox-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/**
 * Delivers queued outbox records through a sender and records the outcome.
 * Before sending, a worker claims the record (a lease with expiry, conditional create):
 * two workers racing on the same case never both send, and a claim left by a crashed
 * worker is taken over once it expires.
 */
export class OutboxDispatcher {
  private readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  /** Creates a dispatcher. */
  constructor(
    private readonly store: Store,
    private readonly sender: ChannelSender,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Sends the given queued records: claim them all, then send each and record its outcome at
   * once. Where the store groups writes (SQLite) the claims commit together, before any send.
   * The outcomes are not grouped on purpose: a crash between a send and its record may repeat
   * that one notification, never a whole batch of them.
   */
  async deliver(records: readonly NotificationRecord[]): Promise<NotificationRecord[]> {
    const now = this.clock();
    const expiresAt = new Date(now.getTime() + CLAIM_MS).toISOString();
    const claimAll = async (): Promise<Set<string>> => {
      const mine = new Set<string>();
      for (const n of records) {
        if (n.status !== 'queued') continue;
        const lease = { tenantId: n.tenantId, caseId: claimId(n.key), owner: this.owner, expiresAt };
        // Not acquired: another worker is sending it right now.
        if ((await this.store.acquireLease(lease, now.toISOString())).acquired) mine.add(n.key);
      }
      return mine;
    };
    const claimed = this.store.unitOfWork ? await this.store.unitOfWork(claimAll) : await claimAll();
    const out: NotificationRecord[] = [];
    for (const n of records) {
      if (!claimed.has(n.key)) {
        out.push(n);
        continue;
      }
      const attempts = n.attempts + 1;
      if (n.payload === '') {
        // Nothing to say: the text is gone (Cosmos: its payload document expired before this entry
        // was delivered). Sending an empty message and calling it sent would lose the notification
        // silently; `failed` keeps it visible on the case and out of every later drain.
        const lastError = 'payload missing: the notification text is no longer stored';
        await this.store.markNotification(n.tenantId, n.key, { status: 'failed', attempts, lastError });
        out.push({ ...n, status: 'failed', attempts, lastError });
        this.log.error('notification.payload.missing', {
          tenantId: n.tenantId,
          caseId: n.caseId,
          step: 'notify',
          kind: n.kind,
          channel: n.channel,
        });
        continue;
      }
      try {
        await this.sender.send(n);
        const sentAt = this.clock().toISOString();
        await this.store.markNotification(n.tenantId, n.key, { status: 'sent', sentAt, attempts });
        out.push({ ...n, status: 'sent', sentAt, attempts });
        this.log.info('notification.sent', { tenantId: n.tenantId, caseId: n.caseId, step: 'notify', kind: n.kind, channel: n.channel });
      } catch (err) {
        const lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        await this.store.markNotification(n.tenantId, n.key, { status: 'queued', attempts, lastError });
        out.push({ ...n, attempts, lastError });
        this.log.warn('notification.failed', { tenantId: n.tenantId, caseId: n.caseId, step: 'notify', channel: n.channel, err });
        // Let the next attempt (any worker) retry now; after a success the claim is kept until it
        // expires, so a worker holding a stale "queued" view cannot claim and send it again.
        await this.store.releaseLease(n.tenantId, claimId(n.key), this.owner);
      }
    }
    return out;
  }

  /** Re-sends everything still queued (e.g. after a crash between commit and delivery). */
  async drain(filter: { tenantId?: string; caseId?: string } = {}): Promise<number> {
    const queued = await this.store.listNotifications({ ...filter, status: 'queued' });
    const done = await this.deliver(queued);
    return done.filter((n) => n.status === 'sent').length;
  }
}
