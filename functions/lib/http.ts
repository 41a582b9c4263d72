/**
 * Thin glue between @azure/functions HTTP types and the trigger-independent
 * answers of shared/http. No business logic here.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { PayloadTooLargeError } from '../../shared/errors';
import { answerError, type HttpAnswer } from '../../shared/http/respond';
import { getRuntime } from '../../shared/runtime';

/** Reads the raw body, refusing it early when Content-Length already exceeds the limit. */
export async function readBody(request: HttpRequest, limit: number): Promise<Buffer> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLargeError(declared, limit);
  const buf = Buffer.from(await request.arrayBuffer());
  if (buf.length > limit) throw new PayloadTooLargeError(buf.length, limit);
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
      rt?.log.error('http.failed', { function: context.functionName, invocationId: context.invocationId, err });
    }
    return toResponse(answer);
  }
}
