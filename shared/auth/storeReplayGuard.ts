/**
 * A ReplayGuard backed by the shared store, so a signature accepted by one instance
 * of a scaled-out Function app is refused by every other one within the window. It
 * rides on the store's lease primitive (conditional create with expiry): the first
 * use of a signature creates the lease; any later use finds it unexpired and is refused.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Store } from '../store/port';
import type { ReplayGuard, ReplayHold } from './hmac';

/** Pseudo-tenant under which signature leases are kept (its own partition in Cosmos). */
export const REPLAY_TENANT = '_hmac-replay';

/** Store-backed replay guard. */
export class StoreReplayGuard implements ReplayGuard {
  /** Creates the guard over a store. */
  constructor(
    private readonly store: Store,
    private readonly clock: () => number = Date.now,
  ) {}

  /** See {@link ReplayGuard.checkAndRemember}. */
  async checkAndRemember(signature: string, expiresAtMs: number, nowMs: number = this.clock()): Promise<ReplayHold | false> {
    const id = `sig-${createHash('sha256').update(signature).digest('hex').slice(0, 40)}`;
    // A fresh owner per call: a replay is "someone else" holding an unexpired lease, and a
    // release deletes the lease only while this call's owner still holds it.
    const owner = randomUUID();
    const lease = { tenantId: REPLAY_TENANT, caseId: id, owner, expiresAt: new Date(expiresAtMs).toISOString() };
    const r = await this.store.acquireLease(lease, new Date(nowMs).toISOString());
    if (!r.acquired) return false;
    return { release: () => this.store.releaseLease(REPLAY_TENANT, id, owner) };
  }
}
