/**
 * POST /api/incidents — the Sentinel incident trigger body, relayed by the
 * automation rule's playbook. Function key always; Entra ID bearer when configured.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { verifyBearer } from '../shared/auth/entra';
import { answerSingle } from '../shared/http/respond';
import { getRuntime } from '../shared/runtime';
import { guarded, readBody } from './lib/http';

/** Handler: authenticate, read the body, triage it, answer with the TriageResult. */
export async function incidentWebhook(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    if (rt.auth.entra) verifyBearer(request.headers.get('authorization'), rt.auth.entra);
    const body = await readBody(request, rt.settings.maxBodyBytes);
    return answerSingle(await rt.pipeline.ingestText(body, { kind: 'incident', source: 'http:/api/incidents' }));
  });
}

app.http('incidentWebhook', { methods: ['POST'], route: 'incidents', authLevel: 'function', handler: incidentWebhook });
