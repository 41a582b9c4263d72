/**
 * Maps pipeline outcomes to HTTP answers, independent of the trigger library:
 * `functions/` (Azure Functions) and the local host both use it.
 */
import { AmbiguousCaseError, AuthenticationError, ConfigError, PayloadTooLargeError, StoreUnavailableError } from '../errors';
import type { IngestOutcome, ItemOutcome } from '../pipeline/pipeline';

/** A trigger-independent HTTP answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

function publicItem(i: ItemOutcome): Record<string, unknown> {
  return {
    path: i.path,
    status: i.status,
    ...(i.caseId ? { caseId: i.caseId } : {}),
    ...(i.error ? { error: i.error } : {}),
    ...(i.parkedId ? { parkedId: i.parkedId } : {}),
    ...(i.result ? { result: i.result } : {}),
  };
}

/**
 * One incident body: 200 with the TriageResult (triaged, revised, duplicate, stale);
 * 400 with the issues when rejected (413 when too large); 503 + Retry-After when a
 * transient failure outlasted the retries (the item is parked and the caller may retry:
 * processing is idempotent).
 */
export function answerSingle(outcome: IngestOutcome): HttpAnswer {
  const item = outcome.items[0];
  if (!item) return { status: 400, body: { error: { name: 'InputValidationError', message: 'empty body' } } };
  switch (item.status) {
    case 'triaged':
    case 'revised':
    case 'duplicate':
    case 'stale':
      return { status: 200, body: item.result, headers: { 'x-triage-outcome': item.status } };
    case 'rejected':
      return { status: item.error?.name === 'PayloadTooLargeError' ? 413 : 400, body: publicItem(item) };
    case 'ignored':
      return { status: 422, body: publicItem(item) };
    case 'failed':
      return { status: 503, body: publicItem(item), headers: { 'retry-after': '30' } };
    default: {
      const never: never = item.status;
      return never;
    }
  }
}

/**
 * A batch body: 200 when every item was accepted, 207 when some were rejected
 * (each item says which), 400/413 when none were, 503 when any failed transiently.
 */
export function answerBatch(outcome: IngestOutcome): HttpAnswer {
  const { counts } = outcome;
  const accepted = counts.triaged + counts.revised + counts.duplicate + counts.stale + counts.ignored;
  const body = { counts, items: outcome.items.map(publicItem) };
  if (counts.failed > 0) return { status: 503, body, headers: { 'retry-after': '30' } };
  if (counts.rejected === 0) return { status: 200, body };
  if (accepted > 0) return { status: 207, body };
  const tooLarge = outcome.items.length === 1 && outcome.items[0]?.error?.name === 'PayloadTooLargeError';
  return { status: tooLarge ? 413 : 400, body };
}

/** Maps an error thrown before the pipeline (auth, configuration, size) to an answer. */
export function answerError(err: unknown): HttpAnswer {
  if (err instanceof AuthenticationError) return { status: 401, body: { error: { name: err.name, message: err.message } } };
  if (err instanceof PayloadTooLargeError) return { status: 413, body: { error: { name: err.name, message: err.message } } };
  if (err instanceof AmbiguousCaseError)
    return { status: 409, body: { error: { name: err.name, message: err.message, tenantIds: [...err.tenantIds] } } };
  if (err instanceof ConfigError) return { status: 500, body: { error: { name: err.name, message: 'server misconfigured' } } };
  // The store is down (a read-only or full disk, an outage) and even parking failed: nothing was kept,
  // so the sender must retry, and 503 with Retry-After says so (a 500 reads as "do not bother").
  if (err instanceof StoreUnavailableError) {
    return {
      status: 503,
      body: { error: { name: err.name, message: 'store unavailable: retry later' } },
      headers: { 'retry-after': '30' },
    };
  }
  return { status: 500, body: { error: { name: 'InternalError', message: 'internal error' } } };
}
