/** Stable ids for parked items, so re-parking the same input is idempotent. */
import { createHash } from 'node:crypto';

/** Deterministic id of a parked item: the same body from the same source and path parks once. */
export function parkId(source: string, path: string, body: string): string {
  return createHash('sha256').update(source).update('\0').update(path).update('\0').update(body).digest('hex').slice(0, 32);
}

/**
 * The raw value at a JSON path such as `$[0].records[1]` inside a delivered body, descending
 * into JSON strings and bytes (Event Hub events arrive as either). Used to park the original
 * item of a case that failed after parsing, so `triage parked replay` can run it again.
 * Returns undefined when the path does not resolve.
 */
export function rawAt(body: unknown, path: string): unknown {
  let cur: unknown = body;
  for (const m of path.matchAll(/\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/g)) {
    if (typeof cur === 'string' || cur instanceof Uint8Array) {
      try {
        cur = JSON.parse(typeof cur === 'string' ? cur : Buffer.from(cur).toString('utf8'));
      } catch {
        return undefined;
      }
    }
    if (cur === null || typeof cur !== 'object') return undefined;
    const key = m[1] ?? (m[2] !== undefined ? Number(m[2]) : JSON.parse(`"${m[3] ?? ''}"`));
    cur = (cur as Record<string | number, unknown>)[key as string | number];
  }
  return cur instanceof Uint8Array ? Buffer.from(cur).toString('utf8') : cur;
}
