/**
 * The embedded default Store: one SQLite file (better-sqlite3), WAL journal, `synchronous=NORMAL`
 * (a commit survives a process crash; the last commits before a power cut may not).
 *
 * Schema (MIGRATIONS, versioned with `PRAGMA user_version`)
 * - `cases`: the latest revision per (tenant_id, case_id), unique on (case_id, tenant_id) so the
 *   same index serves getCase and findCase. `version` is the row version the etag is made of
 *   (`String(version)`): every write bumps it; an update applies only when the version read before
 *   still matches. `doc` holds `{ case, result }` as JSON, serialised once per write.
 *   `sighting_ids` lists the exact primary keys of the case's index rows, so a re-put deletes
 *   them by key instead of maintaining a second index on `sightings` (one random page less per write).
 * - `case_revisions`: append-only log of superseded revisions: an update first copies the row it
 *   replaces (inside SQLite, no re-serialisation), so `case_revisions` + `cases` is the audit trail of
 *   how a case's verdict changed. A new case writes nothing here (most cases never get a second
 *   revision), so the hot path pays for history only when there is history. `keepRevisions: false` turns it off.
 * - `sightings`: the correlation index, WITHOUT ROWID, primary key
 *   (tenant_id, entity_key, detected_at, case_id): "newest sightings of a key in a window" is one
 *   backwards range scan of the clustered key stopped by LIMIT (one prepared query per key).
 *   `detected_at` is stored as a canonical instant (`YYYY-MM-DDTHH:mm:ss.sssZ`) so string order is
 *   time order whatever ISO spelling the source used.
 * - `leases`, `notifications` (the outbox; key unique → INSERT OR IGNORE), `parked`.
 * No foreign keys: the hot tables are written once per alert and every extra B-tree probe counts.
 *
 * putCase is one transaction: case row (conditional), revision log, index rows, outbox entries.
 * better-sqlite3 is synchronous: every method does its work before returning an already settled
 * promise. Statements are prepared once per store.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ConcurrencyConflictError, ConfigError, StoreUnavailableError } from '../errors';
import { type Logger, silentLogger } from '../log';
import type { KillChainPhase, Severity } from '../model/domain';
import type {
  CaseRecord,
  CaseState,
  EntitySighting,
  Lease,
  NotificationRecord,
  ParkedItem,
  RelatedQuery,
  RelatedResult,
  Store,
} from './port';

/** One schema step. Steps run in order, each in its own transaction with the `user_version` bump. */
export interface Migration {
  /** 1-based, contiguous. */
  readonly version: number;
  readonly description: string;
  readonly up: (db: Database.Database) => void;
}

/** The schema history of the SQLite store. Append new steps; never edit a released one. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'cases, case revisions, sightings, leases, notifications, parked',
    up: (db) => {
      db.exec(`
        CREATE TABLE cases (
          tenant_id    TEXT    NOT NULL,
          case_id      TEXT    NOT NULL,
          revision     INTEGER NOT NULL,
          revision_key TEXT    NOT NULL,
          fingerprint  TEXT    NOT NULL,
          state        TEXT    NOT NULL,
          detected_at  TEXT    NOT NULL,
          version      INTEGER NOT NULL,
          sighting_ids TEXT    NOT NULL,
          doc          TEXT    NOT NULL,
          updated_at   TEXT    NOT NULL,
          UNIQUE (case_id, tenant_id)
        );

        CREATE TABLE case_revisions (
          tenant_id    TEXT    NOT NULL,
          case_id      TEXT    NOT NULL,
          revision     INTEGER NOT NULL,
          revision_key TEXT    NOT NULL,
          fingerprint  TEXT    NOT NULL,
          state        TEXT    NOT NULL,
          doc          TEXT    NOT NULL,
          stored_at    TEXT    NOT NULL
        );

        CREATE TABLE sightings (
          tenant_id   TEXT NOT NULL,
          entity_key  TEXT NOT NULL,
          detected_at TEXT NOT NULL,
          case_id     TEXT NOT NULL,
          phases      TEXT NOT NULL, -- JSON array of kill-chain phases
          playbook    TEXT NOT NULL,
          severity    TEXT NOT NULL,
          PRIMARY KEY (tenant_id, entity_key, detected_at, case_id)
        ) WITHOUT ROWID;

        CREATE TABLE leases (
          tenant_id  TEXT NOT NULL,
          case_id    TEXT NOT NULL,
          owner      TEXT NOT NULL,
          expires_at TEXT NOT NULL,
          PRIMARY KEY (tenant_id, case_id)
        ) WITHOUT ROWID;

        CREATE TABLE notifications (
          key        TEXT    NOT NULL PRIMARY KEY,
          tenant_id  TEXT    NOT NULL,
          case_id    TEXT    NOT NULL,
          revision   INTEGER NOT NULL,
          kind       TEXT    NOT NULL,
          channel    TEXT    NOT NULL,
          recipient  TEXT    NOT NULL,
          payload    TEXT    NOT NULL,
          created_at TEXT    NOT NULL,
          status     TEXT    NOT NULL,
          sent_at    TEXT,
          attempts   INTEGER NOT NULL,
          last_error TEXT
        );
        CREATE INDEX notifications_by_case ON notifications (tenant_id, case_id);
        CREATE INDEX notifications_by_status ON notifications (status, tenant_id);

        CREATE TABLE parked (
          id          TEXT NOT NULL PRIMARY KEY,
          tenant_id   TEXT,
          source      TEXT NOT NULL,
          reason      TEXT NOT NULL,
          error_name  TEXT NOT NULL,
          issues      TEXT NOT NULL,
          body        TEXT NOT NULL,
          parked_at   TEXT NOT NULL,
          replayed_at TEXT
        );
        CREATE INDEX parked_by_time ON parked (parked_at);
      `);
    },
  },
];

/**
 * Brings `db` to the last version of `migrations`: runs, in order, each step above the
 * database's `user_version`, each in one transaction together with its version bump (a
 * failing step leaves the database at the previous version). Returns the versions applied.
 * A database newer than the code is refused rather than guessed at.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS, log: Logger = silentLogger): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
  });
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length;
  if (current > latest) {
    throw new ConfigError('SQLITE_FILE', `database schema version ${current} is newer than this build supports (${latest})`);
  }
  const applied: number[] = [];
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      m.up(db);
      // PRAGMA cannot take a bound parameter; the version is a trusted integer from the list above.
      db.pragma(`user_version = ${m.version}`);
    })();
    applied.push(m.version);
    log.info('store.sqlite.migrated', { version: m.version, description: m.description });
  }
  return applied;
}

/** Options of the SQLite store. */
export interface SqliteStoreOptions {
  /** Database file (its folder is created), or `:memory:`. */
  readonly file: string;
  readonly log?: Logger;
  /** How long a writer waits for another process's lock before failing (default 5000 ms). */
  readonly busyTimeoutMs?: number;
  /** Keep superseded revisions in `case_revisions` (default true): the audit trail, written only on updates. */
  readonly keepRevisions?: boolean;
}

/**
 * Opens (creating and migrating as needed) a SQLite store.
 * Throws ConfigError when the file's schema is newer than this build.
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const log = options.log ?? silentLogger;
  const memory = options.file === ':memory:' || options.file === '';
  if (!memory && !options.file.startsWith('file:')) mkdirSync(dirname(resolve(options.file)), { recursive: true });
  const db = new Database(options.file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('foreign_keys = ON');
    // Checkpoints (and their fsync) dominate a commit's cost at the default 1,000 pages; 10,000
    // (≈ 40 MB of WAL) cut the measured commit cost by about a third. The WAL file is truncated
    // back to 64 MB after a checkpoint.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma('journal_size_limit = 67108864');
    const applied = migrate(db, MIGRATIONS, log);
    return new SqliteStore(db, options.file, applied, log, options.keepRevisions ?? true);
  } catch (err) {
    db.close();
    throw err;
  }
}

interface CaseRow {
  tenant_id: string;
  case_id: string;
  revision: number;
  revision_key: string;
  fingerprint: string;
  state: string;
  detected_at: string;
  version: number;
  doc: string;
}

/** detected_at, case_id, phases (JSON), playbook, severity. */
type RawSightingRow = [string, string, string, string, string];

/**
 * Phase lists are a handful of distinct JSON strings (`["exploitation"]`, …): parse each once.
 * The arrays are shared and frozen, so no caller can alter another's.
 */
const phaseCache = new Map<string, readonly KillChainPhase[]>();
function phasesOf(json: string): readonly KillChainPhase[] {
  let p = phaseCache.get(json);
  if (!p) {
    p = Object.freeze(JSON.parse(json) as KillChainPhase[]);
    if (phaseCache.size < 1024) phaseCache.set(json, p);
  }
  return p;
}

interface LeaseRow {
  owner: string;
  expires_at: string;
}

interface NotificationRow {
  key: string;
  tenant_id: string;
  case_id: string;
  revision: number;
  kind: string;
  channel: string;
  recipient: string;
  payload: string;
  created_at: string;
  status: string;
  sent_at: string | null;
  attempts: number;
  last_error: string | null;
}

interface ParkedRow {
  id: string;
  tenant_id: string | null;
  source: string;
  reason: string;
  error_name: string;
  issues: string;
  body: string;
  parked_at: string;
  replayed_at: string | null;
}

const CANONICAL_INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * The canonical spelling of an ISO 8601 instant (`toISOString()`), so that string order is
 * time order: `…00Z`, `…00.000Z` and `…00.0000000Z` (Sentinel) compare equal. Unparseable
 * text is kept as is. (The Cosmos adapter applies the same rule.)
 */
function instantKey(iso: string): string {
  if (CANONICAL_INSTANT.test(iso)) return iso;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString();
}

/** SQLite error codes that mean "busy / I/O trouble, try again", not "your statement is wrong". */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|READONLY)/;

function mapError(op: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) return new StoreUnavailableError(`sqlite ${op}: ${code}`, { cause: err });
  return err;
}

const PARKED_DEFAULT_LIMIT = 1000;
/** Bound of the saturation hints (cleared when full: hints only cost a re-read when lost). */
const SATURATION_HINTS = 10_000;

/** The SQLite Store. Create it with openSqliteStore. */
export class SqliteStore implements Store {
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly listNotificationStmts = new Map<string, Database.Statement>();
  private readonly listParkedStmts = new Map<string, Database.Statement>();
  private readonly putTx: Database.Transaction<
    (
      record: CaseRecord,
      sightings: readonly EntitySighting[],
      expectedEtag: string | undefined,
      outbox: readonly NotificationRecord[],
    ) => number
  >;
  private readonly leaseTx: Database.Transaction<(lease: Lease, now: string) => { acquired: boolean; lease: Lease }>;
  private closed = false;
  /** Marks the async context of an open unit of work. */
  private readonly unit = new AsyncLocalStorage<boolean>();
  /** Settles when the open unit of work ends. */
  private active: Promise<void> | undefined;
  /** Keys (tenant + key) recently seen saturated: a hint only, always re-checked by a count. */
  private readonly saturationHints = new Set<string>();

  /** Use openSqliteStore. */
  constructor(
    private readonly db: Database.Database,
    /** The database file (or `:memory:`). */
    readonly file: string,
    /** Migration versions applied when this store was opened (empty when the schema was current). */
    readonly migrationsApplied: readonly number[],
    private readonly log: Logger,
    private readonly keepRevisions: boolean,
  ) {
    this.stmt = prepareStatements(db);
    const s = this.stmt;

    this.putTx = db.transaction(
      (
        record: CaseRecord,
        sightings: readonly EntitySighting[],
        expectedEtag: string | undefined,
        outbox: readonly NotificationRecord[],
      ): number => {
        const doc = JSON.stringify({ case: record.case, result: record.result });
        const now = new Date().toISOString();
        // The exact primary keys of the case's index rows are kept on the case row, so a re-put
        // deletes them by key: cheaper per write than maintaining a second index on sightings.
        const rows = new Map<string, EntitySighting>();
        for (const x of sightings) rows.set(`${x.entityKey}\u0000${instantKey(x.detectedAt)}`, x);
        const ids = [...rows.keys()];
        const sightingIds = JSON.stringify(ids);
        let version: number;
        if (expectedEtag === undefined) {
          const r = s.insertCase.run(
            record.tenantId,
            record.caseId,
            record.revision,
            record.revisionKey,
            record.fingerprint,
            record.state,
            record.detectedAt,
            sightingIds,
            doc,
            now,
          );
          if (r.changes === 0) throw new ConcurrencyConflictError(`case ${record.caseId} already exists`);
          version = 1;
        } else {
          const current = s.caseVersion.get(record.caseId, record.tenantId) as { version: number; sighting_ids: string } | undefined;
          if (!current || String(current.version) !== expectedEtag) {
            throw new ConcurrencyConflictError(`case ${record.caseId} changed since etag ${expectedEtag} was read`);
          }
          version = current.version + 1;
          if (this.keepRevisions) s.archiveCase.run(record.caseId, record.tenantId);
          for (const id of JSON.parse(current.sighting_ids) as string[]) {
            const [key, at] = id.split('\u0000') as [string, string];
            s.deleteSighting.run(record.tenantId, key, at, record.caseId);
          }
          s.updateCase.run(
            record.revision,
            record.revisionKey,
            record.fingerprint,
            record.state,
            record.detectedAt,
            version,
            sightingIds,
            doc,
            now,
            record.caseId,
            record.tenantId,
          );
        }
        for (const [id, x] of rows) {
          const [key, at] = id.split('\u0000') as [string, string];
          // Stored under the record's tenant and case whatever the sighting says: the rows are the case's index.
          s.insertSighting.run(record.tenantId, key, at, record.caseId, JSON.stringify(x.phases), x.playbook, x.severity);
        }
        for (const n of outbox) this.insertNotification(n);
        return version;
      },
    );

    this.leaseTx = db.transaction((lease: Lease, now: string): { acquired: boolean; lease: Lease } => {
      const row = s.getLease.get(lease.tenantId, lease.caseId) as LeaseRow | undefined;
      if (row && row.owner !== lease.owner && !(Date.parse(row.expires_at) <= Date.parse(now))) {
        return { acquired: false, lease: { tenantId: lease.tenantId, caseId: lease.caseId, owner: row.owner, expiresAt: row.expires_at } };
      }
      s.putLease.run(lease.tenantId, lease.caseId, lease.owner, lease.expiresAt);
      return { acquired: true, lease: { ...lease } };
    });
  }

  /**
   * Runs `fn` as one transaction: every write made inside it (through this store) commits
   * together, once, or not at all if `fn` throws. Other callers wait until it ends, so their
   * writes never land in (or get rolled back with) this unit. Nested calls join the open unit.
   */
  async unitOfWork<T>(fn: () => Promise<T>): Promise<T> {
    if (this.unit.getStore()) return fn();
    for (let g = this.gate(); g; g = this.gate()) await g;
    // No await between the last check and taking the unit: two units can never overlap.
    let release = (): void => undefined;
    this.active = new Promise<void>((r) => {
      release = r;
    });
    try {
      return await this.unit.run(true, async () => {
        this.run('begin', () => this.db.exec('BEGIN IMMEDIATE'));
        try {
          const result = await fn();
          this.run('commit', () => this.db.exec('COMMIT'));
          return result;
        } catch (err) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw err;
        }
      });
    } finally {
      this.active = undefined;
      release();
    }
  }

  /**
   * The open unit of work to wait for, or undefined when the caller may go on (none is open,
   * or the caller is inside it). See exec.
   */
  private gate(): Promise<void> | undefined {
    return this.active && !this.unit.getStore() ? this.active : undefined;
  }

  /**
   * Waits while another caller's unit of work is open, then runs the statement(s) at once: no
   * await between the last check and the statement, so it cannot land inside another unit.
   */
  private async exec<T>(op: string, fn: () => T): Promise<T> {
    for (let g = this.gate(); g; g = this.gate()) await g;
    return this.run(op, fn);
  }

  /** Runs `fn`, mapping SQLite "busy / I/O" failures to StoreUnavailableError. */
  private run<T>(op: string, fn: () => T): T {
    if (this.closed) throw new StoreUnavailableError(`sqlite ${op}: store is closed`);
    try {
      return fn();
    } catch (err) {
      throw mapError(op, err);
    }
  }

  private insertNotification(n: NotificationRecord): 'created' | 'exists' {
    const r = this.stmt.insertNotification.run(
      n.key,
      n.tenantId,
      n.caseId,
      n.revision,
      n.kind,
      n.channel,
      n.recipient,
      n.payload,
      n.createdAt,
      n.status,
      n.sentAt ?? null,
      n.attempts,
      n.lastError ?? null,
    );
    return r.changes === 1 ? 'created' : 'exists';
  }

  /** @inheritdoc */
  async getCase(tenantId: string, caseId: string): Promise<CaseRecord | undefined> {
    return this.exec('getCase', () => {
      const row = this.stmt.getCase.get(caseId, tenantId) as CaseRow | undefined;
      return row ? toCaseRecord(row) : undefined;
    });
  }

  /** @inheritdoc */
  async findCase(caseId: string): Promise<CaseRecord | undefined> {
    return this.exec('findCase', () => {
      const row = this.stmt.findCase.get(caseId) as CaseRow | undefined;
      return row ? toCaseRecord(row) : undefined;
    });
  }

  /** @inheritdoc */
  async putCase(
    record: CaseRecord,
    sightings: readonly EntitySighting[],
    expectedEtag: string | undefined,
    outbox: readonly NotificationRecord[] = [],
  ): Promise<CaseRecord> {
    return this.exec('putCase', () => {
      const version = this.putTx(record, sightings, expectedEtag, outbox);
      return { ...record, etag: String(version) };
    });
  }

  /** @inheritdoc */
  async findRelated(query: RelatedQuery): Promise<RelatedResult> {
    return this.exec('findRelated', () => {
      const sightings: EntitySighting[] = [];
      const saturated: string[] = [];
      if (query.limitPerKey <= 0) return { sightings, saturated };
      const from = instantKey(query.from);
      const to = instantKey(query.to);
      const exclude = query.excludeCaseId;
      const seen = new Set<string>();
      for (const key of query.keys) {
        if (seen.has(key)) continue;
        seen.add(key);
        const hintKey = `${query.tenantId}\u0000${key}`;
        // A key that was saturated recently is first counted (an index-only walk in SQLite)
        // instead of read: its rows would be turned into objects only to be ignored.
        if (this.saturationHints.has(hintKey)) {
          const n = (
            exclude === undefined
              ? this.stmt.countRelatedAll.get(query.tenantId, key, from, to, query.limitPerKey)
              : this.stmt.countRelated.get(query.tenantId, key, from, to, exclude, query.limitPerKey)
          ) as number;
          if (n >= query.limitPerKey) {
            saturated.push(key);
            continue;
          }
          this.saturationHints.delete(hintKey);
        }
        const rows = (
          exclude === undefined
            ? this.stmt.relatedAll.all(query.tenantId, key, from, to, query.limitPerKey)
            : this.stmt.related.all(query.tenantId, key, from, to, exclude, query.limitPerKey)
        ) as RawSightingRow[];
        if (rows.length >= query.limitPerKey) {
          saturated.push(key);
          if (this.saturationHints.size >= SATURATION_HINTS) this.saturationHints.clear();
          this.saturationHints.add(hintKey);
          continue;
        }
        for (const r of rows) {
          sightings.push({
            tenantId: query.tenantId,
            entityKey: key,
            caseId: r[1],
            detectedAt: r[0],
            phases: phasesOf(r[2]),
            playbook: r[3],
            severity: r[4] as Severity,
          });
        }
      }
      return { sightings, saturated };
    });
  }

  /** @inheritdoc */
  async acquireLease(lease: Lease, now: string): Promise<{ acquired: boolean; lease: Lease }> {
    // IMMEDIATE: take the write lock before reading, so two processes cannot both see "free".
    return this.exec('acquireLease', () => this.leaseTx.immediate(lease, now));
  }

  /** @inheritdoc */
  async releaseLease(tenantId: string, caseId: string, owner: string): Promise<void> {
    await this.exec('releaseLease', () => this.stmt.deleteLease.run(tenantId, caseId, owner));
  }

  /** @inheritdoc */
  async enqueueNotification(n: NotificationRecord): Promise<'created' | 'exists'> {
    return this.exec('enqueueNotification', () => this.insertNotification(n));
  }

  /** Updates status and attempts; `sentAt` / `lastError` replace the stored value only when given. An unknown key changes nothing. */
  async markNotification(
    tenantId: string,
    key: string,
    update: { status: NotificationRecord['status']; sentAt?: string; lastError?: string; attempts: number },
  ): Promise<void> {
    const r = await this.exec('markNotification', () =>
      this.stmt.markNotification.run(update.status, update.attempts, update.sentAt ?? null, update.lastError ?? null, tenantId, key),
    );
    if (r.changes === 0) this.log.warn('store.notification.unknown', { tenantId, key });
  }

  /** Filters combine (AND); entries come oldest first (createdAt, then key). */
  async listNotifications(filter: {
    tenantId?: string;
    caseId?: string;
    status?: NotificationRecord['status'];
  }): Promise<NotificationRecord[]> {
    return this.exec('listNotifications', () => {
      const where: string[] = [];
      const params: string[] = [];
      if (filter.tenantId !== undefined) {
        where.push('tenant_id = ?');
        params.push(filter.tenantId);
      }
      if (filter.caseId !== undefined) {
        where.push('case_id = ?');
        params.push(filter.caseId);
      }
      if (filter.status !== undefined) {
        where.push('status = ?');
        params.push(filter.status);
      }
      const sql = `SELECT * FROM notifications${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, key`;
      let st = this.listNotificationStmts.get(sql);
      if (!st) {
        st = this.db.prepare(sql);
        this.listNotificationStmts.set(sql, st);
      }
      return (st.all(...params) as NotificationRow[]).map(toNotification);
    });
  }

  /** @inheritdoc */
  async park(item: ParkedItem): Promise<void> {
    await this.exec('park', () =>
      this.stmt.park.run(
        item.id,
        item.tenantId ?? null,
        item.source,
        item.reason,
        item.errorName,
        JSON.stringify(item.issues),
        item.body,
        item.parkedAt,
        item.replayedAt ?? null,
      ),
    );
  }

  /** Newest first (parkedAt, then id); `limit` defaults to 1000; replayed items only with `includeReplayed`. */
  async listParked(filter: { tenantId?: string; limit?: number; includeReplayed?: boolean } = {}): Promise<ParkedItem[]> {
    return this.exec('listParked', () => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (filter.tenantId !== undefined) {
        where.push('tenant_id = ?');
        params.push(filter.tenantId);
      }
      if (!filter.includeReplayed) where.push('replayed_at IS NULL');
      const sql = `SELECT * FROM parked${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY parked_at DESC, id DESC LIMIT ?`;
      let st = this.listParkedStmts.get(sql);
      if (!st) {
        st = this.db.prepare(sql);
        this.listParkedStmts.set(sql, st);
      }
      params.push(Math.max(0, Math.floor(filter.limit ?? PARKED_DEFAULT_LIMIT)));
      return (st.all(...params) as ParkedRow[]).map(toParked);
    });
  }

  /** Sets `replayedAt`; an unknown id changes nothing. */
  async markParkedReplayed(id: string, at: string): Promise<void> {
    const r = await this.exec('markParkedReplayed', () => this.stmt.markParked.run(at, id));
    if (r.changes === 0) this.log.warn('store.parked.unknown', { parkedId: id });
  }

  /** Closes the database (idempotent). Further calls fail with StoreUnavailableError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function prepareStatements(db: Database.Database) {
  return {
    getCase: db.prepare<[string, string]>(
      'SELECT tenant_id, case_id, revision, revision_key, fingerprint, state, detected_at, version, doc FROM cases WHERE case_id = ? AND tenant_id = ?',
    ),
    findCase: db.prepare<[string]>(
      'SELECT tenant_id, case_id, revision, revision_key, fingerprint, state, detected_at, version, doc FROM cases WHERE case_id = ? ORDER BY tenant_id LIMIT 1',
    ),
    insertCase: db.prepare(
      `INSERT INTO cases (tenant_id, case_id, revision, revision_key, fingerprint, state, detected_at, version, sighting_ids, doc, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (case_id, tenant_id) DO NOTHING`,
    ),
    caseVersion: db.prepare<[string, string]>('SELECT version, sighting_ids FROM cases WHERE case_id = ? AND tenant_id = ?'),
    updateCase: db.prepare(
      `UPDATE cases SET revision = ?, revision_key = ?, fingerprint = ?, state = ?, detected_at = ?, version = ?, sighting_ids = ?, doc = ?, updated_at = ?
       WHERE case_id = ? AND tenant_id = ?`,
    ),
    archiveCase: db.prepare(
      `INSERT INTO case_revisions (tenant_id, case_id, revision, revision_key, fingerprint, state, doc, stored_at)
       SELECT tenant_id, case_id, revision, revision_key, fingerprint, state, doc, updated_at FROM cases WHERE case_id = ? AND tenant_id = ?`,
    ),
    deleteSighting: db.prepare('DELETE FROM sightings WHERE tenant_id = ? AND entity_key = ? AND detected_at = ? AND case_id = ?'),
    insertSighting: db.prepare(
      'INSERT OR REPLACE INTO sightings (tenant_id, entity_key, detected_at, case_id, phases, playbook, severity) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    // Raw (array) rows: correlation reads up to limitPerKey rows per key, and building a keyed
    // object per row is a measurable share of its cost.
    related: db
      .prepare(
        `SELECT detected_at, case_id, phases, playbook, severity FROM sightings
       WHERE tenant_id = ? AND entity_key = ? AND detected_at >= ? AND detected_at <= ? AND case_id <> ?
       ORDER BY detected_at DESC LIMIT ?`,
      )
      .raw(true),
    countRelated: db
      .prepare(
        `SELECT COUNT(*) FROM (SELECT 1 FROM sightings
       WHERE tenant_id = ? AND entity_key = ? AND detected_at >= ? AND detected_at <= ? AND case_id <> ? LIMIT ?)`,
      )
      .pluck(),
    countRelatedAll: db
      .prepare(
        `SELECT COUNT(*) FROM (SELECT 1 FROM sightings
       WHERE tenant_id = ? AND entity_key = ? AND detected_at >= ? AND detected_at <= ? LIMIT ?)`,
      )
      .pluck(),
    relatedAll: db
      .prepare(
        `SELECT detected_at, case_id, phases, playbook, severity FROM sightings
       WHERE tenant_id = ? AND entity_key = ? AND detected_at >= ? AND detected_at <= ?
       ORDER BY detected_at DESC LIMIT ?`,
      )
      .raw(true),
    getLease: db.prepare('SELECT owner, expires_at FROM leases WHERE tenant_id = ? AND case_id = ?'),
    putLease: db.prepare(
      `INSERT INTO leases (tenant_id, case_id, owner, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant_id, case_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
    ),
    deleteLease: db.prepare('DELETE FROM leases WHERE tenant_id = ? AND case_id = ? AND owner = ?'),
    insertNotification: db.prepare(
      `INSERT OR IGNORE INTO notifications (key, tenant_id, case_id, revision, kind, channel, recipient, payload, created_at, status, sent_at, attempts, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    markNotification: db.prepare(
      `UPDATE notifications SET status = ?, attempts = ?, sent_at = COALESCE(?, sent_at), last_error = COALESCE(?, last_error)
       WHERE tenant_id = ? AND key = ?`,
    ),
    park: db.prepare(
      `INSERT OR IGNORE INTO parked (id, tenant_id, source, reason, error_name, issues, body, parked_at, replayed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    markParked: db.prepare('UPDATE parked SET replayed_at = ? WHERE id = ?'),
  };
}

function toCaseRecord(row: CaseRow): CaseRecord {
  const doc = JSON.parse(row.doc) as Pick<CaseRecord, 'case' | 'result'>;
  return {
    tenantId: row.tenant_id,
    caseId: row.case_id,
    revision: row.revision,
    revisionKey: row.revision_key,
    fingerprint: row.fingerprint,
    state: row.state as CaseState,
    detectedAt: row.detected_at,
    case: doc.case,
    result: doc.result,
    etag: String(row.version),
  };
}

function toNotification(r: NotificationRow): NotificationRecord {
  return {
    key: r.key,
    tenantId: r.tenant_id,
    caseId: r.case_id,
    revision: r.revision,
    kind: r.kind as NotificationRecord['kind'],
    channel: r.channel,
    recipient: r.recipient,
    payload: r.payload,
    createdAt: r.created_at,
    status: r.status as NotificationRecord['status'],
    ...(r.sent_at !== null ? { sentAt: r.sent_at } : {}),
    attempts: r.attempts,
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
  };
}

function toParked(r: ParkedRow): ParkedItem {
  return {
    id: r.id,
    ...(r.tenant_id !== null ? { tenantId: r.tenant_id } : {}),
    source: r.source,
    reason: r.reason,
    errorName: r.error_name,
    issues: JSON.parse(r.issues) as ParkedItem['issues'],
    body: r.body,
    parkedAt: r.parked_at,
    ...(r.replayed_at !== null ? { replayedAt: r.replayed_at } : {}),
  };
}
