/**
 * One error class per failure mode. Callers branch on `instanceof` (or `name`),
 * never on message text.
 */

/** Where in the input a problem was found, as a JSON path like `$.records[2].Entities[1].$ref`. */
export interface InputIssue {
  /** JSON path of the offending value. */
  readonly path: string;
  /** Human-readable reason. */
  readonly reason: string;
}

/** Base class so every product error carries a stable `name` and an optional `cause`. */
export abstract class TriageError extends Error {
  protected constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The input could not be read as JSON at all (truncated, not UTF-8, …). */
export class MalformedJsonError extends TriageError {
  /** Byte offset or description of where parsing stopped, when known. */
  readonly issues: readonly InputIssue[];
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`malformed JSON: ${reason}`, options);
    this.issues = [{ path: '$', reason }];
  }
}

/** The body is larger than the configured limit (1 MB by default). */
export class PayloadTooLargeError extends TriageError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`payload of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The JSON was readable but does not match any accepted shape; `issues` name the paths. */
export class InputValidationError extends TriageError {
  constructor(
    readonly issues: readonly InputIssue[],
    options?: { cause?: unknown },
  ) {
    super(issues.map((i) => `${i.path}: ${i.reason}`).join('; '), options);
  }
}

/** A tenant policy file is invalid; `issues` name the paths inside the YAML document. */
export class PolicyError extends TriageError {
  constructor(
    readonly file: string,
    readonly issues: readonly InputIssue[],
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`, options);
  }
}

/** A required setting (environment variable) is missing or invalid. */
export class ConfigError extends TriageError {
  constructor(
    readonly setting: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`setting ${setting}: ${reason}`, options);
  }
}

/** The store could not be reached or answered with a transient failure (worth retrying). */
export class StoreUnavailableError extends TriageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An optimistic-concurrency check failed (ETag / revision mismatch) after the allowed retries. */
export class ConcurrencyConflictError extends TriageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A case id names cases of more than one tenant and the caller did not say which (GET
 * /api/cases/{id} without `tenantId`): answering with one of them would show a tenant's case to
 * whoever asked for the other's, so the read refuses to guess and names the tenants.
 */
export class AmbiguousCaseError extends TriageError {
  constructor(
    readonly caseId: string,
    readonly tenantIds: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`case id ${JSON.stringify(caseId)} exists in ${tenantIds.length} tenants; name one with ?tenantId=`, options);
  }
}

/** A request failed authentication (missing/invalid token, bad signature, replay). */
export class AuthenticationError extends TriageError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An Event Hubs event does not fit an empty batch (or one record alone exceeds the per-event byte budget). */
export class EventTooLargeError extends TriageError {
  constructor(
    readonly size: number,
    readonly limit: number,
    detail: string,
  ) {
    super(`event of ${size} bytes exceeds the limit of ${limit} bytes: ${detail}`);
  }
}

/** Returns true when an error is worth retrying in-process (transient infrastructure failure). */
export function isTransient(err: unknown): boolean {
  return err instanceof StoreUnavailableError || err instanceof ConcurrencyConflictError;
}
