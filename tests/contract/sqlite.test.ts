import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConcurrencyConflictError, ConfigError, StoreUnavailableError } from '../../shared/errors';
import { MIGRATIONS, type Migration, migrate, openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';
import { caseRecord, connectionOf, notification, sighting } from './fixtures';
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

describe('SQLite correlation index (in memory, over the append-only sighting log)', () => {
  let dir: string;
  const window = { from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z' };
  const at = '2024-05-01T10:00:00.000Z';
  /** A clock that puts the sample instants well inside the index horizon. */
  const now = () => Date.parse('2024-05-02T00:00:00.000Z');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-index-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds after a reopen what was written before it (the index is read back from the log)', async () => {
    const file = join(dir, 'triage.db');
    const first = openSqliteStore({ file, now });
    await first.putCase(
      caseRecord('t', 'c1'),
      [sighting('t', 'c1', 'ip:203.0.113.77', at), sighting('t', 'c1', 'host:vpn01', at)],
      undefined,
    );
    await first.close();

    const second = openSqliteStore({ file, now });
    const found = await second.findRelated({ tenantId: 't', keys: ['host:vpn01', 'ip:203.0.113.77'], ...window, limitPerKey: 10 });

    expect(found.sightings.map((s) => `${s.entityKey}@${s.caseId}`)).toEqual(['host:vpn01@c1', 'ip:203.0.113.77@c1']);
    expect(second.indexStats).toMatchObject({ rows: 2, entries: 1 });
    await second.close();
  });

  it('reads the index on the first look-up, not when the store opens', async () => {
    const file = join(dir, 'triage.db');
    const first = openSqliteStore({ file, now });
    await first.putCase(caseRecord('t', 'c1'), [sighting('t', 'c1', 'host:vpn01', at)], undefined);
    await first.close();

    const second = openSqliteStore({ file, now });
    const atOpen = second.indexStats.rows;
    await second.putCase(caseRecord('t', 'c2'), [sighting('t', 'c2', 'host:vpn01', at)], undefined);
    const found = await second.findRelated({ tenantId: 't', keys: ['host:vpn01'], ...window, limitPerKey: 10 });

    expect(atOpen).toBe(0);
    expect(found.sightings.map((s) => s.caseId)).toEqual(['c2', 'c1']);
    await second.close();
  });

  it('reads the index when warmed, before any look-up', async () => {
    const file = join(dir, 'triage.db');
    const first = openSqliteStore({ file, now });
    await first.putCase(
      caseRecord('t', 'c1'),
      [sighting('t', 'c1', 'host:vpn01', at), sighting('t', 'c1', 'ip:203.0.113.77', at)],
      undefined,
    );
    await first.close();
    const second = openSqliteStore({ file, now });

    await second.warm();

    expect(second.indexStats).toMatchObject({ rows: 2, entries: 1, keys: 2 });
    await second.close();
  });

  it('never answers from half an index: a log row it cannot read fails the look-up, and the next look-up reads the whole log again', async () => {
    // Arrange: two cases on the same host; the later log row is damaged
    const file = join(dir, 'triage.db');
    const first = openSqliteStore({ file, now });
    await first.putCase(caseRecord('t', 'c1'), [sighting('t', 'c1', 'host:vpn01', at)], undefined);
    await first.putCase(caseRecord('t', 'c2'), [sighting('t', 'c2', 'host:vpn01', at)], undefined);
    await first.close();
    const db = new Database(file);
    const good = db.prepare("SELECT groups FROM sighting_log WHERE case_id = 'c2'").pluck().get() as string;
    db.prepare("UPDATE sighting_log SET groups = '[[' WHERE case_id = 'c2'").run();
    db.close();
    const store = openSqliteStore({ file, now });
    const q = { tenantId: 't', keys: ['host:vpn01'], ...window, limitPerKey: 10 };

    // Act: a look-up over the damaged log, then one after the row is mended
    const failed = await store.findRelated(q).then(
      () => 'answered',
      (err: unknown) => (err instanceof Error ? err.name : 'thrown'),
    );
    const heldAfterFailure = store.indexStats.rows;
    const mend = new Database(file);
    mend.prepare("UPDATE sighting_log SET groups = ? WHERE case_id = 'c2'").run(good);
    mend.close();
    const found = await store.findRelated(q);

    // Assert
    expect(failed).toBe('SyntaxError');
    expect(heldAfterFailure).toBe(0);
    expect(found.sightings.map((s) => s.caseId)).toEqual(['c2', 'c1']);
    await store.close();
  });

  it('drops an index first read inside a unit of work that rolled back, and reads it again', async () => {
    const file = join(dir, 'triage.db');
    const first = openSqliteStore({ file, now });
    await first.putCase(caseRecord('t', 'kept'), [sighting('t', 'kept', 'host:vpn01', at)], undefined);
    await first.close();
    const store = openSqliteStore({ file, now });
    const q = { tenantId: 't', keys: ['host:vpn01'], ...window, limitPerKey: 10 };

    let seenInside: string[] = [];
    await expect(
      store.unitOfWork(async () => {
        await store.putCase(caseRecord('t', 'lost'), [sighting('t', 'lost', 'host:vpn01', at)], undefined);
        seenInside = (await store.findRelated(q)).sightings.map((s) => s.caseId);
        throw new Error('crash in the middle of a batch');
      }),
    ).rejects.toThrow('crash');
    const after = await store.findRelated(q);

    expect(seenInside).toEqual(['lost', 'kept']);
    expect(after.sightings.map((s) => s.caseId)).toEqual(['kept']);
    await store.close();
  });

  it("sees another connection's writes, including a revision that dropped a key", async () => {
    const file = join(dir, 'triage.db');
    const a = openSqliteStore({ file, now });
    const b = openSqliteStore({ file, now });
    const q = { tenantId: 't', keys: ['host:vpn01', 'ip:203.0.113.77'], ...window, limitPerKey: 10 };
    await b.findRelated(q); // b has looked before a writes

    const saved = await a.putCase(
      caseRecord('t', 'c1'),
      [sighting('t', 'c1', 'ip:203.0.113.77', at), sighting('t', 'c1', 'host:vpn01', at)],
      undefined,
    );
    const seenFirst = await b.findRelated(q);
    await a.putCase(caseRecord('t', 'c1', { revision: 2 }), [sighting('t', 'c1', 'host:vpn01', at)], saved.etag);
    const seenAfterRevision = await b.findRelated(q);

    expect(seenFirst.sightings.map((s) => s.entityKey)).toEqual(['host:vpn01', 'ip:203.0.113.77']);
    expect(seenAfterRevision.sightings.map((s) => s.entityKey)).toEqual(['host:vpn01']);
    await a.close();
    await b.close();
  });

  it('forgets the sightings of a unit of work that rolled back', async () => {
    const store = openSqliteStore({ file: ':memory:', now });
    await store.putCase(caseRecord('t', 'kept'), [sighting('t', 'kept', 'host:vpn01', at)], undefined);
    const kept = await store.getCase('t', 'kept');

    await expect(
      store.unitOfWork(async () => {
        await store.putCase(caseRecord('t', 'lost'), [sighting('t', 'lost', 'host:vpn01', at)], undefined);
        await store.putCase(caseRecord('t', 'kept', { revision: 2 }), [sighting('t', 'kept', 'host:web02', at)], kept?.etag);
        throw new Error('crash in the middle of a batch');
      }),
    ).rejects.toThrow('crash');
    const found = await store.findRelated({ tenantId: 't', keys: ['host:vpn01', 'host:web02'], ...window, limitPerKey: 10 });

    expect(found.sightings.map((s) => `${s.entityKey}@${s.caseId}`)).toEqual(['host:vpn01@kept']);
    await store.close();
  });

  it('answers a lookup reaching back before the in-memory horizon from the log, with the same rows', async () => {
    const file = join(dir, 'triage.db');
    const writer = openSqliteStore({ file, now });
    for (const [i, day] of ['2024-04-28', '2024-04-30', '2024-05-01'].entries()) {
      await writer.putCase(caseRecord('t', `c${i}`), [sighting('t', `c${i}`, 'host:vpn01', `${day}T10:00:00.000Z`)], undefined);
    }
    await writer.putCase(caseRecord('other', 'x'), [sighting('other', 'x', 'host:vpn01', at)], undefined);
    const q = { tenantId: 't', keys: ['host:vpn01'], ...window, excludeCaseId: 'c1', limitPerKey: 10 };
    const inMemory = await writer.findRelated(q);
    await writer.close();

    // A horizon of one day from 2024-05-02: the index holds only 2024-05-01, the window starts 2024-04-24.
    const late = openSqliteStore({ file, now, indexHorizonDays: 1 });
    const fromLog = await late.findRelated(q);
    const saturated = await late.findRelated({ ...q, limitPerKey: 2 });

    expect(late.indexStats.rows).toBe(2); // c2 and the other tenant's x
    expect(fromLog).toEqual(inMemory);
    expect(fromLog.sightings.map((s) => s.caseId)).toEqual(['c2', 'c0']);
    expect(saturated).toEqual({ sightings: [], saturated: ['host:vpn01'] });
    await late.close();
  });

  it('stores a first report sent to several recipients once, and gives it back whole', async () => {
    const file = join(dir, 'triage.db');
    const store = openSqliteStore({ file, now });
    const payload = '# First report\n\nBrute force against vpn01 from 203.0.113.77 …';
    const base = caseRecord('t', 'c1');
    const record = { ...base, result: { ...base.result, firstReport: payload } };
    const outbox = ['soc@contoso.example', 'oncall@contoso.example', 'ciso@contoso.example'].map((to) => ({
      ...notification('t', 'c1', to),
      payload,
    }));

    await store.putCase(record, [], undefined, outbox);
    const db = new Database(file, { readonly: true });
    const stored = db
      .prepare("SELECT (SELECT COUNT(*) FROM payloads) AS payloads, (SELECT json_extract(doc, '$.result.firstReport') FROM cases) AS inDoc")
      .get();
    db.close();

    expect(stored).toEqual({ payloads: 1, inDoc: '' });
    expect((await store.getCase('t', 'c1'))?.result).toEqual(record.result);
    expect((await store.listNotifications({ caseId: 'c1' })).map((n) => n.payload)).toEqual([payload, payload, payload]);
    await store.close();
  });

  it("writes a stand-alone alert's entity list once in the case row, and reads the record back whole", async () => {
    const file = join(dir, 'triage.db');
    const store = openSqliteStore({ file, now });
    const base = caseRecord('t', 'c1');
    const [alert] = base.case.alerts;
    const kase = { ...base.case, alerts: [{ ...alert!, entities: base.case.entities }] }; // shared, as the parser gives it
    const record = { ...base, case: kase };

    await store.putCase(record, [], undefined);
    const db = new Database(file, { readonly: true });
    const stored = db.prepare("SELECT json_extract(doc, '$.case.entities') AS entities FROM cases").get();
    const olderBuild = () => migrate(db, MIGRATIONS.slice(0, 2)); // what a build before the stored form does on open
    expect(olderBuild).toThrow(ConfigError); // it refuses the file instead of reading markers as entity lists
    db.close();

    expect(stored).toEqual({ entities: '=alerts[0].entities' });
    const back = await store.getCase('t', 'c1');
    expect(back?.case).toEqual(record.case);
    expect(back?.result).toEqual(record.result);
    await store.close();
  });

  it('migrates a version-1 database: its sightings are found, its inline payloads read back', async () => {
    const file = join(dir, 'v1.db');
    const v1 = new Database(file);
    migrate(v1, MIGRATIONS.slice(0, 1));
    v1.prepare(
      `INSERT INTO cases (tenant_id, case_id, revision, revision_key, fingerprint, state, detected_at, version, sighting_ids, doc, updated_at)
       VALUES ('t', 'c1', 1, 'k', 'fp', 'done', ?, 1, '[]', ?, ?)`,
    ).run(at, JSON.stringify({ case: caseRecord('t', 'c1').case, result: caseRecord('t', 'c1').result }), at);
    const ins = v1.prepare(
      'INSERT INTO sightings (tenant_id, entity_key, detected_at, case_id, phases, playbook, severity) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    ins.run('t', 'host:vpn01', at, 'c1', '["exploitation"]', 'brute-force', 'high');
    ins.run('t', 'ip:203.0.113.77', at, 'c1', '["exploitation"]', 'brute-force', 'high');
    v1.prepare(
      `INSERT INTO notifications (key, tenant_id, case_id, revision, kind, channel, recipient, payload, created_at, status, attempts)
       VALUES ('k1', 't', 'c1', 1, 'first-report', 'outbox', 'soc@contoso.example', 'inline report', ?, 'queued', 0)`,
    ).run(at);
    v1.close();

    const store = openSqliteStore({ file, now });
    const found = await store.findRelated({ tenantId: 't', keys: ['host:vpn01', 'ip:203.0.113.77'], ...window, limitPerKey: 10 });
    const existing = await store.getCase('t', 'c1');
    const revised = existing && (await store.putCase({ ...existing, revision: 2 }, [sighting('t', 'c1', 'host:web02', at)], existing.etag));
    const afterRevision = await store.findRelated({ tenantId: 't', keys: ['host:vpn01', 'host:web02'], ...window, limitPerKey: 10 });

    expect(store.migrationsApplied).toEqual([2, 3, 4]);
    expect(found.sightings.map((s) => `${s.entityKey}@${s.caseId}@${s.severity}`)).toEqual([
      'host:vpn01@c1@high',
      'ip:203.0.113.77@c1@high',
    ]);
    expect(revised?.revision).toBe(2);
    expect(afterRevision.sightings.map((s) => s.entityKey)).toEqual(['host:web02']);
    expect((await store.listNotifications({ caseId: 'c1' }))[0]?.payload).toBe('inline report');
    await store.close();
  });
});

describe('SQLite group commit (concurrent deliveries share one commit)', () => {
  /** The store's connection, to count its commits and to make one fail. */
  const connection = (store: unknown) => (store as { db: Database.Database }).db;
  const at = '2024-05-01T10:00:00.000Z';
  const window = { from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z' };

  it('commits concurrent writes together, once, and answers each after that commit', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    const db = connection(store);
    const exec = db.exec.bind(db);
    let commits = 0;
    db.exec = (sql: string) => {
      if (sql === 'COMMIT') commits++;
      return exec(sql);
    };

    const writes = Array.from({ length: 10 }, (_, i) =>
      store.putCase(caseRecord('t', `c${i}`), [sighting('t', `c${i}`, 'host:vpn01', at)], undefined),
    );
    const inFlight = db.inTransaction;
    await Promise.all(writes);

    expect(inFlight).toBe(true);
    expect(commits).toBe(1);
    expect(db.inTransaction).toBe(false);
    expect((await store.findRelated({ tenantId: 't', keys: ['host:vpn01'], ...window, limitPerKey: 51 })).sightings).toHaveLength(10);
    await store.close();
  });

  it('fails every write and read of a group whose commit fails, and keeps none of its writes', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    const db = connection(store);
    db.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);`);

    const first = store.putCase(caseRecord('t', 'c1'), [sighting('t', 'c1', 'host:vpn01', at)], undefined);
    db.exec('INSERT INTO child VALUES (42)'); // inside the open group: its COMMIT will fail
    const second = store.putCase(caseRecord('t', 'c2'), [sighting('t', 'c2', 'host:vpn01', at)], undefined);
    const read = store.getCase('t', 'c1');

    const outcomes = await Promise.allSettled([first, second, read]);

    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
    expect(((outcomes[0] as PromiseRejectedResult).reason as Error).cause).toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    expect(await store.getCase('t', 'c1')).toBeUndefined();
    expect(await store.getCase('t', 'c2')).toBeUndefined();
    expect(await store.findRelated({ tenantId: 't', keys: ['host:vpn01'], ...window, limitPerKey: 51 })).toEqual({
      sightings: [],
      saturated: [],
    });
    await store.close();
  });

  it('lets a conflicting write fail alone while the rest of its group commits', async () => {
    const store = openSqliteStore({ file: ':memory:' });

    const results = await Promise.allSettled([
      store.putCase(caseRecord('t', 'same'), [], undefined),
      store.putCase(caseRecord('t', 'same', { fingerprint: 'other' }), [], undefined),
      store.putCase(caseRecord('t', 'different'), [], undefined),
    ]);

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyConflictError);
    expect((await store.getCase('t', 'same'))?.fingerprint).toBe('fp-same-1');
    expect(await store.getCase('t', 'different')).toBeDefined();
    await store.close();
  });
});

describe('SQLite leases', () => {
  it('deletes expired leases (one per signed request) at most hourly, keeping those still held', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'triage-leases-'));
    const file = join(dir, 'triage.db');
    const store = openSqliteStore({ file });
    const lease = (caseId: string, expiresAt: string) => ({ tenantId: 't', caseId, owner: 'w', expiresAt });
    await store.acquireLease(lease('old', '2026-11-20T00:05:00Z'), '2026-11-20T00:00:00.000Z'); // first call sweeps an empty table
    await store.acquireLease(lease('held', '2026-11-20T03:00:00.000Z'), '2026-11-20T00:10:00.000Z');
    const count = (): number => {
      const db = new Database(file, { readonly: true });
      const n = db.prepare('SELECT COUNT(*) FROM leases').pluck().get() as number;
      db.close();
      return n;
    };
    const beforeAnHour = count();

    await store.acquireLease(lease('new', '2026-11-20T02:00:00.000Z'), '2026-11-20T01:00:00.000Z');

    expect(beforeAnHour).toBe(2);
    expect(count()).toBe(2); // "old" swept, "held" kept, "new" added
    const held = await store.acquireLease({ ...lease('held', '2026-11-20T04:00:00.000Z'), owner: 'other' }, '2026-11-20T01:00:01.000Z');
    expect(held.acquired).toBe(false);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('SQLite store when the database fails under it (disk full, file deleted, concurrent openers)', () => {
  const at = '2024-05-01T10:00:00.000Z';
  const window = { from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z', limitPerKey: 50 };
  const now = (): number => Date.parse('2024-05-02T00:00:00.000Z');
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-fail-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** The store's own connection: SQLite limits and failures are set on it, as a full disk would hit it. */

  /** Makes the next writes that need a few more pages fail with SQLITE_FULL, which rolls the whole transaction back. */
  const fillDisk = (store: SqliteStore): void => {
    const db = connectionOf(store);
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 2}`);
  };
  const bigOutbox = [{ ...notification('t', 'too-big', 'soc@example.com'), payload: 'x'.repeat(256 * 1024) }];
  const casesInFile = (file: string): string[] => {
    const db = new Database(file, { readonly: true });
    const ids = db.prepare('SELECT case_id FROM cases ORDER BY case_id').pluck().all() as string[];
    db.close();
    return ids;
  };
  const related = async (store: SqliteStore): Promise<string[]> =>
    (await store.findRelated({ tenantId: 't', keys: ['host:h0', 'host:h1'], ...window })).sightings.map((s) => s.caseId).sort();

  it('fails a whole unit of work, storing none of it, when SQLite rolled its transaction back after a write failed', async () => {
    const file = join(dir, 'full.db');
    const store = openSqliteStore({ file, now });
    await store.putCase(caseRecord('t', 'before'), [sighting('t', 'before', 'host:h0', at)], undefined);
    await store.warm();
    fillDisk(store);

    const unit = store.unitOfWork(async () => {
      await store.putCase(caseRecord('t', 'first'), [sighting('t', 'first', 'host:h1', at)], undefined);
      // A per-item failure the batch goes on after (as the pipeline does for one bad alert).
      await store.putCase(caseRecord('t', 'too-big'), [], undefined, bigOutbox).catch(() => undefined);
      await store.putCase(caseRecord('t', 'after'), [sighting('t', 'after', 'host:h1', at)], undefined);
    });

    await expect(unit).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(casesInFile(file)).toEqual(['before']);
    const fresh = openSqliteStore({ file, now });
    expect(await related(store)).toEqual(await related(fresh));
    expect(await related(store)).toEqual(['before']);
    await fresh.close();
    await store.close();
  });

  it('fails every write of a group commit, storing none of them, when SQLite rolled the group back after a write failed', async () => {
    const file = join(dir, 'full-group.db');
    const store = openSqliteStore({ file, now });
    await store.putCase(caseRecord('t', 'before'), [sighting('t', 'before', 'host:h0', at)], undefined);
    await store.warm();
    fillDisk(store);

    const writes = [
      store.putCase(caseRecord('t', 'first'), [sighting('t', 'first', 'host:h1', at)], undefined),
      store.putCase(caseRecord('t', 'too-big'), [], undefined, bigOutbox),
      store.putCase(caseRecord('t', 'after'), [sighting('t', 'after', 'host:h1', at)], undefined),
    ];
    const outcomes = await Promise.allSettled(writes);

    for (const o of outcomes) expect(o.status === 'rejected' && o.reason instanceof StoreUnavailableError).toBe(true);
    expect(casesInFile(file)).toEqual(['before']);
    const fresh = openSqliteStore({ file, now });
    expect(await related(store)).toEqual(await related(fresh));
    await fresh.close();
    await store.close();
  });

  it("sees another process's case whose log row reuses the seq of its own rolled-back row", async () => {
    const file = join(dir, 'seq.db');
    const a = openSqliteStore({ file, now });
    const b = openSqliteStore({ file, now });
    await b.putCase(caseRecord('t', 'b-old'), [sighting('t', 'b-old', 'host:h0', at)], undefined);
    await a.warm();
    await b.putCase(caseRecord('t', 'b-1'), [sighting('t', 'b-1', 'host:h1', at)], undefined);
    // A's look-up inside its unit reads the unit's own, uncommitted log row; the unit then rolls back.
    await expect(
      a.unitOfWork(async () => {
        await a.putCase(caseRecord('t', 'a-1'), [sighting('t', 'a-1', 'host:hA', at)], undefined);
        await a.findRelated({ tenantId: 't', keys: ['host:h1'], ...window });
        throw new Error('batch failed');
      }),
    ).rejects.toThrow('batch failed');

    await b.putCase(caseRecord('t', 'b-2'), [sighting('t', 'b-2', 'host:h2', at)], undefined);

    const seen = await a.findRelated({ tenantId: 't', keys: ['host:h2', 'host:hA'], ...window });
    expect(seen.sightings.map((s) => s.caseId)).toEqual(['b-2']);
    await a.close();
    await b.close();
  });

  it('refuses a write (and the reads) once its database file was deleted, instead of storing it in the unlinked file', async () => {
    const file = join(dir, 'deleted.db');
    const store = openSqliteStore({ file });
    await store.putCase(caseRecord('t', 'before'), [], undefined);
    const reader = openSqliteStore({ file });

    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });

    await expect(store.putCase(caseRecord('t', 'lost'), [], undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.getCase('t', 'before')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(reader.getCase('t', 'before')).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
    await reader.close();
  });

  it('refuses a write once its database file was replaced by another file', async () => {
    const file = join(dir, 'replaced.db');
    const other = join(dir, 'other.db');
    const store = openSqliteStore({ file });
    await openSqliteStore({ file: other }).close();

    renameSync(other, file);

    await expect(store.putCase(caseRecord('t', 'lost'), [], undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
  });

  it('lets several processes open (and migrate) one new database at the same moment', async () => {
    const file = join(dir, 'race.db');
    const go = join(dir, 'go');
    const source = join(__dirname, '../../shared/store/sqlite.ts');
    const opener = `
      const fs = require('node:fs');
      const { openSqliteStore } = require(${JSON.stringify(source)});
      fs.writeFileSync(${JSON.stringify(dir)} + '/ready-' + process.pid, '');
      while (!fs.existsSync(${JSON.stringify(go)})) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      try { openSqliteStore({ file: ${JSON.stringify(file)} }).close(); process.stdout.write('opened'); }
      catch (e) { process.stdout.write('failed: ' + e.message); }`;
    const children = Array.from({ length: 4 }, () => spawn(process.execPath, ['--require', 'tsx/cjs', '-e', opener]));
    const outputs = children.map(
      (c) =>
        new Promise<string>((done) => {
          let out = '';
          c.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          c.on('close', () => done(out));
        }),
    );
    // Every child is ready (modules loaded) before any opens: they all race for the new file.
    while (readdirSync(dir).filter((f) => f.startsWith('ready-')).length < children.length) await new Promise((r) => setImmediate(r));

    writeFileSync(go, '');

    expect(await Promise.all(outputs)).toEqual(children.map(() => 'opened'));
  }, 30_000);
});
