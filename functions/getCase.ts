/** GET /api/cases/{id} — the latest TriageResult of a case, with current delivery status. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { caseView } from '../shared/pipeline/view';
import { getRuntime } from '../shared/runtime';
import { guarded } from './lib/http';

/** Handler: 200 with the result, 404 when unknown. */
export async function getCase(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    const id = request.params.id ?? '';
    const result = await caseView(rt.store, id);
    return result ? { status: 200, body: result } : { status: 404, body: { error: { name: 'NotFound', message: `no case ${id}` } } };
  });
}

app.http('getCase', { methods: ['GET'], route: 'cases/{id}', authLevel: 'function', handler: getCase });
