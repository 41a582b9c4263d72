/**
 * The one structured logger: one JSON line per event on stderr, carrying
 * tenantId, caseId and step when known. Never pass secrets or raw payloads: the
 * redaction of known credential shapes below is a backstop, not a licence.
 */

/** Log levels, lowest first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Correlation fields carried by every line. */
export interface LogContext {
  tenantId?: string;
  caseId?: string;
  step?: string;
  [key: string]: unknown;
}

/** A structured logger. */
export interface Logger {
  debug(event: string, fields?: LogContext): void;
  info(event: string, fields?: LogContext): void;
  warn(event: string, fields?: LogContext): void;
  error(event: string, fields?: LogContext): void;
  /** A logger whose lines all carry `fields`. */
  child(fields: LogContext): Logger;
}

/** Where lines go; defaults to stderr so stdout stays clean for `triage replay`. */
export type LogSink = (line: string) => void;

const rank = (l: LogLevel): number => LOG_LEVELS.indexOf(l);

/**
 * Deepest `cause` followed: SDK errors nest a few levels, and a chain that loops back on itself
 * (`a.cause = b; b.cause = a`) would otherwise recurse until the stack overflows, inside a catch block.
 */
const MAX_CAUSE_DEPTH = 5;
/** Longest error name or message kept: SDK messages carry kilobytes of diagnostics, some quote their input. */
const MAX_ERROR_TEXT = 1_000;

const clip = (s: string): string =>
  s.length > MAX_ERROR_TEXT ? `${s.slice(0, MAX_ERROR_TEXT)}…[${s.length - MAX_ERROR_TEXT} chars cut]` : s;

/** `String(v)`, which throws for an object without a prototype or whose `toString` throws. */
function text(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** Name and message of an error and its causes; never its stack or other properties (SDK errors keep request details there). */
function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return clip(text(err));
  const out: { name: string; message: string; cause?: unknown } = { name: clip(text(err.name)), message: clip(text(err.message)) };
  if (err.cause !== undefined) out.cause = depth < MAX_CAUSE_DEPTH ? serializeError(err.cause, depth + 1) : '[deeper causes not logged]';
  return out;
}

/**
 * Credentials a line could carry although no call site means to log one: the SDKs quote connection
 * strings and URLs in their error messages (`@azure/event-hubs` puts the whole connection string,
 * key included, in one), and a misplaced setting can put a key into a field that is logged (a Cosmos
 * connection string pasted as COSMOS_ENDPOINT is a valid https URL). Matched on the serialised line,
 * so every field and every level is covered: account and SAS keys, SAS signatures (also URL-encoded,
 * as in Cosmos' authorization header, where `%26` precedes `sig`), function keys (`code=`), bearer
 * tokens and JWTs. The HMAC secret has no shape to match: it is kept out by construction (its errors
 * never quote it). Costs one regex pass per written line (≈ 0.6 µs on 1.4); a line below the level costs nothing.
 *
 * The same pass escapes what JSON.stringify leaves raw but some readers take as a line break or a
 * terminal control (U+2028, U+2029, the C1 controls NEL and CSI among them), so one event stays one
 * line for any reader. The value classes stop at `"` and `\`, so a replacement never breaks the JSON.
 */
const SCRUB =
  /((?<![A-Za-z])(?:AccountKey|SharedAccessKey|SharedAccessSignature|sig|code|client_secret|access_token|refresh_token|password|AUTH_HMAC_SECRETS)(?:=|%3D))[^;&"\s\\]+|(\bBearer\s+)[^\s"\\]+|\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*|[\u0080-\u009f\u2028\u2029]/gi;

function scrub(line: string): string {
  return line.replace(SCRUB, (match: string, keyName?: string, bearer?: string) => {
    if (keyName !== undefined) return `${keyName}[redacted]`;
    if (bearer !== undefined) return `${bearer}[redacted]`;
    if (match.length === 1) return `\\u${match.charCodeAt(0).toString(16).padStart(4, '0')}`;
    return '[redacted-jwt]';
  });
}

/** The record as one JSON line; a value JSON cannot write (a BigInt, a cycle) costs the fields, never the event. */
function serialize(record: Record<string, unknown>): string {
  try {
    return JSON.stringify(record);
  } catch (err) {
    // Only the fields that say what happened and to which case, each as text (so this cannot throw in turn).
    const kept: Record<string, string> = {};
    for (const k of ['ts', 'level', 'event', 'tenantId', 'caseId', 'step']) if (record[k] !== undefined) kept[k] = clip(text(record[k]));
    return JSON.stringify({ ...kept, logFieldsDropped: clip(text(err instanceof Error ? err.message : err)) });
  }
}

/** Creates a JSON-lines logger. Level comes from `LOG_LEVEL` unless given. */
export function createLogger(options?: { level?: LogLevel; sink?: LogSink; base?: LogContext }): Logger {
  const envLevel = process.env.LOG_LEVEL as LogLevel | undefined;
  const level: LogLevel = options?.level ?? (envLevel && LOG_LEVELS.includes(envLevel) ? envLevel : 'info');
  const sink: LogSink = options?.sink ?? ((line) => process.stderr.write(`${line}\n`));
  const base = options?.base ?? {};
  const emit = (lvl: LogLevel, event: string, fields?: LogContext): void => {
    if (rank(lvl) < rank(level)) return;
    const record: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, event, ...base, ...fields };
    if ('err' in record) record.err = serializeError(record.err);
    sink(scrub(serialize(record)));
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (fields) => createLogger({ level, sink, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = createLogger({ level: 'silent' });
