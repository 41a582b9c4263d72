/**
 * The one structured logger: one JSON line per event on stderr, carrying
 * tenantId, caseId and step when known. Never pass secrets or raw payloads.
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

function serializeError(err: unknown): unknown {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, cause: err.cause === undefined ? undefined : serializeError(err.cause) };
  }
  return String(err);
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
    sink(JSON.stringify(record));
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
