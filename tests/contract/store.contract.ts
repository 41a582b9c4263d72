/**
 * The one Store contract: every adapter runs exactly these behaviours.
 * `makeStore` must return an empty store each time (a fresh database); the suite closes it.
 */
import { AmbiguousCaseError, ConcurrencyConflictError } from '../../shared/errors';
import type { Store } from '../../shared/store/port';
import { caseRecord, notification, parked, sighting } from './fixtures';

const T = 'tenant-a';
const OTHER = 'tenant-b';

/** Registers the Store contract for one adapter. */
export function describeStoreContract(name: string, makeStore: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await makeStore();
    });

    afterEach(async () => {
      await store.close();
    });

    describe('cases', () => {
      it('stores a new case and reads it back with an etag', async () => {
        const record = caseRecord(T, 'case-1');

        const saved = await store.putCase(record, [], undefined);
        const read = await store.getCase(T, 'case-1');

        expect(saved.etag).toEqual(expect.any(String));
        expect(read).toEqual({ ...record, etag: saved.etag });
      });

      it('returns undefined for a case that was never stored', async () => {
        await expect(store.getCase(T, 'missing')).resolves.toBeUndefined();
      });

      it('replaces the revision when the etag read before still matches, and issues a new etag', async () => {
        const first = await store.putCase(caseRecord(T, 'case-1'), [], undefined);
        const second = caseRecord(T, 'case-1', { revision: 2, severity: 'high', state: 'triaged' });

        const saved = await store.putCase(second, [], first.etag);
        const read = await store.getCase(T, 'case-1');

        expect(saved.etag).not.toEqual(first.etag);
        expect(read?.revision).toBe(2);
        expect(read?.state).toBe('triaged');
        expect(read?.result.severity).toBe('high');
        expect(read?.etag).toBe(saved.etag);
      });

      it('rejects a write with a stale etag and keeps the stored revision', async () => {
        const first = await store.putCase(caseRecord(T, 'case-1'), [], undefined);
        await store.putCase(caseRecord(T, 'case-1', { revision: 2 }), [], first.etag);

        const stale = store.putCase(caseRecord(T, 'case-1', { revision: 3 }), [], first.etag);

        await expect(stale).rejects.toBeInstanceOf(ConcurrencyConflictError);
        expect((await store.getCase(T, 'case-1'))?.revision).toBe(2);
      });

      it('rejects creating a case that already exists', async () => {
        await store.putCase(caseRecord(T, 'case-1'), [], undefined);

        const again = store.putCase(caseRecord(T, 'case-1', { revision: 2 }), [], undefined);

        await expect(again).rejects.toBeInstanceOf(ConcurrencyConflictError);
        expect((await store.getCase(T, 'case-1'))?.revision).toBe(1);
      });

      it('rejects an update of a case that does not exist', async () => {
        const first = await store.putCase(caseRecord(T, 'case-1'), [], undefined);

        const ghost = store.putCase(caseRecord(T, 'case-2', { revision: 2 }), [], first.etag);

        await expect(ghost).rejects.toBeInstanceOf(ConcurrencyConflictError);
        await expect(store.getCase(T, 'case-2')).resolves.toBeUndefined();
      });

      it('keeps the same case id of two tenants apart', async () => {
        await store.putCase(caseRecord(T, 'case-1', { severity: 'low' }), [], undefined);
        await store.putCase(caseRecord(OTHER, 'case-1', { severity: 'critical' }), [], undefined);

        expect((await store.getCase(T, 'case-1'))?.result.severity).toBe('low');
        expect((await store.getCase(OTHER, 'case-1'))?.result.severity).toBe('critical');
      });

      it('finds a case by id without knowing its tenant', async () => {
        await store.putCase(caseRecord(T, 'case-1'), [], undefined);
        const saved = await store.putCase(caseRecord(OTHER, 'case-2'), [], undefined);

        const found = await store.findCase('case-2');

        expect(found?.tenantId).toBe(OTHER);
        expect(found?.etag).toBe(saved.etag);
        await expect(store.findCase('case-3')).resolves.toBeUndefined();
      });

      it('refuses to guess when two tenants hold a case with the same id, and names them', async () => {
        await store.putCase(caseRecord(OTHER, 'case-1'), [], undefined);
        await store.putCase(caseRecord(T, 'case-1'), [], undefined);

        const found = store.findCase('case-1');

        await expect(found).rejects.toBeInstanceOf(AmbiguousCaseError);
        await expect(found).rejects.toMatchObject({ caseId: 'case-1', tenantIds: [T, OTHER] });
      });

      it('commits outbox entries together with the case, leaving existing keys untouched', async () => {
        const sent = { ...notification(T, 'case-1', 'soc@contoso.example'), status: 'sent' as const, sentAt: '2024-05-01T10:01:00.000Z' };
        await store.enqueueNotification(sent);
        const fresh = notification(T, 'case-1', 'lead@contoso.example');
        const planned = [{ ...sent, status: 'queued' as const, sentAt: undefined }, fresh];

        await store.putCase(caseRecord(T, 'case-1'), [], undefined, planned);
        const listed = await store.listNotifications({ tenantId: T, caseId: 'case-1' });

        expect(listed.map((n) => [n.recipient, n.status])).toEqual([
          ['lead@contoso.example', 'queued'],
          ['soc@contoso.example', 'sent'],
        ]);
      });

      it('writes neither outbox entries nor sightings when the case write loses the race', async () => {
        const first = await store.putCase(caseRecord(T, 'case-1'), [], undefined);
        await store.putCase(caseRecord(T, 'case-1', { revision: 2 }), [], first.etag);

        const losing = store.putCase(
          caseRecord(T, 'case-1', { revision: 3 }),
          [sighting(T, 'case-1', 'ip:198.51.100.1', '2024-05-01T10:00:00.000Z')],
          first.etag,
          [notification(T, 'case-1', 'soc@contoso.example')],
        );

        await expect(losing).rejects.toBeInstanceOf(ConcurrencyConflictError);
        await expect(store.listNotifications({ tenantId: T, caseId: 'case-1' })).resolves.toEqual([]);
        const related = await store.findRelated({
          tenantId: T,
          keys: ['ip:198.51.100.1'],
          from: '2024-04-01T00:00:00.000Z',
          to: '2024-06-01T00:00:00.000Z',
          limitPerKey: 10,
        });
        expect(related).toEqual({ sightings: [], saturated: [] });
      });
    });

    describe('findRelated', () => {
      const window = { from: '2024-05-01T00:00:00.000Z', to: '2024-05-08T00:00:00.000Z' };

      async function putWithSightings(tenantId: string, caseId: string, detectedAt: string, keys: readonly string[]) {
        return store.putCase(
          caseRecord(tenantId, caseId, { detectedAt }),
          keys.map((k) => sighting(tenantId, caseId, k, detectedAt)),
          undefined,
        );
      }

      it('finds sightings of any of the keys inside the window, both bounds included', async () => {
        await putWithSightings(T, 'at-from', window.from, ['ip:203.0.113.77']);
        await putWithSightings(T, 'inside', '2024-05-03T12:00:00.000Z', ['host:vpn01']);
        await putWithSightings(T, 'at-to', window.to, ['ip:203.0.113.77', 'host:vpn01']);
        await putWithSightings(T, 'before', '2024-04-30T23:59:59.999Z', ['ip:203.0.113.77']);
        await putWithSightings(T, 'after', '2024-05-08T00:00:00.001Z', ['host:vpn01']);
        await putWithSightings(T, 'other-key', '2024-05-03T12:00:00.000Z', ['ip:192.0.2.1']);

        const { sightings: found } = await store.findRelated({
          tenantId: T,
          keys: ['ip:203.0.113.77', 'host:vpn01'],
          ...window,
          limitPerKey: 10,
        });

        expect(found.map((s) => `${s.entityKey}@${s.caseId}`).sort()).toEqual([
          'host:vpn01@at-to',
          'host:vpn01@inside',
          'ip:203.0.113.77@at-from',
          'ip:203.0.113.77@at-to',
        ]);
      });

      it('returns the stored fields of each sighting', async () => {
        const s = {
          ...sighting(T, 'case-1', 'ip:203.0.113.77', '2024-05-02T00:00:00.000Z', ['delivery', 'exploitation']),
          severity: 'high' as const,
        };
        await store.putCase(caseRecord(T, 'case-1', { detectedAt: s.detectedAt }), [s], undefined);

        const { sightings: found } = await store.findRelated({ tenantId: T, keys: [s.entityKey], ...window, limitPerKey: 10 });

        expect(found).toEqual([s]);
      });

      it('leaves out the sightings of the excluded case', async () => {
        await putWithSightings(T, 'self', '2024-05-02T00:00:00.000Z', ['ip:203.0.113.77']);
        await putWithSightings(T, 'neighbour', '2024-05-02T01:00:00.000Z', ['ip:203.0.113.77']);

        const { sightings: found } = await store.findRelated({
          tenantId: T,
          keys: ['ip:203.0.113.77'],
          ...window,
          excludeCaseId: 'self',
          limitPerKey: 10,
        });

        expect(found.map((s) => s.caseId)).toEqual(['neighbour']);
      });

      it('returns the sightings of a key below the bound newest first', async () => {
        for (let day = 1; day <= 2; day++) {
          await putWithSightings(T, `c${day}`, `2024-05-0${day}T06:00:00.000Z`, ['ip:203.0.113.77']);
        }

        const r = await store.findRelated({ tenantId: T, keys: ['ip:203.0.113.77'], ...window, limitPerKey: 3 });

        expect(r.sightings.map((s) => s.caseId)).toEqual(['c2', 'c1']);
        expect(r.saturated).toEqual([]);
      });

      it('reports a key with limitPerKey or more sightings as saturated, without its rows, and still returns the others', async () => {
        for (let day = 1; day <= 5; day++) {
          await putWithSightings(T, `c${day}`, `2024-05-0${day}T06:00:00.000Z`, ['ip:203.0.113.77']);
        }
        await putWithSightings(T, 'h1', '2024-05-01T07:00:00.000Z', ['host:vpn01']);

        const first = await store.findRelated({ tenantId: T, keys: ['ip:203.0.113.77', 'host:vpn01'], ...window, limitPerKey: 3 });
        // Asked again (the SQLite adapter then counts instead of reading): the same answer.
        const again = await store.findRelated({ tenantId: T, keys: ['ip:203.0.113.77', 'host:vpn01'], ...window, limitPerKey: 3 });
        // With the bound above the count, the rows come back.
        const roomy = await store.findRelated({ tenantId: T, keys: ['ip:203.0.113.77'], ...window, limitPerKey: 6 });

        expect(first.saturated).toEqual(['ip:203.0.113.77']);
        expect(first.sightings.map((s) => `${s.entityKey}@${s.caseId}`)).toEqual(['host:vpn01@h1']);
        expect(again).toEqual(first);
        expect(roomy.saturated).toEqual([]);
        expect(roomy.sightings.map((s) => s.caseId)).toEqual(['c5', 'c4', 'c3', 'c2', 'c1']);
      });

      it('counts the excluded case out of the bound', async () => {
        for (let day = 1; day <= 3; day++) {
          await putWithSightings(T, `c${day}`, `2024-05-0${day}T06:00:00.000Z`, ['ip:203.0.113.77']);
        }
        const q = { tenantId: T, keys: ['ip:203.0.113.77'], ...window, limitPerKey: 3 };

        const all = await store.findRelated(q);
        const others = await store.findRelated({ ...q, excludeCaseId: 'c3' });

        expect(all.saturated).toEqual(['ip:203.0.113.77']);
        expect(others.saturated).toEqual([]);
        expect(others.sightings.map((s) => s.caseId)).toEqual(['c2', 'c1']);
      });

      it("does not see another tenant's sightings", async () => {
        await putWithSightings(OTHER, 'theirs', '2024-05-02T00:00:00.000Z', ['ip:203.0.113.77']);

        const { sightings: found } = await store.findRelated({ tenantId: T, keys: ['ip:203.0.113.77'], ...window, limitPerKey: 10 });

        expect(found).toEqual([]);
      });

      it("replaces a case's sightings when the case is written again", async () => {
        const first = await putWithSightings(T, 'case-1', '2024-05-02T00:00:00.000Z', ['ip:203.0.113.77', 'host:vpn01']);

        await store.putCase(
          caseRecord(T, 'case-1', { revision: 2, detectedAt: '2024-05-02T00:00:00.000Z' }),
          [
            sighting(T, 'case-1', 'host:vpn01', '2024-05-02T00:00:00.000Z'),
            sighting(T, 'case-1', 'account:k.tanaka@contoso.example', '2024-05-02T00:00:00.000Z'),
          ],
          first.etag,
        );
        const { sightings: found } = await store.findRelated({
          tenantId: T,
          keys: ['ip:203.0.113.77', 'host:vpn01', 'account:k.tanaka@contoso.example'],
          ...window,
          limitPerKey: 10,
        });

        expect(found.map((s) => s.entityKey).sort()).toEqual(['account:k.tanaka@contoso.example', 'host:vpn01']);
      });

      it('compares instants, not spellings: a whole-second time equals its millisecond form', async () => {
        await putWithSightings(T, 'seconds', '2024-05-01T00:00:00Z', ['ip:203.0.113.77']);
        await putWithSightings(T, 'sentinel', '2024-05-07T23:59:59.9990000Z', ['ip:203.0.113.77']);

        const { sightings: found } = await store.findRelated({ tenantId: T, keys: ['ip:203.0.113.77'], ...window, limitPerKey: 10 });

        expect(found.map((s) => s.caseId)).toEqual(['sentinel', 'seconds']);
      });

      it('returns nothing for no keys', async () => {
        await putWithSightings(T, 'case-1', '2024-05-02T00:00:00.000Z', ['ip:203.0.113.77']);

        await expect(store.findRelated({ tenantId: T, keys: [], ...window, limitPerKey: 10 })).resolves.toEqual({
          sightings: [],
          saturated: [],
        });
      });
    });

    describe('leases', () => {
      const lease = (owner: string, expiresAt: string) => ({ tenantId: T, caseId: 'case-1', owner, expiresAt });
      const now = '2024-05-01T10:00:00.000Z';

      it('grants a free lease', async () => {
        const r = await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);

        expect(r).toEqual({ acquired: true, lease: lease('worker-1', '2024-05-01T10:01:00.000Z') });
      });

      it('refuses a lease another owner holds, and says who holds it until when', async () => {
        await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);

        const r = await store.acquireLease(lease('worker-2', '2024-05-01T10:02:00.000Z'), '2024-05-01T10:00:30.000Z');

        expect(r).toEqual({ acquired: false, lease: lease('worker-1', '2024-05-01T10:01:00.000Z') });
      });

      it('lets another owner take over a lease once it has expired (expiry instant included)', async () => {
        await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);

        const r = await store.acquireLease(lease('worker-2', '2024-05-01T10:02:00.000Z'), '2024-05-01T10:01:00.000Z');

        expect(r).toEqual({ acquired: true, lease: lease('worker-2', '2024-05-01T10:02:00.000Z') });
        const third = await store.acquireLease(lease('worker-3', '2024-05-01T10:03:00.000Z'), '2024-05-01T10:01:30.000Z');
        expect(third.acquired).toBe(false);
        expect(third.lease.owner).toBe('worker-2');
      });

      it('extends the lease when its owner acquires it again', async () => {
        await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);

        const r = await store.acquireLease(lease('worker-1', '2024-05-01T10:05:00.000Z'), '2024-05-01T10:00:50.000Z');

        expect(r).toEqual({ acquired: true, lease: lease('worker-1', '2024-05-01T10:05:00.000Z') });
        const other = await store.acquireLease(lease('worker-2', '2024-05-01T10:09:00.000Z'), '2024-05-01T10:02:00.000Z');
        expect(other.acquired).toBe(false);
      });

      it("releases only the owner's lease", async () => {
        await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);

        await store.releaseLease(T, 'case-1', 'worker-2');
        const whileHeld = await store.acquireLease(lease('worker-2', '2024-05-01T10:02:00.000Z'), now);
        await store.releaseLease(T, 'case-1', 'worker-1');
        const afterRelease = await store.acquireLease(lease('worker-2', '2024-05-01T10:02:00.000Z'), now);

        expect(whileHeld.acquired).toBe(false);
        expect(afterRelease.acquired).toBe(true);
      });

      it('a former owner releasing after a takeover leaves the new owner holding the lease', async () => {
        await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);
        await store.acquireLease(lease('worker-2', '2024-05-01T10:03:00.000Z'), '2024-05-01T10:02:00.000Z');

        await store.releaseLease(T, 'case-1', 'worker-1');
        const third = await store.acquireLease(lease('worker-3', '2024-05-01T10:04:00.000Z'), '2024-05-01T10:02:30.000Z');

        expect(third).toEqual({ acquired: false, lease: lease('worker-2', '2024-05-01T10:03:00.000Z') });
      });

      it('releasing a lease nobody holds is harmless', async () => {
        await expect(store.releaseLease(T, 'case-9', 'worker-1')).resolves.toBeUndefined();
      });

      it('gives a contended lease to exactly one of two concurrent callers', async () => {
        const results = await Promise.all([
          store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now),
          store.acquireLease(lease('worker-2', '2024-05-01T10:01:00.000Z'), now),
        ]);

        expect(results.filter((r) => r.acquired)).toHaveLength(1);
        const winner = results.find((r) => r.acquired)?.lease.owner;
        expect(results.map((r) => r.lease.owner)).toEqual([winner, winner]);
      });

      it('keeps leases of different tenants apart', async () => {
        await store.acquireLease(lease('worker-1', '2024-05-01T10:01:00.000Z'), now);

        const r = await store.acquireLease(
          { tenantId: OTHER, caseId: 'case-1', owner: 'worker-2', expiresAt: '2024-05-01T10:01:00.000Z' },
          now,
        );

        expect(r.acquired).toBe(true);
      });
    });

    describe('outbox', () => {
      it('creates a notification once; a second enqueue of the key reports exists and changes nothing', async () => {
        const n = notification(T, 'case-1', 'soc@contoso.example');

        const first = await store.enqueueNotification(n);
        const second = await store.enqueueNotification({ ...n, payload: 'changed', status: 'sent' });

        expect([first, second]).toEqual(['created', 'exists']);
        expect(await store.listNotifications({ caseId: 'case-1' })).toEqual([n]);
      });

      it('lists by case, by tenant and by status, oldest first', async () => {
        const a = notification(T, 'case-1', 'a@contoso.example', { createdAt: '2024-05-01T10:00:02.000Z' });
        const b = notification(T, 'case-1', 'b@contoso.example', { createdAt: '2024-05-01T10:00:01.000Z' });
        const c = notification(T, 'case-2', 'c@contoso.example', { createdAt: '2024-05-01T10:00:03.000Z', status: 'sent' });
        const d = notification(OTHER, 'case-1', 'd@contoso.example', { createdAt: '2024-05-01T10:00:00.000Z' });
        for (const n of [a, b, c, d]) await store.enqueueNotification(n);

        const recipients = async (f: Parameters<Store['listNotifications']>[0]) =>
          (await store.listNotifications(f)).map((n) => n.recipient);

        expect(await recipients({ tenantId: T, caseId: 'case-1' })).toEqual(['b@contoso.example', 'a@contoso.example']);
        expect(await recipients({ tenantId: T })).toEqual(['b@contoso.example', 'a@contoso.example', 'c@contoso.example']);
        expect(await recipients({ tenantId: T, status: 'queued' })).toEqual(['b@contoso.example', 'a@contoso.example']);
        expect(await recipients({ status: 'queued' })).toEqual(['d@contoso.example', 'b@contoso.example', 'a@contoso.example']);
        expect(await recipients({ caseId: 'case-1' })).toEqual(['d@contoso.example', 'b@contoso.example', 'a@contoso.example']);
      });

      it('marks a notification sent, then keeps the last error of a failed attempt', async () => {
        const n = notification(T, 'case-1', 'soc@contoso.example');
        await store.enqueueNotification(n);

        await store.markNotification(T, n.key, { status: 'queued', attempts: 1, lastError: 'HttpError: 503' });
        await store.markNotification(T, n.key, { status: 'sent', attempts: 2, sentAt: '2024-05-01T10:02:00.000Z' });

        expect(await store.listNotifications({ tenantId: T, caseId: 'case-1' })).toEqual([
          { ...n, status: 'sent', attempts: 2, sentAt: '2024-05-01T10:02:00.000Z', lastError: 'HttpError: 503' },
        ]);
        expect(await store.listNotifications({ tenantId: T, status: 'queued' })).toEqual([]);
      });

      it('marking an unknown notification changes nothing', async () => {
        const n = notification(T, 'case-1', 'soc@contoso.example');
        await store.enqueueNotification(n);

        await store.markNotification(T, `${n.key}-other`, { status: 'sent', attempts: 1, sentAt: '2024-05-01T10:02:00.000Z' });
        await store.markNotification(OTHER, n.key, { status: 'sent', attempts: 1, sentAt: '2024-05-01T10:02:00.000Z' });

        expect(await store.listNotifications({ tenantId: T })).toEqual([n]);
      });

      describe('due entries and a limit (the drain)', () => {
        // Cut-offs for 0, 1 and 2+ attempts: an entry is due when createdAt ≤ the cut-off of its attempts count.
        const createdBy = ['2024-05-01T10:10:00.000Z', '2024-05-01T10:09:30.000Z', '2024-05-01T10:08:30.000Z'];
        const queued = (recipient: string, createdAt: string, attempts: number, tenantId = T) => ({
          ...notification(tenantId, `case-${recipient}`, recipient, { createdAt }),
          attempts,
        });
        const recipients = async (f: Parameters<Store['listNotifications']>[0]) =>
          (await store.listNotifications(f)).map((n) => n.recipient);

        it('lists only the entries due by the cut-off of their attempts count, the last cut-off for every count beyond', async () => {
          const entries = [
            queued('first-due', '2024-05-01T10:10:00.000Z', 0),
            queued('first-early', '2024-05-01T10:10:00.001Z', 0),
            queued('retry-due', '2024-05-01T10:09:30.000Z', 1),
            queued('retry-early', '2024-05-01T10:09:30.001Z', 1),
            queued('fifth-due', '2024-05-01T10:08:00.000Z', 5),
            queued('fifth-early', '2024-05-01T10:09:00.000Z', 5),
          ];
          for (const n of entries) await store.enqueueNotification(n);

          const due = await recipients({ tenantId: T, status: 'queued', due: { createdBy } });

          expect(due).toEqual(['fifth-due', 'retry-due', 'first-due']);
        });

        it('lists an entry whose createdAt is not a canonical instant as due, whatever its attempts', async () => {
          await store.enqueueNotification(queued('unreadable', 'garbage', 3));
          await store.enqueueNotification(queued('other-spelling', '2024-05-01T11:00:00Z', 1));
          await store.enqueueNotification(queued('canonical-early', '2024-05-01T10:09:59.000Z', 1));

          const due = await recipients({ tenantId: T, status: 'queued', due: { createdBy } });

          expect(due).toEqual(['other-spelling', 'unreadable']);
        });

        it('lists at most `limit` entries, the oldest, and none for a limit of 0', async () => {
          const entries = ['10:00:04', '10:00:01', '10:00:03', '10:00:02'].map((t, i) => queued(`r${i}`, `2024-05-01T${t}.000Z`, 0));
          for (const n of entries) await store.enqueueNotification(n);

          const two = await recipients({ tenantId: T, status: 'queued', limit: 2 });
          const dueTwo = await recipients({ status: 'queued', due: { createdBy }, limit: 2 });
          const none = await recipients({ tenantId: T, status: 'queued', limit: 0 });

          expect(two).toEqual(['r1', 'r3']);
          expect(dueTwo).toEqual(['r1', 'r3']);
          expect(none).toEqual([]);
        });

        it('a backlog of entries not yet due, larger than the limit, does not hide a due entry (across tenants)', async () => {
          // Five retries waiting out their backoff, all older than the one new entry that is due
          for (let i = 0; i < 5; i++) await store.enqueueNotification(queued(`waiting-${i}`, `2024-05-01T10:09:0${i}.000Z`, 2));
          await store.enqueueNotification(queued('due', '2024-05-01T10:09:59.000Z', 0, OTHER));

          const due = await recipients({ status: 'queued', due: { createdBy }, limit: 3 });

          expect(due).toEqual(['due']);
        });
      });
    });

    describe('parked', () => {
      it('parks idempotently by id: the first item wins', async () => {
        const item = parked('p-1', '2024-05-01T10:00:00.000Z', T);

        await store.park(item);
        await store.park({ ...item, reason: 'second delivery' });

        expect(await store.listParked()).toEqual([item]);
      });

      it('lists newest first, filtered by tenant and limited', async () => {
        await store.park(parked('p-1', '2024-05-01T10:00:00.000Z', T));
        await store.park(parked('p-2', '2024-05-01T12:00:00.000Z', T));
        await store.park(parked('p-3', '2024-05-01T11:00:00.000Z', OTHER));
        await store.park(parked('p-4', '2024-05-01T09:00:00.000Z'));

        const ids = async (f?: Parameters<Store['listParked']>[0]) => (await store.listParked(f)).map((p) => p.id);

        expect(await ids()).toEqual(['p-2', 'p-3', 'p-1', 'p-4']);
        expect(await ids({ tenantId: T })).toEqual(['p-2', 'p-1']);
        expect(await ids({ limit: 2 })).toEqual(['p-2', 'p-3']);
      });

      it('hides replayed items unless asked to include them', async () => {
        await store.park(parked('p-1', '2024-05-01T10:00:00.000Z', T));
        await store.park(parked('p-2', '2024-05-01T11:00:00.000Z', T));

        await store.markParkedReplayed('p-1', '2024-05-02T08:00:00.000Z');

        expect((await store.listParked()).map((p) => p.id)).toEqual(['p-2']);
        const all = await store.listParked({ includeReplayed: true });
        expect(all.map((p) => [p.id, p.replayedAt])).toEqual([
          ['p-2', undefined],
          ['p-1', '2024-05-02T08:00:00.000Z'],
        ]);
      });

      it('marking an unknown parked item as replayed changes nothing', async () => {
        await store.park(parked('p-1', '2024-05-01T10:00:00.000Z', T));

        await store.markParkedReplayed('p-9', '2024-05-02T08:00:00.000Z');

        expect((await store.listParked()).map((p) => p.id)).toEqual(['p-1']);
      });
    });
  });
}
