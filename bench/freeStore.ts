/**
 * A Store for the bench only: storing is free. Cases, outbox entries and the correlation index
 * live in this process's maps, nothing is serialised, copied or made durable. It answers the
 * question the throughput target raises: what does the pipeline's own work (parse, dedupe,
 * classify, look-up, correlate, score, report, plan notifications) cost when the store costs
 * nothing? Never wired into the product: a SOC store that forgets everything on exit is no store.
 *
 * It keeps the semantics the pipeline relies on, so the pipeline takes the same paths as on
 * SQLite: etag-checked writes, outbox entries idempotent by key, and look-ups answered by the
 * same in-memory index the SQLite store uses (SightingIndex), which sees a write as soon as
 * putCase is called (`appliesWritesOnCall`, as SQLite's group commit).
 */
import { AmbiguousCaseError, ConcurrencyConflictError } from '../shared/errors';
import { canonicalInstant, isCanonicalInstant } from '../shared/model/instant';
import type {
  CaseRecord,
  EntitySighting,
  Lease,
  NotificationRecord,
  ParkedItem,
  RelatedQuery,
  RelatedResult,
  Store,
} from '../shared/store/port';
import { listLimit } from '../shared/store/port';
import { groupSightings, SightingIndex } from '../shared/store/sightingIndex';

/** Binary string order (SQLite's default collation). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Creates an empty free store (see the module comment). */
export function createFreeStore(): Store {
  const cases = new Map<string, CaseRecord>();
  const outbox = new Map<string, NotificationRecord>();
  const parked = new Map<string, ParkedItem>();
  const leases = new Map<string, Lease>();
  const index = new SightingIndex();
  let version = 0;
  const caseKey = (tenantId: string, caseId: string): string => `${tenantId}|${caseId}`;
  return {
    appliesWritesOnCall: true,
    async getCase(tenantId: string, caseId: string): Promise<CaseRecord | undefined> {
      return cases.get(caseKey(tenantId, caseId));
    },
    async findCase(caseId: string): Promise<CaseRecord | undefined> {
      const found = [...cases.values()].filter((r) => r.caseId === caseId);
      if (found.length > 1) throw new AmbiguousCaseError(caseId, found.map((r) => r.tenantId).sort());
      return found[0];
    },
    async putCase(
      record: CaseRecord,
      sightings: readonly EntitySighting[],
      expectedEtag: string | undefined,
      entries: readonly NotificationRecord[] = [],
    ): Promise<CaseRecord> {
      const key = caseKey(record.tenantId, record.caseId);
      if (cases.get(key)?.etag !== expectedEtag) throw new ConcurrencyConflictError(`case ${record.caseId} changed since it was read`);
      for (const n of entries) if (!outbox.has(n.key)) outbox.set(n.key, n);
      index.replace(record.tenantId, record.caseId, groupSightings(sightings));
      const stored = { ...record, etag: String(++version) };
      cases.set(key, stored);
      return stored;
    },
    async findRelated(query: RelatedQuery): Promise<RelatedResult> {
      return index.query({ ...query, from: canonicalInstant(query.from), to: canonicalInstant(query.to) });
    },
    async acquireLease(lease: Lease, now: string): Promise<{ acquired: boolean; lease: Lease }> {
      const key = caseKey(lease.tenantId, lease.caseId);
      const held = leases.get(key);
      if (held !== undefined && held.owner !== lease.owner && !(Date.parse(held.expiresAt) <= Date.parse(now))) {
        return { acquired: false, lease: { ...held } };
      }
      leases.set(key, { ...lease });
      return { acquired: true, lease: { ...lease } };
    },
    async releaseLease(tenantId: string, caseId: string, owner: string): Promise<void> {
      const key = caseKey(tenantId, caseId);
      if (leases.get(key)?.owner === owner) leases.delete(key);
    },
    async enqueueNotification(n: NotificationRecord): Promise<'created' | 'exists'> {
      if (outbox.has(n.key)) return 'exists';
      outbox.set(n.key, n);
      return 'created';
    },
    async markNotification(tenantId, key, update): Promise<void> {
      const n = outbox.get(key);
      if (n === undefined || n.tenantId !== tenantId) return;
      outbox.set(key, {
        ...n,
        status: update.status,
        attempts: update.attempts,
        ...(update.sentAt !== undefined ? { sentAt: update.sentAt } : {}),
        ...(update.lastError !== undefined ? { lastError: update.lastError } : {}),
      });
    },
    async listNotifications(filter): Promise<NotificationRecord[]> {
      const cutoffs = filter.due?.createdBy;
      // As SQLite: a canonical createdAt is compared as text against the cut-off of its attempts; any other is due.
      const due = (n: NotificationRecord): boolean => {
        if (cutoffs === undefined || !isCanonicalInstant(n.createdAt)) return true;
        const cutoff = cutoffs[Math.min(Math.max(n.attempts, 0), cutoffs.length - 1)];
        return cutoff !== undefined && compare(n.createdAt, cutoff) <= 0;
      };
      const limit = listLimit(filter.limit);
      return [...outbox.values()]
        .filter(
          (n) =>
            (filter.tenantId === undefined || n.tenantId === filter.tenantId) &&
            (filter.caseId === undefined || n.caseId === filter.caseId) &&
            (filter.status === undefined || n.status === filter.status) &&
            due(n),
        )
        .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.key, b.key)) // oldest first, as SQLite
        .slice(0, limit);
    },
    async park(item: ParkedItem): Promise<void> {
      if (!parked.has(item.id)) parked.set(item.id, item);
    },
    async listParked(filter: { tenantId?: string; limit?: number; includeReplayed?: boolean } = {}): Promise<ParkedItem[]> {
      return [...parked.values()]
        .filter(
          (p) =>
            (filter.tenantId === undefined || p.tenantId === filter.tenantId) && (filter.includeReplayed || p.replayedAt === undefined),
        )
        .sort((a, b) => compare(b.parkedAt, a.parkedAt) || compare(b.id, a.id)) // newest first, as SQLite
        .slice(0, Math.max(0, Math.floor(filter.limit ?? 1000))); // SQLite's default limit
    },
    async markParkedReplayed(id: string, at: string): Promise<void> {
      const p = parked.get(id);
      if (p !== undefined) parked.set(id, { ...p, replayedAt: at });
    },
    async close(): Promise<void> {},
  };
}
