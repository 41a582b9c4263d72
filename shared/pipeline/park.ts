/** Stable ids for parked items, so re-parking the same input is idempotent. */
import { createHash } from 'node:crypto';

/** Deterministic id of a parked item: the same body from the same source and path parks once. */
export function parkId(source: string, path: string, body: string): string {
  return createHash('sha256').update(source).update('\0').update(path).update('\0').update(body).digest('hex').slice(0, 32);
}
