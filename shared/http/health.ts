/**
 * The store probe behind the anonymous GET /api/health. Anonymous means anyone can call it as
 * often as they like, and each probe is a store read (on Cosmos a billed point read): the result
 * is kept for a few seconds, so a flood of health checks costs one read per interval, not one per call.
 *
 * A store that answers reads can still be unable to write (SQLite on a full disk or a read-only file):
 * every alert is then answered 503 (nothing is lost, the sender retries), and so is the probe, while the
 * store says its writes are failing (`writesFailing`). The probe then tries one small write of its own
 * (a lease taken and let go, at most once per interval): when that commits the store writes again, so
 * health recovers without waiting for traffic a load balancer may be holding back because of it.
 */
import type { Store } from '../store/port';

/** How long one probe answers for. */
const HEALTH_PROBE_TTL_MS = 5_000;

const last = new WeakMap<Store, { at: number; ok: boolean }>();

/** The probe's own lease, under a reserved tenant name (as the replay guard's), expiring soon if never let go. */
const PROBE_LEASE = { tenantId: '__health__', caseId: '__health__', owner: 'health-probe' } as const;
const PROBE_LEASE_MS = 60_000;

/**
 * Whether the store answered a read and, when it says its writes are failing, a write of the probe's
 * committed; probed at most once per HEALTH_PROBE_TTL_MS per store.
 */
export async function storeAnswers(store: Store, now: number = Date.now()): Promise<boolean> {
  const seen = last.get(store);
  if (seen && now - seen.at < HEALTH_PROBE_TTL_MS) return seen.ok;
  let ok: boolean;
  try {
    await store.getCase('__health__', '__health__');
    ok = store.writesFailing?.() === true ? await writeCommits(store) : true;
  } catch {
    ok = false;
  }
  last.set(store, { at: now, ok });
  return ok;
}

/** Takes and lets go of the probe's lease; true when the store no longer says its writes are failing. */
async function writeCommits(store: Store): Promise<boolean> {
  const at = Date.now();
  await store.acquireLease({ ...PROBE_LEASE, expiresAt: new Date(at + PROBE_LEASE_MS).toISOString() }, new Date(at).toISOString());
  await store.releaseLease(PROBE_LEASE.tenantId, PROBE_LEASE.caseId, PROBE_LEASE.owner);
  return store.writesFailing?.() !== true;
}
