/**
 * POST /api/alerts — SecurityAlert rows, export envelopes or generic alerts from
 * any JSON source. Function key always; HMAC-SHA256 signature when configured.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { releaseSignatureOnFailure, verifyHmac } from '../shared/auth/hmac';
import { answerBatch } from '../shared/http/respond';
import { getRuntime } from '../shared/runtime';
import { guarded, readBody } from './lib/http';

/**
 * Handler: read, verify the signature over the exact bytes, triage each item. A 5xx answer (or a
 * failure) gives the signature back, so the sender may retry the identical request.
 */
export async function alertWebhook(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    const body = await readBody(request, rt.settings.maxBodyBytes);
    const signed = rt.auth.hmac
      ? await verifyHmac({ headers: (n) => request.headers.get(n), rawBody: body }, rt.auth.hmac, rt.auth.replayGuard)
      : undefined;
    return releaseSignatureOnFailure(signed, rt.log, async () =>
      answerBatch(await rt.pipeline.ingestText(body, { kind: 'alerts', source: 'http:/api/alerts' })),
    );
  });
}

app.http('alertWebhook', { methods: ['POST'], route: 'alerts', authLevel: 'function', handler: alertWebhook });
