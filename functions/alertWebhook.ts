/**
 * POST /api/alerts — SecurityAlert rows, export envelopes or generic alerts from
 * any JSON source. Function key always; HMAC-SHA256 signature when configured.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { verifyHmac } from '../shared/auth/hmac';
import { answerBatch } from '../shared/http/respond';
import { getRuntime } from '../shared/runtime';
import { guarded, readBody } from './lib/http';

/** Handler: read, verify the signature over the exact bytes, triage each item. */
export async function alertWebhook(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    const body = await readBody(request, rt.settings.maxBodyBytes);
    if (rt.auth.hmac) await verifyHmac({ headers: (n) => request.headers.get(n), rawBody: body }, rt.auth.hmac, rt.auth.replayGuard);
    return answerBatch(await rt.pipeline.ingestText(body, { kind: 'alerts', source: 'http:/api/alerts' }));
  });
}

app.http('alertWebhook', { methods: ['POST'], route: 'alerts', authLevel: 'function', handler: alertWebhook });
