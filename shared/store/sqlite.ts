/**
 * The embedded default Store: one SQLite file (better-sqlite3), WAL journal, `synchronous=NORMAL`
 * (a commit survives a process crash; the last commits before a power cut may not).
 *
 * Schema (MIGRATIONS, versioned with `PRAGMA user_version`)
 * - `cases`: the latest revision per (tenant_id, case_id), unique on (case_id, tenant_id) so the
 *   same index serves getCase and findCase. `version` is the row version the etag is made of
 *   (`String(version)`): every write bumps it; an update applies only when the version read before
 *   still matches. `doc` holds `{ case, result }` as JSON, serialised once per write, in the stored
 *   form of caseDoc.ts: repeated entity lists are written as markers (`"=alerts[0].entities"`,
 *   `"=case.entities"`) that reads expand (≈ 1 KB less per stand-alone alert); older rows are whole.
 *   `sighting_seqs` lists the case's rows in `sighting_log`, so a re-put marks them superseded by rowid.
 * - `case_revisions`: append-only log of superseded revisions: an update first copies the row it
 *   replaces (inside SQLite, no re-serialisation), so `case_revisions` + `cases` is the audit trail of
 *   how a case's verdict changed. A new case writes nothing here (most cases never get a second
 *   revision), so the hot path pays for history only when there is history. `keepRevisions: false` turns it off.
 * - `sighting_log` (since v2): the durable side of the correlation index, append-only: one row per
 *   (case, instant) holding its entity keys and verdict. Rows are never deleted (a re-put marks the
 *   case's old rows dead, `groups = 'null'`), so `seq` (the rowid) only grows without AUTOINCREMENT's
 *   extra page write per commit, and readers can catch up by seq. The index itself lives in
 *   memory (SightingIndex), read from the log on the first look-up and kept current by this
 *   store's own writes and, when another connection committed (`PRAGMA data_version` changed), by
 *   reading the log rows after the last `seq` seen. The same seqs tell a look-up that another
 *   connection (another process on the file) committed rows after it was read: such a row is found
 *   at the latest when the asking case's own append skips its seq (LogAnswer, knownSeq), at no cost
 *   to a process alone; the pipeline then looks that case up again. v1 kept a key-ordered WITHOUT ROWID table instead;
 *   its six random leaf pages per alert cost ≈ 190 µs at commit and its range scans ≈ 190 µs per
 *   lookup (BENCHMARKS.md). The memory holds the last `indexHorizonDays` (default 30) of detection
 *   time; a lookup reaching further back reads the log by (tenant, time) instead: slower, same answer.
 *   Instants are stored canonical (`YYYY-MM-DDTHH:mm:ss.sssZ`), so string order is time order
 *   whatever ISO spelling the source used.
 * - `notifications` (the outbox; key unique → INSERT OR IGNORE): since v2 the payload lives in
 *   `payloads`, once per distinct payload of a write (all recipients of a case's first report share
 *   one row), referenced by `payload_id`; rows written before v2 keep theirs inline. When the case's
 *   first report is one of those payloads, the case document stores `firstReport: ""` and `report_id`
 *   points at the payload (the text was written three or four times per alert in v1).
 * - `leases`, `parked`.
 * No foreign keys: the hot tables are written once per alert and every extra B-tree probe counts.
 *
 * putCase is one transaction (a savepoint): case row (conditional), revision log, index rows,
 * outbox entries. better-sqlite3 is synchronous: every method does its work when called. Writes
 * outside a unit of work join a group commit (see exec): their promises settle after the group's
 * COMMIT on the next event-loop turn, so concurrent deliveries share one commit and nobody is
 * answered before it. Statements are prepared once per store. While another connection (a replay, an
 * sqlite3 shell) holds the write lock, BEGIN IMMEDIATE is retried on a timer instead of in SQLite's busy
 * handler, which would freeze the event loop for up to busy_timeout: writes arriving meanwhile join the
 * waiting group, reads answer from what is committed, and after busy_timeout the writes fail as before.
 *
 * When things fail under it: a write meant for an open unit or group never runs after SQLite rolled
 * that transaction back by itself (disk full, I/O error), so a batch commits whole or not at all and
 * the in-memory index stays what the file holds; the database file's identity (device + inode) is
 * checked before every COMMIT (and by reads at most once a second), so a file deleted or replaced
 * under a running process fails the write (5xx, redelivered) instead of answering 200 for a write
 * into an unlinked file. A write failure that is not a lost race (disk full, read-only file, I/O
 * error) is remembered until a transaction that met none commits changed rows (writesFailing: the health probe
 * turns 503 meanwhile). Opening takes the write lock before reading the schema version, and retries
 * while SQLite answers BUSY, so several processes may open one new file at the same moment.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { AmbiguousCaseError, ConcurrencyConflictError, ConfigError, StoreUnavailableError } from '../errors';
import { type Logger, silentLogger } from '../log';
import type { KillChainPhase, Severity } from '../model/domain';
import { canonicalInstant } from '../model/instant';
import { compactCaseDocument, expandCaseDocument, type StoredCaseDocument } from './caseDoc';
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
import { listLimit } from './port';
import { groupSightings, type SightingGroup, SightingIndex } from './sightingIndex';

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
  {
    version: 2,
    description:
      'correlation index: append-only sighting_log (read into memory) instead of the key-ordered sightings table; outbox payloads stored once',
    up: (db) => {
      db.exec(`
        CREATE TABLE sighting_log (
          seq         INTEGER PRIMARY KEY, -- only grows (rows are never deleted): readers catch up by seq
          tenant_id   TEXT NOT NULL,
          case_id     TEXT NOT NULL,
          detected_at TEXT NOT NULL, -- canonical instant
          groups      TEXT NOT NULL  -- JSON [[phases, playbook, severity, [entity keys]], …]; [] = the case has none; null = superseded
        );
        CREATE INDEX sighting_log_by_time ON sighting_log (tenant_id, detected_at);
        INSERT INTO sighting_log (tenant_id, case_id, detected_at, groups)
          SELECT tenant_id, case_id, detected_at, json_group_array(json_array(json(phases), playbook, severity, json_array(entity_key)))
          FROM sightings GROUP BY tenant_id, case_id, detected_at ORDER BY tenant_id, case_id, detected_at;
        CREATE INDEX sighting_log_by_case ON sighting_log (tenant_id, case_id);
        UPDATE cases SET sighting_ids =
          (SELECT json_group_array(seq) FROM sighting_log l WHERE l.tenant_id = cases.tenant_id AND l.case_id = cases.case_id);
        DROP INDEX sighting_log_by_case;
        DROP TABLE sightings;
        ALTER TABLE cases RENAME COLUMN sighting_ids TO sighting_seqs;

        -- A case's first report went to every recipient's outbox row (3 × ≈ 3 KB per alert); now once.
        CREATE TABLE payloads (
          id   INTEGER PRIMARY KEY,
          body TEXT NOT NULL
        );
        ALTER TABLE notifications ADD COLUMN payload_id INTEGER; -- NULL: the payload is inline (rows written before v2)
        -- The result's first report is that same text: the document then holds '' and points here.
        ALTER TABLE cases ADD COLUMN report_id INTEGER;
        ALTER TABLE case_revisions ADD COLUMN report_id INTEGER;
      `);
    },
  },
  {
    version: 3,
    description:
      'case documents may be in the stored form of caseDoc.ts (repeated entity lists as markers): a build older than this reads markers as lists, so it must refuse the file',
    // No DDL: the version bump is the point. An older build refuses a database newer than itself
    // (migrate) instead of handing out "=alerts[0].entities" as an entity list. Rows written before
    // are whole documents and read as they are.
    up: () => undefined,
  },
  {
    version: 4,
    description:
      'fewer index entries per alert: outbox keyed by its key alone (WITHOUT ROWID), by-case listing through the key, a queued-only outbox index, the log indexed by day',
    // Every put writes three outbox rows and one log row; each index entry is one more B-tree insert
    // and, when it lands at a random place, one more page written to the WAL at commit. v3 kept
    // per outbox row a rowid row, the key's unique index, (tenant_id, case_id) and (status, tenant_id);
    // per log row (tenant_id, detected_at) (random, as detection times are).
    up: (db) => {
      db.exec(`
        -- One B-tree instead of the rowid table plus the key's unique index: the key is the primary key.
        CREATE TABLE notifications_v4 (
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
          last_error TEXT,
          payload_id INTEGER -- NULL: the payload is inline (rows written before v2)
        ) WITHOUT ROWID;
        INSERT INTO notifications_v4 (key, tenant_id, case_id, revision, kind, channel, recipient, payload, created_at, status, sent_at, attempts, last_error, payload_id)
          SELECT key, tenant_id, case_id, revision, kind, channel, recipient, payload, created_at, status, sent_at, attempts, last_error, payload_id
          FROM notifications;
        DROP TABLE notifications; -- and notifications_by_case, notifications_by_status with it
        ALTER TABLE notifications_v4 RENAME TO notifications;
        -- A case's entries (listNotifications by tenant and case) are read as the key range 'tenant|case|'
        -- (notificationKey's shape) from the primary key; this index holds only the entries whose key
        -- is outside that range (none from the pipeline), so that read is complete whatever the key.
        CREATE INDEX notifications_by_case_other ON notifications (tenant_id, case_id)
          WHERE key < tenant_id || '|' || case_id || '|' OR key >= tenant_id || '|' || case_id || '}';
        -- The drain (status 'queued', due, limit, oldest first): queued entries only, in (created_at, key)
        -- order, so it stops after its limit and a sent entry leaves the index.
        CREATE INDEX notifications_queued ON notifications (created_at) WHERE status = 'queued';

        -- Look-ups before the in-memory horizon read a tenant's log rows by time. By day rather than by
        -- instant: rows of one day are appended at one place (row id order), not scattered over the index.
        DROP INDEX sighting_log_by_time;
        CREATE INDEX sighting_log_by_day ON sighting_log (tenant_id, substr(detected_at, 1, 10));
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
  const latest = migrations.length;
  // One step per transaction, and the version is read inside it after taking the write lock
  // (IMMEDIATE waits up to busy_timeout): a second process opening the same file at the same time
  // waits for the first one's step and then sees its version, instead of both reading the old
  // version and the second failing on "table already exists".
  const step = db.transaction((): Migration | undefined => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > latest) {
      throw new ConfigError('SQLITE_FILE', `database schema version ${current} is newer than this build supports (${latest})`);
    }
    const m = migrations[current];
    if (!m) return undefined;
    m.up(db);
    // PRAGMA cannot take a bound parameter; the version is a trusted integer from the list above.
    db.pragma(`user_version = ${m.version}`);
    return m;
  });
  const applied: number[] = [];
  for (let m = step.immediate(); m; m = step.immediate()) {
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
  /**
   * How long a writer waits for another process's lock before failing (default 5000 ms). Once open, the wait is on
   * a timer (see SqliteStore.tryBegin): the event loop keeps turning meanwhile.
   */
  readonly busyTimeoutMs?: number;
  /** Keep superseded revisions in `case_revisions` (default true): the audit trail, written only on updates. */
  readonly keepRevisions?: boolean;
  /**
   * Days of detection time the in-memory correlation index holds (default 30): lookups inside it
   * are binary searches, older ones read the log. Memory is about 0.3 KB per stored alert.
   */
  readonly indexHorizonDays?: number;
  /** Clock for the index horizon (tests). */
  readonly now?: () => number;
}

/**
 * Runs `fn` again while it fails with SQLITE_BUSY, for up to `timeoutMs`. Only for opening: SQLite
 * answers BUSY at once, without its busy handler, when waiting could deadlock (a connection holding
 * a shared lock that wants to write while another is writing), which is what several processes
 * opening one new file at the same moment run into. Opening is synchronous anyway, so the pauses
 * between tries are too (a few ms, growing to 100 ms).
 */
function whileBusy<T>(fn: () => T, timeoutMs: number): T {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waitMs = 5; ; waitMs = Math.min(waitMs * 2, 100)) {
    try {
      return fn();
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, waitMs);
    }
  }
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
    // busy_timeout first: switching a new file to WAL needs the exclusive lock, and a second process
    // opening the file at the same moment must wait for it rather than fail with SQLITE_BUSY.
    const busyTimeoutMs = Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000));
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    whileBusy(() => db.pragma('journal_mode = WAL'), busyTimeoutMs);
    db.pragma('synchronous = NORMAL');
    // Every putCase is a savepoint inside the group or unit transaction, and a savepoint copies each page it
    // changes to a statement journal first: kept in memory instead of a temporary file, that cut the measured
    // put cost by ≈ 35 µs (of ≈ 175). Durability is the WAL's business, not this journal's. The one large
    // sort (reading the index from the log) switches back to files: see loadIndex.
    db.pragma('temp_store = MEMORY');
    db.pragma('foreign_keys = ON');
    // Checkpoints (and their fsync) dominate a commit's cost at the default 1,000 pages; 10,000
    // (≈ 40 MB of WAL) cut the measured commit cost by about a third. The WAL file is truncated
    // back to 64 MB after a checkpoint.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma('journal_size_limit = 67108864');
    const applied = whileBusy(() => migrate(db, MIGRATIONS, log), busyTimeoutMs);
    const horizonMs = Math.max(1, options.indexHorizonDays ?? DEFAULT_INDEX_DAYS) * DAY_MS;
    return new SqliteStore(db, options.file, applied, log, options.keepRevisions ?? true, horizonMs, options.now ?? Date.now);
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
  /** The first report's text when the document points at a payload (v2), else null. */
  report: string | null;
}

const DAY_MS = 86_400_000;
const DEFAULT_INDEX_DAYS = 30;
/** How far the horizon may lag behind the clock before old entries are dropped (eviction visits every key). */
const EVICT_EVERY_MS = 3_600_000;

/** seq, tenant_id, case_id, detected_at, groups (JSON). */
type LogRow = [number, string, string, string, string];
/** One group as stored in `sighting_log.groups`. */
type StoredGroup = [readonly KillChainPhase[], string, Severity, readonly string[]];

/**
 * Phase lists are a handful of distinct values (`["exploitation"]`, …): the index shares one
 * frozen array per distinct list instead of holding one per case.
 */
const phaseCache = new Map<string, readonly KillChainPhase[]>();
function sharedPhases(phases: readonly KillChainPhase[]): readonly KillChainPhase[] {
  const id = phases.join(',');
  let p = phaseCache.get(id);
  if (!p) {
    p = Object.freeze([...phases]);
    if (phaseCache.size < 1024) phaseCache.set(id, p);
  }
  return p;
}

/** The groups at or after `horizon`: `groups` itself when all are (a live alert's are), else a filtered copy. */
function withinHorizon(groups: SightingGroup[], horizon: string): SightingGroup[] {
  for (const g of groups) if (g.at < horizon) return groups.filter((h) => h.at >= horizon);
  return groups;
}

/** Reads one log row's groups (all at the row's instant). */
function groupsOf(row: LogRow): SightingGroup[] {
  const at = row[3];
  const stored = JSON.parse(row[4]) as StoredGroup[] | null; // null: superseded by a later put of the case
  if (stored === null) return [];
  return stored.map(([phases, playbook, severity, keys]) => ({
    at,
    phases: sharedPhases(phases),
    playbook,
    severity,
    keys,
  }));
}

/**
 * Feeds log rows (seq order, or any order that keeps a case's rows together per call) into
 * `apply` one case at a time: a case's live rows are always written by one put, so they come
 * together and replace whatever the index held for it.
 */
function eachCase(rows: Iterable<LogRow>, apply: (tenantId: string, caseId: string, groups: SightingGroup[]) => void): number {
  let lastSeq = 0;
  let current: LogRow | undefined;
  let groups: SightingGroup[] = [];
  for (const row of rows) {
    if (row[0] > lastSeq) lastSeq = row[0];
    // Rows of one put are consecutive: a row of another case means the current one is complete.
    if (current && (current[2] !== row[2] || current[1] !== row[1])) {
      apply(current[1], current[2], groups);
      groups = [];
    }
    current = row;
    for (const g of groupsOf(row)) groups.push(g);
  }
  if (current) apply(current[1], current[2], groups);
  return lastSeq;
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

/** SQLite error codes that mean "busy / I/O trouble, try again", not "your statement is wrong". */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|READONLY)/;

function mapError(op: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) return new StoreUnavailableError(`sqlite ${op}: ${code}`, { cause: err });
  return err;
}

/**
 * SQLite failures that say the store cannot write (disk full, read-only or unusable file, I/O error),
 * as opposed to a lost race (BUSY, LOCKED) or a refused write (a conflict): see writesFailing.
 */
const WRITE_FAULT_CODES = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|CORRUPT|NOTADB|PERM)/;

const PARKED_DEFAULT_LIMIT = 1000;

/**
 * The WHERE of the partial index notifications_by_case_other (migration 4), written the same way so that
 * SQLite matches it and reads that index: the key does not start with `tenant|case|`. Binary comparisons,
 * as the key range read of the primary key, so each entry of a case is read by exactly one of the two.
 */
const KEY_OUTSIDE_CASE_RANGE = "key < tenant_id || '|' || case_id || '|' OR key >= tenant_id || '|' || case_id || '}'";

/** Log seqs other connections committed, as far as this connection has found them (see SqliteStore.knownSeq). */
interface OthersSeqs {
  /** The highest such seq found so far (0: none). */
  highest: number;
}

/**
 * A findRelated answer of this store: its rows, and how far the log was known when it was read. Those
 * two are private fields, so answers still compare (`toEqual`) and serialise as their rows.
 */
class LogAnswer implements RelatedResult {
  readonly #others: OthersSeqs;
  readonly #knownSeq: number;

  constructor(
    readonly sightings: EntitySighting[],
    readonly saturated: string[],
    others: OthersSeqs,
    knownSeq: number,
  ) {
    this.#others = others;
    this.#knownSeq = knownSeq;
  }

  /** Another connection's log row above what this answer knew has been found since (see the port). */
  othersCommittedSince(): boolean {
    return this.#others.highest > this.#knownSeq;
  }
}

/** What an index change replaced, to put back if its transaction rolls back. */
interface Undo {
  readonly tenantId: string;
  readonly caseId: string;
  readonly groups: SightingGroup[];
}

/** How far the index had read the log (its highest seq, and `PRAGMA data_version` then), and knownSeq. */
interface LogMark {
  readonly lastSeq: number;
  readonly dataVersion: number;
  readonly knownSeq: number;
}

/** A group commit (see SqliteStore.exec). */
interface Group {
  /** Settles after its COMMIT: rejects when it rolled back, or when it never got the write lock. */
  readonly done: Promise<void>;
  /** Index changes of its members, to undo if it rolls back. */
  readonly undo: Undo[];
  /** Where the index had read the log when its transaction began, put back if it rolls back. */
  logMark: LogMark;
  /**
   * Set while it waits for another connection's write lock (no transaction begun yet); resolves once it
   * has begun, to undefined, or to the StoreUnavailableError it failed with. Resolves rather than
   * rejects so that every waiter resumes in the same turn, in arrival order.
   */
  locking: Promise<unknown> | undefined;
}

/** First pause before BEGIN IMMEDIATE is tried again while another connection holds the write lock; doubles up to LOCK_RETRY_MAX_MS. */
const LOCK_RETRY_FIRST_MS = 2;
const LOCK_RETRY_MAX_MS = 50;

/** How often reads check that the database file is still the one opened (see checkFile); every COMMIT checks. */
const FILE_CHECK_EVERY_MS = 1000;

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
    ) => { version: number; groups: SightingGroup[]; seqs: number[] }
  >;
  private readonly enqueueTx: Database.Transaction<(n: NotificationRecord) => 'created' | 'exists'>;
  private readonly leaseTx: Database.Transaction<(lease: Lease, now: string) => { acquired: boolean; lease: Lease }>;
  private closed = false;
  /**
   * Marks the async context of a unit of work with that unit's own token. A context outlives its unit (a callback
   * or promise chain started inside it that runs after it ended), so only the token of the unit holding the store
   * (`unitToken`) counts as inside: see inUnit.
   */
  private readonly unit = new AsyncLocalStorage<symbol>();
  /** The token of the unit of work holding the store (waiting for its lock or open), else undefined. */
  private unitToken: symbol | undefined;
  /** Settles when the open unit of work ends. */
  private active: Promise<void> | undefined;
  /**
   * putCase applies its writes (and index) before its first await: see the port. While its group waits for
   * another connection's write lock, they apply when it is taken, before any look-up issued after them (see exec).
   */
  readonly appliesWritesOnCall = true;
  /** When expired leases were last deleted (clock ms of the `now` given to acquireLease). */
  private leasesSweptAt = 0;
  /** The correlation index: every sighting with an instant at or after `horizon`. */
  private readonly index = new SightingIndex();
  /** Canonical instant: the index is complete from here on; lookups starting earlier read the log. */
  private horizon = '';
  /** When the horizon was last moved (clock ms). */
  private horizonSetAt = 0;
  /** Highest log seq read from the database (own writes are applied directly). */
  private lastSeq = 0;
  /**
   * Highest log seq this connection knows of: read from the log, or appended by its own writes (those
   * not rolled back). A seq above it was another connection's commit: found when reading the log, or
   * when an own append skips it (a new row's seq is the highest + 1, and an appending transaction holds
   * the write lock, so the skipped rows are committed). Either way it goes to `othersSeqs`.
   */
  private knownSeq = 0;
  /**
   * Other connections' log rows found so far: a look-up answer that knew less than this was read before
   * they were committed (LogAnswer.othersCommittedSince). Found at the latest by the asking case's own
   * append, which comes after them: one number compared per append and per log read, no query.
   */
  private readonly othersSeqs: OthersSeqs = { highest: 0 };
  /** Why the last write failed when it was not a lost race (WRITE_FAULT_CODES): see writesFailing. */
  private writeFault: string | undefined;
  /** Whether the open transaction has met no write fault: its COMMIT then shows the store writes again, if it changed rows. */
  private txClean = true;
  /**
   * `total_changes()` when the open transaction began while a write fault was remembered (else undefined):
   * a COMMIT that changed nothing (a batch of duplicates) wrote nothing, and proves nothing about the file.
   */
  private txChangesAtBegin: number | undefined;
  /** Whether the index has been read from the log (on the first look-up). */
  private indexLoaded = false;
  /**
   * Whether it was read inside the open transaction: it then holds that transaction's earlier writes,
   * which no undo entry covers, so a rollback drops the whole index (read again on the next look-up).
   */
  private indexLoadedInTx = false;
  /** `PRAGMA data_version` when the index was last synchronised: it changes when another connection commits. */
  private dataVersion = -1;
  /** Index changes of the open unit of work or group, to undo if it rolls back. */
  private undo: Undo[] | undefined;
  /** The open group commit (see exec), or the one waiting for the write lock (see openGroup). */
  private group: Group | undefined;
  /** How long BEGIN IMMEDIATE is retried while another connection holds the write lock: the connection's `busy_timeout`. */
  private readonly busyTimeoutMs: number;
  /** BEGIN IMMEDIATE without SQLite's busy wait, the connection's wait restored after it: see tryBegin. */
  private readonly beginNoWait: string;
  /** Whether a unit of work's transaction is open (its async context can outlive it). */
  private unitOpen = false;
  /** Why SQLite ended the store's open transaction on its own (disk full, I/O error), for the error of the writes refused after. */
  private txEndedBy: string | undefined;
  /** The database file's identity when opened (undefined for an in-memory database): see checkFile. */
  private readonly fileId: { readonly path: string; readonly dev: number; readonly ino: number } | undefined;
  /** When a read last checked the file's identity (monotonic ms). */
  private fileCheckedAt = Number.NEGATIVE_INFINITY;
  /** Set once the file was found deleted or replaced: the store then refuses everything. */
  private fileLost: string | undefined;

  /** Use openSqliteStore. */
  constructor(
    private readonly db: Database.Database,
    /** The database file (or `:memory:`). */
    readonly file: string,
    /** Migration versions applied when this store was opened (empty when the schema was current). */
    readonly migrationsApplied: readonly number[],
    private readonly log: Logger,
    private readonly keepRevisions: boolean,
    private readonly horizonMs: number = DEFAULT_INDEX_DAYS * DAY_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.stmt = prepareStatements(db);
    const s = this.stmt;
    this.busyTimeoutMs = db.pragma('busy_timeout', { simple: true }) as number;
    // One exec (one native call) for the three: ≈ 1 µs more per transaction than a bare BEGIN, measured. A PRAGMA
    // prepared once costs more (SQLite prepares it again on each run).
    this.beginNoWait = `PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; PRAGMA busy_timeout = ${this.busyTimeoutMs}`;
    // The path SQLite actually opened (URI filenames resolved); empty for an in-memory database.
    const main = (db.pragma('database_list') as { name: string; file: string }[]).find((d) => d.name === 'main');
    if (main?.file) {
      const st = statSync(main.file);
      this.fileId = { path: main.file, dev: st.dev, ino: st.ino };
    }
    // The index is read on the first look-up, not here: `triage parked` and other commands that
    // never correlate should not pay for reading the log (≈ 8 s per million stored alerts).
    this.horizonSetAt = this.now();
    this.horizon = new Date(this.horizonSetAt - this.horizonMs).toISOString();

    this.putTx = db.transaction(
      (
        record: CaseRecord,
        sightings: readonly EntitySighting[],
        expectedEtag: string | undefined,
        outbox: readonly NotificationRecord[],
      ): { version: number; groups: SightingGroup[]; seqs: number[] } => {
        // Each distinct outbox payload once (all recipients of a first report share one): a short list
        // scanned by value, no Map or Set per put. A payload whose rows all existed already (a redelivered
        // outbox entry) and that the case does not point at is removed again at the end.
        const payloads: string[] = [];
        const payloadIds: number[] = [];
        const payloadUsed: boolean[] = [];
        const payloadOf: number[] = []; // outbox entry → its index in payloads
        for (const n of outbox) {
          let j = payloads.indexOf(n.payload);
          if (j < 0) {
            j = payloads.length;
            payloads.push(n.payload);
            payloadIds.push(Number(s.insertPayload.run(n.payload).lastInsertRowid));
            payloadUsed.push(false);
          }
          payloadOf.push(j);
        }
        const report = record.result.firstReport;
        const reportAt = report === undefined ? -1 : payloads.indexOf(report);
        const reportId = reportAt < 0 ? null : (payloadIds[reportAt] as number);
        if (reportAt >= 0) payloadUsed[reportAt] = true;
        // Spreading keeps firstReport in its place, so a read gives back the same key order.
        const doc = JSON.stringify(
          compactCaseDocument({
            case: record.case,
            result: reportId === null ? record.result : { ...record.result, firstReport: '' },
          }),
        );
        const now = new Date().toISOString();
        const groups = groupSightings(sightings);
        let version: number;
        let previousSeqs: number[] = [];
        if (expectedEtag !== undefined) {
          const current = s.caseVersion.get(record.caseId, record.tenantId) as { version: number; sighting_seqs: string } | undefined;
          if (!current || String(current.version) !== expectedEtag) {
            throw new ConcurrencyConflictError(`case ${record.caseId} changed since etag ${expectedEtag} was read`);
          }
          version = current.version + 1;
          previousSeqs = JSON.parse(current.sighting_seqs) as number[];
        } else {
          version = 1;
        }
        for (const seq of previousSeqs) s.supersedeLog.run(seq);
        // One append-only log row per instant (in the pipeline: one per case). A re-put that leaves a
        // case with no sightings still writes one empty row, so other connections drop the old ones.
        const byAt = new Map<string, StoredGroup[]>();
        for (const g of groups) {
          const list = byAt.get(g.at) ?? [];
          list.push([g.phases, g.playbook, g.severity, g.keys]);
          byAt.set(g.at, list);
        }
        if (byAt.size === 0 && previousSeqs.length > 0) byAt.set(canonicalInstant(record.detectedAt), []);
        const seqs: number[] = [];
        for (const [at, list] of byAt) {
          seqs.push(Number(s.appendLog.run(record.tenantId, record.caseId, at, JSON.stringify(list)).lastInsertRowid));
        }
        const sightingSeqs = JSON.stringify(seqs);
        if (expectedEtag === undefined) {
          const r = s.insertCase.run(
            record.tenantId,
            record.caseId,
            record.revision,
            record.revisionKey,
            record.fingerprint,
            record.state,
            record.detectedAt,
            sightingSeqs,
            doc,
            now,
            reportId,
          );
          if (r.changes === 0) throw new ConcurrencyConflictError(`case ${record.caseId} already exists`);
        } else {
          if (this.keepRevisions) s.archiveCase.run(record.caseId, record.tenantId);
          s.updateCase.run(
            record.revision,
            record.revisionKey,
            record.fingerprint,
            record.state,
            record.detectedAt,
            version,
            sightingSeqs,
            doc,
            now,
            reportId,
            record.caseId,
            record.tenantId,
          );
        }
        for (let i = 0; i < outbox.length; i++) {
          const j = payloadOf[i] as number;
          if (this.insertNotification(outbox[i] as NotificationRecord, payloadIds[j] as number) === 'created') payloadUsed[j] = true;
        }
        for (let j = 0; j < payloadIds.length; j++) if (!payloadUsed[j]) s.deletePayload.run(payloadIds[j] as number);
        return { version, groups, seqs };
      },
    );

    this.enqueueTx = db.transaction((n: NotificationRecord): 'created' | 'exists' => {
      const id = Number(s.insertPayload.run(n.payload).lastInsertRowid);
      const outcome = this.insertNotification(n, id);
      if (outcome === 'exists') s.deletePayload.run(id);
      return outcome;
    });

    this.leaseTx = db.transaction((lease: Lease, now: string): { acquired: boolean; lease: Lease } => {
      // Expired leases are dead weight (the replay guard leaves one per signed request): swept hourly,
      // here because this is the only path that writes them.
      const t = Date.parse(now);
      if (t - this.leasesSweptAt >= EVICT_EVERY_MS) {
        this.leasesSweptAt = t;
        s.sweepLeases.run(now);
      }
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
    if (this.inUnit()) return fn();
    for (;;) {
      const g = this.gate('write');
      if (g) await g;
      // A group still waiting for the write lock too: the unit runs after it, never inside it.
      else if (this.group) await this.group.done.catch(() => undefined);
      else break;
    }
    // No await between the last check and taking the unit: two units can never overlap.
    let release = (): void => undefined;
    this.active = new Promise<void>((r) => {
      release = r;
    });
    const token = Symbol('unit of work');
    this.unitToken = token;
    try {
      return await this.unit.run(token, async () => {
        const busy = this.tryBegin('begin');
        if (busy !== undefined) await this.waitForLock('begin', busy);
        this.txBegan();
        const logMark = this.logMark();
        this.unitOpen = true;
        this.txEndedBy = undefined;
        try {
          this.undo = [];
          const result = await fn();
          this.commit();
          return result;
        } catch (err) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          // The index took the unit's writes as they were made (later statements of the unit read
          // them); put back what they replaced, newest first.
          this.undoIndex(this.undo ?? [], logMark);
          throw err;
        } finally {
          // Its context is outside from here on: a chain of it still running after the COMMIT or ROLLBACK
          // must not write on its own, outside any group, before the unit is released below.
          this.unitToken = undefined;
          this.unitOpen = false;
          this.undo = undefined;
          this.indexLoadedInTx = false;
        }
      });
    } finally {
      this.unitToken = undefined;
      this.active = undefined;
      release();
    }
  }

  /**
   * Whether the caller runs inside the unit of work holding the store. A context left over from a unit that has
   * ended is outside: its write then waits for the gates and joins a group like any other, instead of running
   * straight into whatever transaction is open (answered before that commit, rolled back with it) or, with none,
   * autocommitting in SQLite's busy handler while a group waits for the lock (freezing the event loop).
   */
  private inUnit(): boolean {
    const token = this.unit.getStore();
    return token !== undefined && token === this.unitToken;
  }

  /**
   * The open unit of work to wait for, or undefined when the caller may go on (none is open,
   * or the caller is inside it). See exec. A read need not wait for a unit still waiting for the
   * write lock: nothing is written yet, so it answers from what is committed (the health probe stays up).
   */
  private gate(kind: 'read' | 'write' | 'lookup'): Promise<void> | undefined {
    if (!this.active || this.inUnit()) return undefined;
    return kind === 'read' && !this.unitOpen ? undefined : this.active;
  }

  /**
   * Waits while another caller's unit of work is open, then runs the statement(s) at once: no
   * await between the last check and the statement, so it cannot land inside another unit.
   *
   * Group commit: a write outside a unit of work joins the open group transaction, or opens one
   * that commits on the next turn of the event loop; its promise settles only after that commit.
   * Concurrent deliveries (the Functions host runs many HTTP requests at once) so share one commit
   * instead of paying one each (a commit costs ≈ 200 µs here, mostly WAL and checkpoint I/O). A read
   * made while a group is open may see the group's writes, so it too is answered only after the
   * commit: nobody is ever told something a failed commit could take back.
   */
  private async exec<T>(op: string, fn: () => T, kind: 'read' | 'write' | 'lookup' = 'read'): Promise<T> {
    this.checkFileEvery();
    if (this.inUnit()) {
      if (kind === 'write' && this.unitOpen) this.requireTransaction(op);
      return this.run(op, fn);
    }
    let group: Group | undefined;
    for (;;) {
      for (let g = this.gate(kind); g; g = this.gate(kind)) await g;
      if (kind === 'write' && !this.group) this.openGroup();
      group = this.group;
      // A group waiting for the write lock has no transaction yet. Writes join it: they run in it once it
      // began, in arrival order, and fail with it if the lock never comes. A look-up waits as well, so it
      // still sees the writes issued before it (appliesWritesOnCall). A read answers now, from what is
      // committed: none of the group's writes ran yet, so none can be seen or taken back.
      if (!group?.locking || kind === 'read') break;
      const failed = await group.locking;
      if (failed !== undefined && kind === 'write') throw failed;
    }
    if (kind === 'write' && group) this.requireTransaction(op);
    const result = this.run(op, fn);
    // A correlation look-up does not wait: its answer only feeds a verdict that is itself written
    // (and answered) after a later commit, and waiting would hold the pipeline's look-up → write
    // ordering (appliesWritesOnCall) across a commit.
    if (group && kind !== 'lookup' && !group.locking) await group.done;
    return result;
  }

  /**
   * Opens a group transaction; it commits (or rolls back and rejects) on the next turn of the event loop
   * after it began. While another connection holds the write lock the group waits for it without blocking
   * the event loop (see waitForLock), `locking` set: writers arriving meanwhile join it (see exec).
   */
  private openGroup(): void {
    const busy = this.tryBegin('begin');
    let settle: (err?: unknown) => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    done.catch(() => undefined); // each member awaits it; this only keeps an unawaited failure from being "unhandled"
    const group: Group = { done, undo: [], logMark: this.logMark(), locking: undefined };
    this.group = group;
    if (busy === undefined) {
      this.groupBegan(group, settle);
      return;
    }
    group.locking = this.waitForLock('begin', busy).then(
      () => {
        group.locking = undefined;
        this.groupBegan(group, settle);
        return undefined;
      },
      (err: unknown) => {
        // Nothing ran in it: its members fail as a write that met the lock failed before (StoreUnavailableError).
        this.group = undefined;
        settle(err);
        return err;
      },
    );
  }

  /** The group's transaction began: its members run in it until it commits on the next turn. */
  private groupBegan(group: Group, settle: (err?: unknown) => void): void {
    // The commit is scheduled first: whatever throws below, the transaction still ends and its members are answered.
    setImmediate(() => {
      this.group = undefined;
      this.undo = undefined;
      try {
        this.commit();
        this.indexLoadedInTx = false;
        settle();
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        this.undoIndex(group.undo, group.logMark);
        this.indexLoadedInTx = false;
        // Every statement of the group succeeded; only making them durable failed: to each caller
        // that is "not stored, try again", whatever SQLite's reason.
        settle(err instanceof StoreUnavailableError ? err : new StoreUnavailableError('sqlite group commit failed', { cause: err }));
      }
    });
    this.txBegan();
    group.logMark = this.logMark();
    this.undo = group.undo;
    this.txEndedBy = undefined;
  }

  /**
   * BEGIN IMMEDIATE without SQLite's busy wait (busy_timeout 0 for that statement alone): undefined when the
   * write lock was taken, else the SQLITE_BUSY error (another connection holds it). SQLite's own wait would
   * freeze the event loop for up to busy_timeout; the callers wait on a timer instead (waitForLock). Other
   * failures throw as from run. Only BEGIN needs this: in WAL, once the write lock is held, statements and
   * COMMIT never wait for another connection's lock (readers do not block the writer, the checkpoint after a
   * commit is passive), so they keep the connection's busy_timeout for the rare waits left (WAL recovery).
   */
  private tryBegin(op: string): unknown {
    return this.run(op, () => {
      try {
        this.db.exec(this.beginNoWait);
        return undefined;
      } catch (err) {
        // The exec stopped at BEGIN: its last statement, restoring the wait, did not run.
        this.db.exec(`PRAGMA busy_timeout = ${this.busyTimeoutMs}`);
        if (String((err as { code?: unknown } | null)?.code).startsWith('SQLITE_BUSY')) return err;
        throw err;
      }
    });
  }

  /**
   * Tries BEGIN IMMEDIATE again after short pauses (LOCK_RETRY_FIRST_MS doubling to LOCK_RETRY_MAX_MS) until it
   * takes the write lock, for up to busy_timeout after the first try; then fails as SQLite's own wait would have
   * (StoreUnavailableError from SQLITE_BUSY: the pipeline answers 503 and the sender retries).
   */
  private async waitForLock(op: string, busy: unknown): Promise<void> {
    const deadline = performance.now() + this.busyTimeoutMs;
    let last = busy;
    for (let pauseMs = LOCK_RETRY_FIRST_MS; ; pauseMs = Math.min(pauseMs * 2, LOCK_RETRY_MAX_MS)) {
      const left = deadline - performance.now();
      if (left <= 0) throw mapError(op, last);
      await new Promise<void>((resolve) => setTimeout(resolve, Math.min(pauseMs, left)));
      last = this.tryBegin(op);
      if (last === undefined) return;
    }
  }

  /** Runs `fn`, mapping SQLite "busy / I/O" failures to StoreUnavailableError. */
  private run<T>(op: string, fn: () => T): T {
    if (this.closed) throw new StoreUnavailableError(`sqlite ${op}: store is closed`);
    if (this.fileLost) throw new StoreUnavailableError(`sqlite ${op}: ${this.fileLost}`);
    const inTransaction = this.db.inTransaction;
    try {
      return fn();
    } catch (err) {
      // On SQLITE_FULL and some I/O errors SQLite rolls the whole transaction back by itself.
      if (inTransaction && !this.db.inTransaction) this.txEndedBy = `${op}: ${String((err as { code?: unknown } | null)?.code ?? err)}`;
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string' && WRITE_FAULT_CODES.test(code)) this.writeFailed(op, code);
      throw mapError(op, err);
    }
  }

  /**
   * Refuses a write meant for the store's open transaction (a unit of work or a group) once SQLite
   * has ended that transaction by itself: run now, it would autocommit on its own while the rest of
   * its unit fails, and the index undo would then disagree with the file. The whole unit fails as one.
   */
  private requireTransaction(op: string): void {
    if (this.db.inTransaction) return;
    throw new StoreUnavailableError(
      `sqlite ${op}: the transaction was rolled back by SQLite: ${this.txEndedBy ?? 'an earlier statement failed'}`,
    );
  }

  /**
   * COMMITs the open transaction (the caller rolls back if this throws). Refused when SQLite already
   * ended it, or when the database file was deleted or replaced since it was opened: the connection
   * would then commit into an unlinked inode, and the caller would answer "stored" for a write that
   * vanishes with the process. One statSync per commit (≈ 1.8 µs measured, against ≈ 200 µs for the commit).
   */
  private commit(): void {
    this.run('commit', () => {
      this.requireTransaction('commit');
      this.checkFile();
      this.db.exec('COMMIT');
    });
    if (this.txClean && this.txChanged()) this.writesCommitted();
  }

  /** A transaction began: no write fault met yet; while one is remembered, where the connection's changes stood. */
  private txBegan(): void {
    this.txClean = true;
    this.txChangesAtBegin = this.writeFault === undefined ? undefined : (this.stmt.totalChanges.get() as number);
  }

  /** Whether the transaction just committed changed rows (only asked while a write fault is remembered). */
  private txChanged(): boolean {
    return this.txChangesAtBegin !== undefined && (this.stmt.totalChanges.get() as number) > this.txChangesAtBegin;
  }

  /** Remembers a write failure that is not a lost race (see writesFailing); logged once per spell, without the data. */
  private writeFailed(op: string, code: string): void {
    this.txClean = false;
    if (this.writeFault === undefined) this.log.error('store.sqlite.writes_failing', { op, code, file: this.fileId?.path });
    this.writeFault = code;
  }

  /** A transaction that met no write fault committed changed rows: the store writes again. */
  private writesCommitted(): void {
    if (this.writeFault === undefined) return;
    this.log.info('store.sqlite.writes_recovered', { failedWith: this.writeFault });
    this.writeFault = undefined;
  }

  /**
   * True from a write failure that is not a lost race (disk full, read-only or unusable file, I/O error:
   * WRITE_FAULT_CODES) until a transaction that met none commits changed rows, and for good once the database file
   * was deleted or replaced. Reads may still answer meanwhile, so the health probe asks this too.
   */
  writesFailing(): boolean {
    return this.fileLost !== undefined || this.writeFault !== undefined;
  }

  /** Reads check the file's identity at most once per FILE_CHECK_EVERY_MS, so the health probe (a getCase) turns 503. */
  private checkFileEvery(): void {
    const t = performance.now();
    if (t - this.fileCheckedAt < FILE_CHECK_EVERY_MS) return;
    this.checkFile();
  }

  /** Throws StoreUnavailableError (from now on, for every call) if the database file is missing or is another file. */
  private checkFile(): void {
    if (this.fileLost) throw new StoreUnavailableError(`sqlite: ${this.fileLost}`);
    const id = this.fileId;
    if (!id) return;
    const st = statSync(id.path, { throwIfNoEntry: false });
    this.fileCheckedAt = performance.now();
    if (st && st.dev === id.dev && st.ino === id.ino) return;
    this.fileLost = `the database file ${id.path} was ${st ? 'replaced' : 'deleted'} while open; restart the process`;
    this.log.error('store.sqlite.file_lost', { file: id.path });
    throw new StoreUnavailableError(`sqlite: ${this.fileLost}`);
  }

  /** Inserts an outbox row whose payload is already in `payloads` under `payloadId`. */
  private insertNotification(n: NotificationRecord, payloadId: number): 'created' | 'exists' {
    const r = this.stmt.insertNotification.run(
      n.key,
      n.tenantId,
      n.caseId,
      n.revision,
      n.kind,
      n.channel,
      n.recipient,
      payloadId,
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
    // The tenants first (an index-only read): one reads that tenant's case, several are refused by name.
    const tenants = await this.exec('findCase', () => this.stmt.caseTenants.all(caseId) as string[]);
    if (tenants.length > 1) throw new AmbiguousCaseError(caseId, tenants.sort());
    const tenant = tenants[0];
    return tenant === undefined ? undefined : this.getCase(tenant, caseId);
  }

  /** @inheritdoc */
  async putCase(
    record: CaseRecord,
    sightings: readonly EntitySighting[],
    expectedEtag: string | undefined,
    outbox: readonly NotificationRecord[] = [],
  ): Promise<CaseRecord> {
    return this.exec(
      'putCase',
      () => {
        const { version, groups, seqs } = this.putTx(record, sightings, expectedEtag, outbox);
        // Only once the put's savepoint is released: a put that failed left no rows, and their seqs are handed out again.
        this.appendedLog(seqs);
        // Written inside a transaction (a group or a unit of work) that undoes this if it rolls back.
        if (this.indexLoaded) {
          const previous = this.index.replace(record.tenantId, record.caseId, withinHorizon(groups, this.horizon));
          this.undo?.push({ tenantId: record.tenantId, caseId: record.caseId, groups: previous });
        }
        return { ...record, etag: String(version) };
      },
      'write',
    );
  }

  /** @inheritdoc */
  async findRelated(query: RelatedQuery): Promise<RelatedResult> {
    return this.exec(
      'findRelated',
      () => {
        this.syncIndex();
        const q = { ...query, from: canonicalInstant(query.from), to: canonicalInstant(query.to) };
        let found: RelatedResult;
        if (q.from >= this.horizon) found = this.index.query(q);
        else {
          // Before the horizon: read the tenant's log rows in the window into a throw-away index.
          const window = new SightingIndex();
          const rows = this.stmt.logInWindow.all(q.tenantId, q.from, q.to, q.from, q.to) as LogRow[];
          rows.sort((a, b) => (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : a[0] - b[0]));
          eachCase(rows, (tenantId, caseId, groups) => window.replace(tenantId, caseId, groups));
          found = window.query(q);
        }
        return new LogAnswer(found.sightings, found.saturated, this.othersSeqs, this.knownSeq);
      },
      'lookup',
    );
  }

  /** Reads the correlation index now rather than on the first look-up (`triage serve` before listening). */
  async warm(): Promise<void> {
    const t0 = this.now();
    await this.exec('warm', () => this.syncIndex(), 'lookup');
    this.log.info('store.sqlite.index', { ...this.indexStats, ms: this.now() - t0 });
  }

  /** Sightings held in memory by the correlation index (for the benchmark and health). */
  get indexStats(): { rows: number; entries: number; keys: number; horizon: string } {
    return { rows: this.index.rows, entries: this.index.entries, keys: this.index.keys, horizon: this.horizon };
  }

  /** Where the index has read the log up to: see undoIndex. */
  private logMark(): LogMark {
    return { lastSeq: this.lastSeq, dataVersion: this.dataVersion, knownSeq: this.knownSeq };
  }

  /**
   * Puts back what a rolled-back transaction's writes replaced in the index, newest first, and the
   * log position as it was when the transaction began: a look-up inside it may have read its own
   * uncommitted log rows, whose seqs another process will now reuse (rowids of rolled-back rows are
   * handed out again) and must not be skipped. The next look-up reads the log from there again.
   */
  private undoIndex(undo: Undo[], mark: LogMark): void {
    this.lastSeq = mark.lastSeq;
    this.dataVersion = mark.dataVersion;
    // The rolled-back rows' seqs are handed out again, to another connection too: above knownSeq, they are found as its rows.
    this.knownSeq = mark.knownSeq;
    if (this.indexLoadedInTx) {
      this.index.clear();
      this.indexLoaded = false;
      return;
    }
    for (const u of undo.reverse()) this.index.replace(u.tenantId, u.caseId, u.groups);
  }

  /** Reads the whole log (from the horizon on) into the index. */
  private loadIndex(): void {
    this.indexLoadedInTx = this.db.inTransaction;
    this.index.clear();
    this.horizonSetAt = this.now();
    this.horizon = new Date(this.horizonSetAt - this.horizonMs).toISOString();
    this.dataVersion = this.stmt.dataVersion.get() as number;
    // Fed in time order, so every key's array is built by appending. SQLite's sorter over a
    // sequential scan, streamed row by row, is 1.7× faster than walking the by-time index or than
    // sorting all rows in JS (and never holds every row at once). A case with rows at several
    // instants comes once per instant: `load` adds instead of replacing.
    this.lastSeq = (this.stmt.maxSeq.get() as number | null) ?? 0;
    // A reload (after a rollback) may read rows committed after an earlier look-up: they count as found.
    this.readLogUpTo(this.lastSeq);
    // The sort of the whole log (≈ 0.3 KB per row) spills to temporary files rather than doubling, for a
    // moment, the memory the index itself takes (temp_store = MEMORY held ≈ 250 MB more per million rows).
    // SQLite allows the switch outside a transaction only (once the connection opened its temporary
    // schema, which ALTER TABLE does): the long-running hosts warm() before taking traffic, so the large
    // load is there; a load inside a transaction (no warm, or after a rollback) sorts in memory.
    const spill = !this.db.inTransaction;
    if (spill) this.db.pragma('temp_store = FILE');
    try {
      const rows = this.stmt.logFrom.iterate(this.horizon) as IterableIterator<LogRow>;
      this.index.load((add) => {
        for (const row of rows) add(row[1], row[2], groupsOf(row));
      });
      // Loaded only once every row was read: a failure anywhere before (the log's max seq, the temp_store switch,
      // a row) leaves it unloaded, so the next look-up reads the log again instead of answering from an empty index.
      this.indexLoaded = true;
    } catch (err) {
      // Half an index would answer look-ups without the rows it never read: missed correlations, silently.
      // Unloaded, the next look-up reads it again (and fails loudly again if the log is at fault).
      this.index.clear();
      this.indexLoaded = false;
      throw err;
    } finally {
      if (spill) this.db.pragma('temp_store = MEMORY');
    }
  }

  /**
   * Brings the index up to date before a look-up: reads it from the log the first time; later moves
   * the horizon (hourly) and reads the log rows another connection appended since the last look.
   * Own writes were applied when made.
   */
  private syncIndex(): void {
    if (!this.indexLoaded) {
      this.loadIndex();
      return;
    }
    const now = this.now();
    if (now - this.horizonSetAt >= EVICT_EVERY_MS) {
      this.horizonSetAt = now;
      this.horizon = new Date(now - this.horizonMs).toISOString();
      this.index.evictBefore(this.horizon);
    }
    const version = this.stmt.dataVersion.get() as number;
    if (version === this.dataVersion) return;
    this.dataVersion = version;
    const rows = this.stmt.logSince.all(this.lastSeq) as LogRow[];
    const seen = eachCase(rows, (tenantId, caseId, groups) => {
      this.index.replace(
        tenantId,
        caseId,
        groups.filter((g) => g.at >= this.horizon),
      );
    });
    this.lastSeq = Math.max(this.lastSeq, seen);
    this.readLogUpTo(seen);
  }

  /** The log was read up to `seq`: rows above knownSeq were other connections' (see knownSeq). */
  private readLogUpTo(seq: number): void {
    if (seq <= this.knownSeq) return;
    this.othersSeqs.highest = Math.max(this.othersSeqs.highest, seq);
    this.knownSeq = seq;
  }

  /** This connection appended log rows `seqs` (ascending): a seq skipped on the way was another connection's row. */
  private appendedLog(seqs: readonly number[]): void {
    for (const seq of seqs) {
      if (seq > this.knownSeq + 1) this.othersSeqs.highest = Math.max(this.othersSeqs.highest, seq - 1);
      if (seq > this.knownSeq) this.knownSeq = seq;
    }
  }

  /** @inheritdoc */
  async acquireLease(lease: Lease, now: string): Promise<{ acquired: boolean; lease: Lease }> {
    // IMMEDIATE: take the write lock before reading, so two processes cannot both see "free".
    return this.exec('acquireLease', () => this.leaseTx.immediate(lease, now), 'write');
  }

  /** @inheritdoc */
  async releaseLease(tenantId: string, caseId: string, owner: string): Promise<void> {
    await this.exec('releaseLease', () => this.stmt.deleteLease.run(tenantId, caseId, owner), 'write');
  }

  /** @inheritdoc */
  async enqueueNotification(n: NotificationRecord): Promise<'created' | 'exists'> {
    return this.exec('enqueueNotification', () => this.enqueueTx(n), 'write');
  }

  /** Updates status and attempts; `sentAt` / `lastError` replace the stored value only when given. An unknown key changes nothing. */
  async markNotification(
    tenantId: string,
    key: string,
    update: { status: NotificationRecord['status']; sentAt?: string; lastError?: string; attempts: number },
  ): Promise<void> {
    const r = await this.exec(
      'markNotification',
      () => this.stmt.markNotification.run(update.status, update.attempts, update.sentAt ?? null, update.lastError ?? null, tenantId, key),
      'write',
    );
    if (r.changes === 0) this.log.warn('store.notification.unknown', { tenantId, key });
  }

  /**
   * Filters combine (AND); entries come oldest first (createdAt, then key). A case's entries (tenant and case
   * given) are read as the key range `tenant|case|` of the primary key plus the few keys outside it
   * (`notifications_by_case_other`). The drain (`queued`, due, limit) walks `notifications_queued` in
   * (createdAt, key) order, checks each entry in SQL and stops after `limit` due ones, joining their payloads
   * only. Other status filters read the whole table (no caller lists them on a hot path).
   */
  async listNotifications(filter: Parameters<Store['listNotifications']>[0]): Promise<NotificationRecord[]> {
    const limit = listLimit(filter.limit);
    if (limit === 0) return [];
    return this.exec('listNotifications', () => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      let source = 'notifications';
      if (filter.tenantId !== undefined && filter.caseId !== undefined) {
        // notificationKey's shape, then the rest: the two halves are disjoint and together are the case's entries.
        const prefix = `${filter.tenantId}|${filter.caseId}|`;
        source = `(SELECT * FROM notifications WHERE key >= ? AND key < ?
          UNION ALL SELECT * FROM notifications WHERE tenant_id = ? AND case_id = ? AND (${KEY_OUTSIDE_CASE_RANGE}))`;
        params.push(prefix, `${prefix.slice(0, -1)}}`, filter.tenantId, filter.caseId);
      }
      if (filter.tenantId !== undefined) {
        where.push('n.tenant_id = ?');
        params.push(filter.tenantId);
      }
      if (filter.caseId !== undefined) {
        where.push('n.case_id = ?');
        params.push(filter.caseId);
      }
      if (filter.status === 'queued') {
        // Written out, not bound: SQLite uses the partial index notifications_queued only for a literal it can match.
        where.push("n.status = 'queued'");
      } else if (filter.status !== undefined) {
        where.push('n.status = ?');
        params.push(filter.status);
      }
      if (filter.due !== undefined) {
        const cutoffs = filter.due.createdBy;
        // Text order is time order for a canonical instant (GLOB: `[…]` and literals only); any other createdAt is due (see the port).
        const other =
          "n.created_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'";
        // CASE takes the first WHEN that holds, so `attempts <= i` is `attempts = i` (below 0: as 0); the last cut-off takes the rest.
        const whens = cutoffs.slice(1).map((_, i) => `WHEN n.attempts <= ${i} THEN ?`);
        const cutoff = whens.length === 0 ? '?' : `CASE ${whens.join(' ')} ELSE ? END`;
        where.push(cutoffs.length === 0 ? other : `(${other} OR n.created_at <= ${cutoff})`);
        params.push(...cutoffs);
      }
      const conditions = where.length ? ` WHERE ${where.join(' AND ')}` : '';
      // With a limit, the payloads are joined to the rows kept only.
      const from =
        limit === undefined ? `${source} n` : `(SELECT n.* FROM ${source} n${conditions} ORDER BY n.created_at, n.key LIMIT ?) n`;
      if (limit !== undefined) params.push(limit);
      const sql = `SELECT n.key, n.tenant_id, n.case_id, n.revision, n.kind, n.channel, n.recipient, COALESCE(p.body, n.payload) AS payload,
        n.created_at, n.status, n.sent_at, n.attempts, n.last_error
        FROM ${from} LEFT JOIN payloads p ON p.id = n.payload_id${limit === undefined ? conditions : ''}
        ORDER BY n.created_at, n.key`;
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
    await this.exec(
      'park',
      () =>
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
      'write',
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
    const r = await this.exec('markParkedReplayed', () => this.stmt.markParked.run(at, id), 'write');
    if (r.changes === 0) this.log.warn('store.parked.unknown', { parkedId: id });
  }

  /** Closes the database (idempotent). Further calls fail with StoreUnavailableError. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Let an open group commit first: its callers are waiting for it.
    if (this.group) await this.group.done.catch(() => undefined);
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function prepareStatements(db: Database.Database) {
  return {
    getCase: db.prepare<[string, string]>(
      `SELECT c.tenant_id, c.case_id, c.revision, c.revision_key, c.fingerprint, c.state, c.detected_at, c.version, c.doc, p.body AS report
       FROM cases c LEFT JOIN payloads p ON p.id = c.report_id WHERE c.case_id = ? AND c.tenant_id = ?`,
    ),
    caseTenants: db.prepare<[string]>('SELECT tenant_id FROM cases WHERE case_id = ?').pluck(),
    insertCase: db.prepare(
      `INSERT INTO cases (tenant_id, case_id, revision, revision_key, fingerprint, state, detected_at, version, sighting_seqs, doc, updated_at, report_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (case_id, tenant_id) DO NOTHING`,
    ),
    caseVersion: db.prepare<[string, string]>('SELECT version, sighting_seqs FROM cases WHERE case_id = ? AND tenant_id = ?'),
    updateCase: db.prepare(
      `UPDATE cases SET revision = ?, revision_key = ?, fingerprint = ?, state = ?, detected_at = ?, version = ?, sighting_seqs = ?, doc = ?, updated_at = ?, report_id = ?
       WHERE case_id = ? AND tenant_id = ?`,
    ),
    archiveCase: db.prepare(
      `INSERT INTO case_revisions (tenant_id, case_id, revision, revision_key, fingerprint, state, doc, stored_at, report_id)
       SELECT tenant_id, case_id, revision, revision_key, fingerprint, state, doc, updated_at, report_id FROM cases WHERE case_id = ? AND tenant_id = ?`,
    ),
    supersedeLog: db.prepare<[number]>("UPDATE sighting_log SET groups = 'null' WHERE seq = ?"),
    appendLog: db.prepare<[string, string, string, string]>(
      'INSERT INTO sighting_log (tenant_id, case_id, detected_at, groups) VALUES (?, ?, ?, ?)',
    ),
    // Raw (array) rows: the index is loaded from up to millions of them.
    logSince: db
      .prepare<[number]>('SELECT seq, tenant_id, case_id, detected_at, groups FROM sighting_log WHERE seq > ? ORDER BY seq')
      .raw(true),
    // Through sighting_log_by_day: the days of the window (a prefix of a string in [from, to] lies in
    // [prefix of from, prefix of to], whatever the spelling), then the instants.
    logInWindow: db
      .prepare<[string, string, string, string, string]>(
        `SELECT seq, tenant_id, case_id, detected_at, groups FROM sighting_log
         WHERE tenant_id = ? AND substr(detected_at, 1, 10) BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
           AND detected_at >= ? AND detected_at <= ?`,
      )
      .raw(true),
    logFrom: db
      // `+` keeps the planner off the by-time index: a scan and a sort beat walking the index.
      .prepare<[string]>(
        'SELECT seq, tenant_id, case_id, detected_at, groups FROM sighting_log WHERE +detected_at >= ? ORDER BY +detected_at, seq',
      )
      .raw(true),
    maxSeq: db.prepare('SELECT MAX(seq) FROM sighting_log').pluck(),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    totalChanges: db.prepare('SELECT total_changes()').pluck(),
    getLease: db.prepare('SELECT owner, expires_at FROM leases WHERE tenant_id = ? AND case_id = ?'),
    putLease: db.prepare(
      `INSERT INTO leases (tenant_id, case_id, owner, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant_id, case_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
    ),
    deleteLease: db.prepare('DELETE FROM leases WHERE tenant_id = ? AND case_id = ? AND owner = ?'),
    // julianday: expiry instants may be written in any ISO 8601 spelling, so compare times, not strings.
    sweepLeases: db.prepare<[string]>('DELETE FROM leases WHERE julianday(expires_at) <= julianday(?)'),
    insertNotification: db.prepare(
      `INSERT OR IGNORE INTO notifications (key, tenant_id, case_id, revision, kind, channel, recipient, payload, payload_id, created_at, status, sent_at, attempts, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`,
    ),
    insertPayload: db.prepare<[string]>('INSERT INTO payloads (body) VALUES (?)'),
    deletePayload: db.prepare<[number]>('DELETE FROM payloads WHERE id = ?'),
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
  const doc = expandCaseDocument(JSON.parse(row.doc) as StoredCaseDocument);
  if (row.report !== null) (doc.result as { firstReport: string }).firstReport = row.report;
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
