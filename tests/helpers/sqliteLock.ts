/**
 * A fresh SQLite file per test, the store under test on it, and a second real connection that holds its
 * write lock as another process's write transaction does: for the tests of the store's wait for that lock.
 * Waits are counted in event-loop turns (`turns`), never in time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';

/** Far longer than the few event-loop turns a test holds the lock for: only a store that never waits on a timer runs out of it. */
export const LOCK_WAIT_MS = 2000;

/** The per-test file and what the tests do with it (see sqliteFileUnderLock). */
export interface FileUnderLock {
  /** This test's database file. */
  readonly file: string;
  /** The store under test on the file, closed after the test. */
  open(busyTimeoutMs?: number): SqliteStore;
  /** A second connection on the file holding the write lock, rolled back and closed after the test. */
  holdWriteLock(): Database.Database;
  /** Rows of `table` for `caseId`, read by a connection of its own (it sees committed rows only). */
  committedRows(table: 'cases' | 'sighting_log' | 'notifications', caseId: string): number;
  /** Whether the case is committed. */
  committed(caseId: string): boolean;
  /**
   * Transactions committed to the WAL file so far: frames whose header holds the database size after the
   * commit (non-zero only on a transaction's last frame), as long as their salts match the WAL header's.
   */
  walCommits(): number;
}

/** Registers the per-test file (beforeEach/afterEach) under a temp folder named `prefix…`. */
export function sqliteFileUnderLock(prefix: string): FileUnderLock {
  let dir = '';
  let file = '';
  const opened: SqliteStore[] = [];
  const others: Database.Database[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    file = join(dir, 'triage.db');
  });
  afterEach(async () => {
    for (const o of others.splice(0)) {
      if (o.inTransaction) o.exec('ROLLBACK');
      o.close();
    }
    for (const s of opened.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const committedRows = (table: 'cases' | 'sighting_log' | 'notifications', caseId: string): number => {
    const reader = new Database(file, { readonly: true });
    try {
      return reader.prepare(`SELECT count(*) FROM ${table} WHERE case_id = ?`).pluck().get(caseId) as number;
    } finally {
      reader.close();
    }
  };
  return {
    get file() {
      return file;
    },
    open(busyTimeoutMs = LOCK_WAIT_MS) {
      const s = openSqliteStore({ file, busyTimeoutMs, now: () => Date.parse('2024-05-02T00:00:00.000Z') });
      opened.push(s);
      return s;
    },
    holdWriteLock() {
      const other = new Database(file);
      others.push(other);
      other.exec('BEGIN IMMEDIATE');
      return other;
    },
    committedRows,
    committed: (caseId) => committedRows('cases', caseId) === 1,
    walCommits() {
      let wal: Buffer;
      try {
        wal = readFileSync(`${file}-wal`);
      } catch {
        return 0;
      }
      if (wal.length < 32) return 0;
      const pageSize = wal.readUInt32BE(8);
      const salt1 = wal.readUInt32BE(16);
      const salt2 = wal.readUInt32BE(20);
      let commits = 0;
      for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
        if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
        if (wal.readUInt32BE(at + 4) !== 0) commits++;
      }
      return commits;
    },
  };
}

/** Whether `p` has settled, updated as it does. */
export function track(p: Promise<unknown>): { settled: boolean } {
  const state = { settled: false };
  p.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

/** Lets the event loop turn (setImmediate) until `stop()` or `max` turns; returns the turns it got. */
export async function turns(max: number, stop: () => boolean = () => false): Promise<number> {
  let n = 0;
  while (n < max && !stop()) {
    await new Promise((r) => setImmediate(r));
    n++;
  }
  return n;
}
