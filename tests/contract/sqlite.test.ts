import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError, StoreUnavailableError } from '../../shared/errors';
import { MIGRATIONS, type Migration, migrate, openSqliteStore } from '../../shared/store/sqlite';
import { caseRecord, sighting } from './fixtures';
import { describeStoreContract } from './store.contract';

describeStoreContract('sqlite', async () => openSqliteStore({ file: ':memory:' }));

describe('SQLite store', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the folder of the database file and opens it in WAL mode', async () => {
    const file = join(dir, 'nested', 'deeper', 'triage.db');

    const store = openSqliteStore({ file });
    await store.close();

    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
  });

  it('migrates a new database once and does not re-run migrations on reopen, keeping the data', async () => {
    const file = join(dir, 'triage.db');
    const first = openSqliteStore({ file });
    await first.putCase(caseRecord('t', 'case-1'), [sighting('t', 'case-1', 'ip:203.0.113.77', '2024-05-01T10:00:00.000Z')], undefined);
    await first.close();

    const second = openSqliteStore({ file });

    expect(first.migrationsApplied).toEqual(MIGRATIONS.map((m) => m.version));
    expect(second.migrationsApplied).toEqual([]);
    expect((await second.getCase('t', 'case-1'))?.revision).toBe(1);
    await second.close();
  });

  it('upgrades a database at version N by running only the later steps', () => {
    const db = new Database(':memory:');
    const ran: number[] = [];
    const step = (version: number): Migration => ({
      version,
      description: `step ${version}`,
      up: (d) => {
        ran.push(version);
        d.exec(`CREATE TABLE t${version} (x INTEGER)`);
      },
    });
    migrate(db, [step(1), step(2)]);
    ran.length = 0;

    const applied = migrate(db, [step(1), step(2), step(3), step(4)]);

    expect(applied).toEqual([3, 4]);
    expect(ran).toEqual([3, 4]);
    expect(db.pragma('user_version', { simple: true })).toBe(4);
    db.close();
  });

  it('rolls a failing migration step back and leaves the version where it was', () => {
    const db = new Database(':memory:');
    const good: Migration = { version: 1, description: 'good', up: (d) => d.exec('CREATE TABLE a (x INTEGER)') };
    const bad: Migration = {
      version: 2,
      description: 'bad',
      up: (d) => {
        d.exec('CREATE TABLE b (x INTEGER)');
        throw new Error('boom');
      },
    };

    expect(() => migrate(db, [good, bad])).toThrow('boom');

    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'b'").get()).toBeUndefined();
    db.close();
  });

  it('refuses a database whose schema is newer than this build', async () => {
    const file = join(dir, 'future.db');
    const db = new Database(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();

    expect(() => openSqliteStore({ file })).toThrow(ConfigError);
  });

  it('keeps every superseded revision of a case in case_revisions, and the latest in cases', async () => {
    const file = join(dir, 'triage.db');
    const store = openSqliteStore({ file });
    const first = await store.putCase(caseRecord('t', 'case-1'), [], undefined);
    const second = await store.putCase(caseRecord('t', 'case-1', { revision: 2, severity: 'high' }), [], first.etag);
    await store.putCase(caseRecord('t', 'case-1', { revision: 3, severity: 'critical' }), [], second.etag);
    await store.close();

    const db = new Database(file, { readonly: true });
    const history = db
      .prepare("SELECT revision, json_extract(doc, '$.result.severity') AS severity FROM case_revisions ORDER BY revision")
      .all();
    const latest = db.prepare("SELECT revision, json_extract(doc, '$.result.severity') AS severity FROM cases").all();
    db.close();

    expect(history).toEqual([
      { revision: 1, severity: 'medium' },
      { revision: 2, severity: 'high' },
    ]);
    expect(latest).toEqual([{ revision: 3, severity: 'critical' }]);
  });

  it('reports a database locked by another process as StoreUnavailableError', async () => {
    const file = join(dir, 'triage.db');
    const store = openSqliteStore({ file, busyTimeoutMs: 0 });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');

    const write = store.putCase(caseRecord('t', 'case-1'), [], undefined);

    await expect(write).rejects.toBeInstanceOf(StoreUnavailableError);
    other.exec('ROLLBACK');
    other.close();
    await store.close();
  });
});

describe('SQLite unit of work (one commit per Event Hub batch)', () => {
  it('commits every write made inside together, and none of them when the unit throws', async () => {
    const store = openSqliteStore({ file: ':memory:' });

    await store.unitOfWork(async () => {
      await store.putCase(caseRecord('t', 'kept-1'), [], undefined);
      await store.putCase(caseRecord('t', 'kept-2'), [], undefined);
    });
    await expect(
      store.unitOfWork(async () => {
        await store.putCase(caseRecord('t', 'lost-1'), [], undefined);
        throw new Error('crash in the middle of a batch');
      }),
    ).rejects.toThrow('crash in the middle of a batch');

    expect(await store.getCase('t', 'kept-1')).toBeDefined();
    expect(await store.getCase('t', 'kept-2')).toBeDefined();
    expect(await store.getCase('t', 'lost-1')).toBeUndefined();
    await store.close();
  });

  it('makes another caller wait, so its write is neither inside the unit nor rolled back with it', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    let releaseUnit = (): void => undefined;
    const unitBlocked = new Promise<void>((r) => {
      releaseUnit = r;
    });

    const unit = store.unitOfWork(async () => {
      await store.putCase(caseRecord('t', 'in-unit'), [], undefined);
      await unitBlocked;
      throw new Error('rolled back');
    });
    const outside = store.putCase(caseRecord('t', 'outside'), [], undefined);
    await new Promise((r) => setTimeout(r, 20));
    const outsideDoneEarly = await Promise.race([outside.then(() => true), Promise.resolve(false)]);
    releaseUnit();
    await expect(unit).rejects.toThrow('rolled back');
    await outside;

    expect(outsideDoneEarly).toBe(false);
    expect(await store.getCase('t', 'outside')).toBeDefined();
    expect(await store.getCase('t', 'in-unit')).toBeUndefined();
    await store.close();
  });
});
