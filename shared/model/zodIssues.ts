/** Turns zod issues into `{ path, reason }` with JSON paths such as `$.records[0].Entities`. */
import type { z } from 'zod';
import type { InputIssue } from '../errors';

/** Formats a zod path as a JSON path rooted at `prefix` (default `$`). */
export function jsonPath(path: readonly PropertyKey[], prefix = '$'): string {
  let out = prefix;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_$][\w$-]*$/.test(seg)) out += `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** Converts zod issues, expanding union failures into their most specific branch issues. */
export function formatZodIssues(issues: readonly z.core.$ZodIssue[], prefix = '$'): InputIssue[] {
  return issues.map((i) => ({ path: jsonPath(i.path, prefix), reason: i.message }));
}
