/**
 * A small, pure retry helper: bounded attempts, exponential backoff with jitter,
 * and a server-supplied delay (`Retry-After`, `x-ms-retry-after-ms`) honoured when
 * present. Store adapters (and any HTTP client) wrap their calls in it; it knows
 * nothing about the errors it retries, the caller classifies them.
 *
 * Time is injected (`sleep`, `random`) so the policy is unit-tested without waiting.
 */

/** How to retry one call. */
export interface RetryPolicy {
  /** Total attempts, the first one included (1 = no retry). */
  readonly attempts: number;
  /** Backoff before the second attempt; doubled for each further attempt. */
  readonly baseMs: number;
  /** Upper bound of any single delay, server-supplied ones included. */
  readonly maxMs: number;
  /** Whether this error is worth another attempt (transient). Non-retryable errors are rethrown at once. */
  readonly isRetryable: (err: unknown) => boolean;
  /** The delay the server asked for, in ms, when the error carries one; it replaces the computed backoff. */
  readonly retryAfterMs?: (err: unknown) => number | undefined;
  /** Maps the last error once the attempts are used up (e.g. to StoreUnavailableError); default rethrows it. */
  readonly exhausted?: (lastError: unknown, attempts: number) => unknown;
  /** Called before each wait: logging and metrics. */
  readonly onRetry?: (info: { readonly attempt: number; readonly delayMs: number; readonly error: unknown }) => void;
  /** Waits `ms` (default: setTimeout). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Uniform [0, 1) (default Math.random); the jitter source. */
  readonly random?: () => number;
}

/** Waits `ms` milliseconds. */
export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The delay before attempt `attempt + 1` (attempt counts from 1): the server's delay when
 * given (capped at maxMs), otherwise `baseMs · 2^(attempt-1)` capped at maxMs, with
 * "equal jitter" (between half and all of it) so a crowd of throttled workers spreads out
 * instead of retrying in lock-step.
 */
export function backoffDelay(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
  random: () => number,
  serverMs?: number,
): number {
  if (serverMs !== undefined && Number.isFinite(serverMs) && serverMs >= 0) return Math.min(serverMs, policy.maxMs);
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/**
 * Calls `fn` until it succeeds, throws a non-retryable error, or the attempts are used up.
 * `fn` receives the attempt number (1-based).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const sleep = policy.sleep ?? realSleep;
  const random = policy.random ?? Math.random;
  const attempts = Math.max(1, Math.floor(policy.attempts));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!policy.isRetryable(err)) throw err;
      if (attempt >= attempts) throw policy.exhausted ? policy.exhausted(err, attempt) : err;
      const delayMs = backoffDelay(attempt, policy, random, policy.retryAfterMs?.(err));
      policy.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs);
    }
  }
}
