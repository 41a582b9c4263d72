/**
 * Thin glue between @azure/functions HTTP types and the trigger-independent
 * answers of shared/http. No business logic here.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { PayloadTooLargeError } from '../../shared/errors';
import { answerError, type HttpAnswer } from '../../shared/http/respond';
import { createLogger } from '../../shared/log';
import { getRuntime } from '../../shared/runtime';

/**
 * Leaves a trace of a refused body before throwing: a 413 is otherwise invisible to operators.
 * Only the path is logged (the query string can carry the function key as `code=`), never the body.
 */
async function refuseTooLarge(request: HttpRequest, limit: number, bytesRead: number, declaredBytes?: number): Promise<never> {
  const rt = await getRuntime().catch(() => undefined);
  rt?.log.warn('http.body.too_large', {
    route: URL.canParse(request.url) ? new URL(request.url).pathname : 'unknown',
    limit,
    bytesRead,
    ...(declaredBytes === undefined ? {} : { declaredBytes }),
  });
  throw new PayloadTooLargeError(declaredBytes ?? bytesRead, limit);
}

/** Reads the raw body, refusing it early when Content-Length already exceeds the limit; every refusal logs `http.body.too_large`. */
export async function readBody(request: HttpRequest, limit: number): Promise<Buffer> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) return refuseTooLarge(request, limit, 0, declared);
  const buf = Buffer.from(await request.arrayBuffer());
  if (buf.length > limit) return refuseTooLarge(request, limit, buf.length);
  return buf;
}

/** Converts an answer to the Functions response shape. */
export function toResponse(answer: HttpAnswer): HttpResponseInit {
  return {
    status: answer.status,
    jsonBody: answer.body,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(answer.headers ?? {}) },
  };
}

/** Runs a handler body, mapping thrown errors (auth, size, config) to answers and logging the unexpected ones. */
export async function guarded(context: InvocationContext, fn: () => Promise<HttpAnswer>): Promise<HttpResponseInit> {
  try {
    return toResponse(await fn());
  } catch (err) {
    const answer = answerError(err);
    if (answer.status >= 500) {
      const rt = await getRuntime().catch(() => undefined);
      // Without a runtime its start failed (a bad setting): every request then answers 500, and this
      // line, on a logger of its own, is the only place that says which setting and why.
      (rt?.log ?? createLogger()).error('http.failed', { function: context.functionName, invocationId: context.invocationId, err });
    }
    return toResponse(answer);
  }
}
