/**
 * The store probe behind the anonymous GET /api/health. Anonymous means anyone can call it as
 * often as they like, and each probe is a store read (on Cosmos a billed point read): the result
 * is kept for a few seconds, so a flood of health checks costs one read per interval, not one per call.
 */
import type { Store } from '../store/port';

/** How long one probe answers for. */
const HEALTH_PROBE_TTL_MS = 5_000;

const last = new WeakMap<Store, { at: number; ok: boolean }>();

/** Whether the store answered a read, probed at most once per HEALTH_PROBE_TTL_MS per store. */
export async function storeAnswers(store: Store, now: number = Date.now()): Promise<boolean> {
  const seen = last.get(store);
  if (seen && now - seen.at < HEALTH_PROBE_TTL_MS) return seen.ok;
  let ok: boolean;
  try {
    await store.getCase('__health__', '__health__');
    ok = true;
  } catch {
    ok = false;
  }
  last.set(store, { at: now, ok });
  return ok;
}
