/**
 * Reading raw bodies as JSON at the edge: size limit first (before any parsing work),
 * UTF-8 BOM stripped, malformed JSON reported with its position.
 */
import { MalformedJsonError, PayloadTooLargeError } from '../errors';

/** Default body limit: 1 MiB (ARCHITECTURE §6). */
export const DEFAULT_BODY_LIMIT_BYTES = 1_048_576;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function positionHint(message: string, source: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return /end of JSON input/i.test(message) ? ` (at end of input, position ${source.length})` : '';
  const pos = Number(m[1]);
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos && i < source.length; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return ` (line ${line}, column ${pos - lineStart + 1})`;
}

/** V8 quotes a few characters of the input in some messages: keep them on one line and short. */
function oneLine(msg: string): string {
  return msg.replace(/\s+/g, ' ').slice(0, 300);
}

function parseText(text: string): unknown {
  if (text.trim() === '') throw new MalformedJsonError('empty body');
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    throw new MalformedJsonError(`${oneLine(msg)}${positionHint(msg, text)}`, { cause: err });
  }
}

/**
 * Parses a body as JSON. Refuses bodies over `limitBytes` with PayloadTooLargeError
 * (byte length checked before decoding or parsing), bytes that are not UTF-8 and text
 * that is not JSON with MalformedJsonError (reason names the position when known).
 * A leading UTF-8 byte-order mark is ignored.
 */
export function parseJsonText(text: string | Buffer, limitBytes = DEFAULT_BODY_LIMIT_BYTES): unknown {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: a string that short is within the limit without
  // counting its bytes (a scan of the whole body, ≈ 2 % of parsing an alert).
  if (typeof text !== 'string' || text.length * 3 > limitBytes) {
    const size = typeof text === 'string' ? Buffer.byteLength(text, 'utf8') : text.byteLength;
    if (size > limitBytes) throw new PayloadTooLargeError(size, limitBytes);
  }
  let s: string;
  if (typeof text === 'string') {
    s = text;
  } else {
    try {
      s = utf8.decode(text);
    } catch (err) {
      throw new MalformedJsonError('body is not valid UTF-8', { cause: err });
    }
  }
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  return parseText(s);
}

/** One line of an NDJSON document: its value, or why it is not JSON. `line` is 1-based. */
export interface NdjsonLine {
  readonly line: number;
  readonly value?: unknown;
  readonly error?: MalformedJsonError;
}

/**
 * Parses newline-delimited JSON (replay files, parked-item exports). Blank lines are
 * skipped; each other line yields its value or its own MalformedJsonError, so one bad
 * line never hides its neighbours. No size limit: replay files are local and trusted.
 */
export function parseNdjson(text: string | Buffer): NdjsonLine[] {
  let s = typeof text === 'string' ? text : text.toString('utf8');
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  const out: NdjsonLine[] = [];
  const lines = s.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (l.trim() === '') continue;
    try {
      out.push({ line: i + 1, value: JSON.parse(l) });
    } catch (err) {
      const msg = (err as Error).message;
      out.push({ line: i + 1, error: new MalformedJsonError(`line ${i + 1}: ${oneLine(msg)}${positionHint(msg, l)}`, { cause: err }) });
    }
  }
  return out;
}

/** A UTF-16 code unit of a surrogate pair standing alone (with the `u` flag, a pair is one code point, not `Cs`). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * JSON text of a parsed value, whatever its nesting depth: `JSON.stringify` recurses and throws
 * RangeError on a value nested a few thousand levels deep (which `JSON.parse` accepts), so such a
 * value is serialised by an explicit stack instead. The output is what `JSON.stringify` would give
 * for values that came from JSON (`undefined` members skipped, `undefined` array items as `null`);
 * bytes (an Event Hub event's body) are decoded as UTF-8 text, invalid sequences replaced; a string (an
 * event's text) is returned as is, unless it holds a lone surrogate (then as its JSON, which any store keeps).
 * Used where a rejected item must be kept (parked) and nothing may throw.
 */
export function stringifyJson(value: unknown): string {
  // A string is an event's text, kept as is; one with a lone surrogate cannot be (an event is decoded from UTF-8):
  // it is a JSON string item, kept as its JSON, because stores write UTF-8 and turned it into U+FFFD.
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Uint8Array) return new TextDecoder('utf-8').decode(value);
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
  type Frame = { readonly items: readonly unknown[]; readonly keys?: readonly string[]; i: number; wrote: boolean };
  const out: string[] = [];
  const stack: Frame[] = [];
  // Writes a scalar, or opens a container and pushes its frame.
  const put = (v: unknown): void => {
    if (v === null || typeof v !== 'object') {
      out.push(JSON.stringify(v) ?? 'null');
    } else if (Array.isArray(v)) {
      out.push('[');
      stack.push({ items: v, i: 0, wrote: false });
    } else {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o).filter((k) => o[k] !== undefined && typeof o[k] !== 'function');
      out.push('{');
      stack.push({ items: keys.map((k) => o[k]), keys, i: 0, wrote: false });
    }
  };
  put(value);
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    if (top.i >= top.items.length) {
      out.push(top.keys ? '}' : ']');
      stack.pop();
      continue;
    }
    const i = top.i++;
    if (top.wrote) out.push(',');
    top.wrote = true;
    if (top.keys) out.push(`${JSON.stringify(top.keys[i])}:`);
    put(top.items[i]);
  }
  return out.join('');
}
