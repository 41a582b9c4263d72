import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../shared/store/sqlite';
import { caseRecord, sighting } from './fixtures';

/** Overwrites the root page of `table` in the (checkpointed) database `file`: SQLite then reports the file malformed when it reads that table. */
function breakTable(file: string, table: string): void {
  const raw = new Database(file);
  raw.pragma('wal_checkpoint(TRUNCATE)');
  const root = raw.prepare('SELECT rootpage FROM sqlite_master WHERE name = ?').pluck().get(table) as number;
  const pageSize = raw.pragma('page_size', { simple: true }) as number;
  raw.close();
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pageSize, 0xff), 0, pageSize, (root - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/** `answered N` (rows) or `failed: <error text>`. */
async function outcomeOf(p: Promise<{ sightings: readonly unknown[] }>): Promise<string> {
  try {
    return `answered ${(await p).sightings.length}`;
  } catch (err) {
    return `failed: ${String(err)}`;
  }
}

describe('SQLite correlation index load (review of schema v4)', () => {
  let dir: string;
  const at = '2024-05-01T10:00:00.000Z';
  const now = (): number => Date.parse('2024-05-02T00:00:00.000Z');
  const query = { tenantId: 't', keys: ['host:vpn01'], from: '2024-05-01T00:00:00.000Z', to: '2024-05-02T00:00:00.000Z', limitPerKey: 10 };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-v4-review-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails every look-up while the log cannot be read, instead of answering the second one from an empty index', async () => {
    const file = join(dir, 'triage.db');
    const writer = openSqliteStore({ file, now });
    await writer.putCase(caseRecord('t', 'c1'), [sighting('t', 'c1', 'host:vpn01', at)], undefined);
    await writer.close();
    breakTable(file, 'sighting_log');
    const store = openSqliteStore({ file, now });

    // Outcomes as text: SQLite's error class comes from the native module, loaded once per jest worker, so with
    // another test file before this one it is not an `Error` of this file's realm and `rejects.toThrow` misses it.
    const first = await outcomeOf(store.findRelated(query));
    const second = await outcomeOf(store.findRelated(query));

    // An empty answer to the second would be a silent "no related cases" for every alert until a restart.
    expect(first).toMatch(/^failed: .*malformed/);
    expect(second).toMatch(/^failed: .*malformed/);
    await store.close();
  });
});
