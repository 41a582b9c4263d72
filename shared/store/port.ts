/**
 * The Store port: everything the pipeline persists goes through this small
 * interface. Adapters: SQLite (embedded default) and Cosmos DB. One contract
 * test suite (`tests/contract/store.contract.ts`) runs against both.
 *
 * Design notes
 * - All methods are async so the Cosmos adapter fits; the SQLite adapter resolves synchronously.
 * - Cases are partitioned by tenantId; every hot-path call names the tenant, so the
 *   Cosmos adapter never needs a cross-partition query.
 * - Side effects are keyed: `enqueueNotification` inserts at most once per key, so a
 *   redelivery can never notify twice.
 */
import type { Case, KillChainPhase, NotificationKind, Severity, TriageResult } from '../model/domain';

/** Processing state of a stored case revision. */
export const CASE_STATES = ['triaged', 'done'] as const;
/** `triaged`: the result is computed and saved, side effects may be incomplete; `done`: all steps finished. */
export type CaseState = (typeof CASE_STATES)[number];

/** A stored case revision with its result. */
export interface CaseRecord {
  readonly tenantId: string;
  readonly caseId: string;
  readonly revision: number;
  readonly revisionKey: string;
  readonly fingerprint: string;
  readonly state: CaseState;
  readonly detectedAt: string;
  readonly case: Case;
  readonly result: TriageResult;
  /** Opaque concurrency token (ETag / row version); set by the store on read. */
  readonly etag?: string;
}

/** One row of the entity/time index used for correlation. */
export interface EntitySighting {
  readonly tenantId: string;
  readonly entityKey: string;
  readonly caseId: string;
  readonly detectedAt: string;
  readonly phases: readonly KillChainPhase[];
  readonly playbook: string;
  readonly severity: Severity;
  /**
   * Optional, from stores that keep it at hand (SQLite's in-memory index, computed once per sighting
   * when it is indexed): `detectedAt` in epoch ms, exactly `parseInstant(detectedAt)` (NaN when
   * unreadable). Correlation reads it instead of parsing `detectedAt` for every row of every look-up;
   * without it (Cosmos, rows built by hand) it parses, with the same verdict.
   */
  readonly detectedAtMs?: number;
  /**
   * Optional, as `detectedAtMs`: `phases` as a bit mask, bit i for `KILL_CHAIN_PHASES[i]`, exactly
   * `maskOf(phases)` (correlation/killchain). Correlation reads it instead of walking `phases` per row.
   */
  readonly phaseMask?: number;
}

/** Query for sightings of any of `keys` in a tenant within [from, to]. */
export interface RelatedQuery {
  readonly tenantId: string;
  readonly keys: readonly string[];
  readonly from: string;
  readonly to: string;
  /** Sightings of this case are not returned. */
  readonly excludeCaseId?: string;
  /**
   * Saturation bound: a key with this many sightings or more in the window is reported in
   * `saturated` without its rows (correlation treats it as infrastructure and never reads
   * them); keys below it return all their rows, newest first.
   */
  readonly limitPerKey: number;
}

/** What findRelated answers. */
export interface RelatedResult {
  /** Sightings of the keys below the saturation bound, newest first per key. */
  readonly sightings: EntitySighting[];
  /** Keys with at least `limitPerKey` sightings in the window (their rows are not returned). */
  readonly saturated: string[];
  /**
   * Optional, from stores that can tell (SQLite): whether another writer (another process on the same
   * file) has committed correlation rows since this answer was read, rows it could not show. Asked just
   * after the caller's own commit, true means a case committed meanwhile may have missed the caller's
   * case as the caller missed it, and the pipeline looks again (see recheckRelated). Answered from
   * memory, no query. A method rather than a field, so an answer still compares and serialises as its
   * rows. Undefined where the store cannot tell (Cosmos: see `recheckAfterCommit`).
   */
  othersCommittedSince?(): boolean;
}

/** A rejected input kept for inspection and replay. */
export interface ParkedItem {
  readonly id: string;
  readonly tenantId?: string;
  /** Where it came from: `http:/api/incidents`, `eventhub:am-securityalert`, `replay:FILE`, … */
  readonly source: string;
  readonly reason: string;
  /** Error class name (`InputValidationError`, `StoreUnavailableError`, …). */
  readonly errorName: string;
  readonly issues: readonly { path: string; reason: string }[];
  /** The original body as received (truncated to a bounded size by the caller). */
  readonly body: string;
  readonly parkedAt: string;
  readonly replayedAt?: string;
}

/** A notification in the outbox; `key` makes it unique per case, revision-independent kind and recipient. */
export interface NotificationRecord {
  /** `${tenantId}|${caseId}|${kind}|${recipient}|${step}`: the idempotency key. */
  readonly key: string;
  readonly tenantId: string;
  readonly caseId: string;
  readonly revision: number;
  readonly kind: NotificationKind;
  readonly channel: string;
  readonly recipient: string;
  readonly payload: string;
  readonly createdAt: string;
  readonly status: 'queued' | 'sent' | 'failed' | 'suppressed';
  readonly sentAt?: string;
  readonly attempts: number;
  readonly lastError?: string;
}

/** A processing lease on a case (conditional create with expiry). */
export interface Lease {
  readonly tenantId: string;
  readonly caseId: string;
  readonly owner: string;
  readonly expiresAt: string;
}

/**
 * A listing's `limit` as every adapter reads it: undefined stays unlimited, anything else becomes a
 * non-negative integer (a fraction rounds down; a negative or NaN limit lists nothing).
 */
export function listLimit(limit: number | undefined): number | undefined {
  return limit === undefined ? undefined : Math.max(0, Math.floor(limit) || 0);
}

/** The store port. */
export interface Store {
  /** Latest revision of a case. */
  getCase(tenantId: string, caseId: string): Promise<CaseRecord | undefined>;
  /**
   * Latest revision of a case when the tenant is unknown (HTTP GET /api/cases/{id}); may be
   * cross-partition. Throws AmbiguousCaseError when the id names cases of several tenants.
   */
  findCase(caseId: string): Promise<CaseRecord | undefined>;
  /**
   * Saves a case revision, replaces its entity index rows and inserts its new outbox
   * entries, as one unit (SQLite transaction; Cosmos transactional batch in the tenant's
   * partition), so a crash can never leave a case without its notifications or a
   * notification without its case.
   * `expectedEtag`: the etag read before (undefined = must not exist yet). A mismatch
   * throws ConcurrencyConflictError and nothing is written.
   * `outbox` entries whose key already exists are left as they are (idempotent).
   */
  putCase(
    record: CaseRecord,
    sightings: readonly EntitySighting[],
    expectedEtag: string | undefined,
    outbox?: readonly NotificationRecord[],
  ): Promise<CaseRecord>;
  /** Sightings for correlation (indexed by tenant, entity key, time), and the saturated keys. */
  findRelated(query: RelatedQuery): Promise<RelatedResult>;

  /** Tries to take the processing lease; returns the lease held (ours or another's). */
  acquireLease(lease: Lease, now: string): Promise<{ acquired: boolean; lease: Lease }>;
  /** Releases the lease if we own it. */
  releaseLease(tenantId: string, caseId: string, owner: string): Promise<void>;

  /** Inserts if the key is new. Returns 'created' or 'exists' (then nothing changed). */
  enqueueNotification(n: NotificationRecord): Promise<'created' | 'exists'>;
  /** Updates delivery status of an outbox entry. */
  markNotification(
    tenantId: string,
    key: string,
    update: { status: NotificationRecord['status']; sentAt?: string; lastError?: string; attempts: number },
  ): Promise<void>;
  /**
   * Outbox entries matching every filter given (AND), oldest first (createdAt, then key). Without
   * tenantId the query may be cross-partition.
   */
  listNotifications(filter: {
    tenantId?: string;
    caseId?: string;
    status?: NotificationRecord['status'];
    /**
     * Only entries due for an attempt: one with `attempts = i` is returned when its createdAt ≤
     * createdBy[min(i, createdBy.length - 1)] (ISO instants, as stored; an attempts count below 0 counts as 0).
     * Compared as text, which is time order for canonical instants (`toISOString()`, what the pipeline
     * writes). An entry whose createdAt is not a canonical instant is returned whatever its attempts:
     * the store cannot place it in time, so the caller decides (notify/outbox.ts `isDue`), and an
     * unreadable createdAt is never stranded. With no cut-off at all, only such entries are returned.
     * The cut-offs are the caller's retry policy (`dueCutoffs`), so the store needs no due-time column.
     */
    due?: { readonly createdBy: readonly string[] };
    /** At most this many (a non-negative integer), oldest createdAt first; the rest are not read. */
    limit?: number;
  }): Promise<NotificationRecord[]>;

  /** Keeps a rejected item. Idempotent on `id`. */
  park(item: ParkedItem): Promise<void>;
  /** Lists parked items, newest first. */
  listParked(filter?: { tenantId?: string; limit?: number; includeReplayed?: boolean }): Promise<ParkedItem[]>;
  /** Marks a parked item as replayed. */
  markParkedReplayed(id: string, at: string): Promise<void>;

  /**
   * Optional: runs `fn` as one unit of work — every write made inside it commits together,
   * once (SQLite: one transaction for a whole Event Hub batch), or not at all if `fn` throws;
   * other callers wait meanwhile. Adapters without it (Cosmos: each case is its own atomic
   * batch already) leave it undefined and callers run `fn` directly.
   */
  unitOfWork?<T>(fn: () => Promise<T>): Promise<T>;

  /**
   * True when `putCase` applies its writes (index included) before it first awaits, so a
   * `findRelated` issued after the call already sees them even though the commit comes later
   * (SQLite's group commit). The pipeline then orders look-up → write per process, so two
   * related alerts triaged at the same moment see each other in arrival order instead of both
   * missing each other. Undefined for adapters whose writes are remote calls (Cosmos).
   */
  readonly appliesWritesOnCall?: boolean;

  /**
   * Optional: builds what the store would otherwise build on first use, so the first request
   * does not pay for it (SQLite: reads its correlation index from the log). Long-running hosts
   * call it before taking traffic.
   */
  warm?(): Promise<void>;

  /**
   * Optional: true while the store's writes fail for a reason that is not a lost race (SQLite: disk
   * full, read-only or unusable file, I/O error, database file deleted or replaced), from such a failure
   * until a write commits again. Reads may still answer meanwhile; GET /api/health then says 503.
   * Answered from memory.
   */
  writesFailing?(): boolean;

  /** Frees resources. */
  close(): Promise<void>;
}
