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

/**
 * Bytes a parked body may take as stored (a JSON string, UTF-8): Cosmos refuses an item over 2 MB,
 * and the parked document carries its reason and issues besides the body. Measured as stored, not
 * in characters: escaping can make one character six bytes (control characters) and a byte that is
 * not UTF-8 three (its replacement character), so a 1 MB body could become a 6 MB document, which
 * the store refused — and a park that fails makes the Event Hub host retry its batch forever.
 */
export const PARKED_BODY_MAX_BYTES = 1_800_000;

/** Size of `s` as stored inside a JSON document (escaped, UTF-8). */
function storedBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s));
}

/**
 * The body to park: whole when it fits `maxBytes` as stored (so `triage parked replay` can run it
 * again), otherwise its head, marked with how many characters were cut.
 */
export function fitParkedBody(body: string, maxBytes: number = PARKED_BODY_MAX_BYTES): string {
  const size = storedBytes(body);
  if (size <= maxBytes) return body;
  const room = maxBytes - 64; // the marker
  let keep = Math.floor(body.length * (room / size));
  while (keep > 0 && storedBytes(body.slice(0, keep)) > room) keep = Math.floor(keep * 0.9);
  return `${body.slice(0, keep)}…[truncated ${body.length - keep} chars]`;
}
