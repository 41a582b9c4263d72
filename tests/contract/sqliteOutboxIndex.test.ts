import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, openSqliteStore, type SqliteStore } from '../../shared/store/sqlite';
import { caseRecord, notification, sighting } from './fixtures';

/** The store's connection and its cached listing statements (private: read here to see how SQLite reads). */
const internals = (store: SqliteStore) =>
  store as unknown as { db: Database.Database; listNotificationStmts: Map<string, Database.Statement> };

/** SQLite's plan of every listing statement the store prepared so far, one string per statement. */
function listingPlans(store: SqliteStore, params: (string | number)[][]): string[] {
  const { db, listNotificationStmts } = internals(store);
  return [...listNotificationStmts.keys()].map((sql, i) =>
    (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(params[i] ?? [])) as { detail: string }[]).map((r) => r.detail).join(' | '),
  );
}

const indexNames = (db: Database.Database): string[] =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").pluck().all() as string[]).filter(
    (n) => n.startsWith('notifications') || n.startsWith('sighting_log'),
  );

describe('SQLite outbox and log indexes (schema v4: fewer index entries per alert)', () => {
  let dir: string;
  const at = '2024-05-01T10:00:00.000Z';
  const now = (): number => Date.parse('2024-05-02T00:00:00.000Z');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-sqlite-v4-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists a case through its key range and its few other keys, without reading the other cases', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    const shaped = notification('t', 'c1', 'soc@contoso.example', { createdAt: '2024-05-01T10:00:02.000Z' });
    const odd = { ...notification('t', 'c1', 'lead@contoso.example', { createdAt: '2024-05-01T10:00:01.000Z' }), key: 'legacy-1' };
    // In the key range 't|c1|' but another case's entry: the case filter keeps it out.
    const lookalike = notification('t', 'c1|x', 'soc@contoso.example');
    const otherTenant = notification('u', 'c1', 'soc@contoso.example');
    for (const n of [shaped, odd, lookalike, otherTenant]) await store.enqueueNotification(n);

    const listed = await store.listNotifications({ tenantId: 't', caseId: 'c1' });

    expect(listed).toEqual([odd, shaped]);
    const [plan] = listingPlans(store, [['t|c1|', 't|c1}', 't', 'c1', 't', 'c1']]);
    expect(plan).toContain('USING PRIMARY KEY (key>? AND key<?)');
    expect(plan).toContain('USING INDEX notifications_by_case_other');
    expect(plan).not.toMatch(/SCAN notifications(?! USING)/);
    await store.close();
  });

  it('drains queued entries oldest first from an index of queued entries, stopping at the limit without sorting', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    const entries = [3, 1, 2].map((s) => notification('t', `c${s}`, 'soc@contoso.example', { createdAt: `2024-05-01T10:00:0${s}.000Z` }));
    for (const n of entries) await store.enqueueNotification(n);
    await store.markNotification('t', entries[2]?.key ?? '', { status: 'sent', attempts: 1, sentAt: at });

    const drained = await store.listNotifications({ status: 'queued', due: { createdBy: ['2024-05-01T10:00:09.000Z'] }, limit: 1 });

    expect(drained.map((n) => n.caseId)).toEqual(['c1']);
    const [plan] = listingPlans(store, [['2024-05-01T10:00:09.000Z', 1]]);
    expect(plan).toContain('USING INDEX notifications_queued');
    expect(plan).not.toContain('TEMP B-TREE');
    await store.close();
  });

  it('keeps the savepoint journal of each put in memory, and spills only the sort of a whole-log read to files', async () => {
    const file = join(dir, 'triage.db');
    const store = openSqliteStore({ file, now });
    await store.putCase(caseRecord('t', 'c1'), [sighting('t', 'c1', 'host:vpn01', at)], undefined);
    const { db } = internals(store);

    const writing = db.pragma('temp_store', { simple: true });
    await store.warm();
    const afterWarm = db.pragma('temp_store', { simple: true });

    expect(writing).toBe(2); // MEMORY
    expect(afterWarm).toBe(2);
    expect(store.indexStats.rows).toBe(1);
    await store.close();
  });

  it('migrates a version-3 database in place: its outbox entries, payloads and log rows read back as before', async () => {
    const file = join(dir, 'v3.db');
    const v3 = new Database(file);
    migrate(v3, MIGRATIONS.slice(0, 3));
    v3.prepare('INSERT INTO payloads (id, body) VALUES (7, ?)').run('shared report');
    const insert = v3.prepare(
      `INSERT INTO notifications (key, tenant_id, case_id, revision, kind, channel, recipient, payload, payload_id, created_at, status, sent_at, attempts, last_error)
       VALUES (?, 't', 'c1', 1, 'first-report', 'outbox', ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run('t|c1|first-report|soc|0', 'soc', '', 7, '2024-05-01T10:00:02.000Z', 'queued', null, 0, null);
    insert.run('t|c1|first-report|lead|0', 'lead', '', 7, '2024-05-01T10:00:03.000Z', 'sent', at, 1, null);
    insert.run('k1', 'ciso', 'inline report', null, '2024-05-01T10:00:01.000Z', 'queued', null, 2, 'HttpError: 503');
    v3.prepare("INSERT INTO sighting_log (tenant_id, case_id, detected_at, groups) VALUES ('t', 'old', ?, ?)").run(
      '2024-04-20T10:00:00.000Z',
      JSON.stringify([[['exploitation'], 'brute-force', 'high', ['host:vpn01']]]),
    );
    const before = v3.prepare('SELECT * FROM notifications ORDER BY key').all();
    v3.close();

    // A one-day horizon: the look-up below reads the log by day, not the in-memory index.
    const store = openSqliteStore({ file, now, indexHorizonDays: 1 });
    const { db } = internals(store);
    const after = db.prepare('SELECT * FROM notifications ORDER BY key').all();
    const listed = await store.listNotifications({ tenantId: 't', caseId: 'c1' });
    const queued = await store.listNotifications({ status: 'queued', due: { createdBy: ['2024-05-01T10:00:09.000Z'] } });
    const old = await store.findRelated({
      tenantId: 't',
      keys: ['host:vpn01'],
      from: '2024-04-19T00:00:00.000Z',
      to: '2024-04-21T00:00:00.000Z',
      limitPerKey: 10,
    });

    expect(store.migrationsApplied).toEqual([4]);
    expect(after).toEqual(before);
    expect(indexNames(db)).toEqual(['notifications_by_case_other', 'notifications_queued', 'sighting_log_by_day']);
    expect(listed.map((n) => [n.key, n.payload, n.status])).toEqual([
      ['k1', 'inline report', 'queued'],
      ['t|c1|first-report|soc|0', 'shared report', 'queued'],
      ['t|c1|first-report|lead|0', 'shared report', 'sent'],
    ]);
    expect(queued.map((n) => n.key)).toEqual(['k1', 't|c1|first-report|soc|0']);
    expect(old.sightings.map((s) => `${s.entityKey}@${s.caseId}`)).toEqual(['host:vpn01@old']);
    expect(await store.enqueueNotification(notification('t', 'c1', 'new', { createdAt: at }))).toBe('created');
    expect(await store.enqueueNotification({ ...notification('t', 'c1', 'x'), key: 'k1' })).toBe('exists');
    await store.close();
  });
});
