/**
 * GET|HEAD /api/cases/{id}[?tenantId=…] — the latest TriageResult of a case, with current delivery
 * status. Without `tenantId`, an id held by several tenants is answered 409 naming them (never one
 * tenant's case for another's id).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { canonicalId } from '../shared/model/inputs/securityAlert';
import { caseView } from '../shared/pipeline/view';
import { getRuntime } from '../shared/runtime';
import { guarded } from './lib/http';

/** Handler: 200 with the result, 404 when unknown, 409 when the id is ambiguous across tenants. */
export async function getCase(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    const id = request.params.id ?? '';
    // Tenant ids are stored canonical (GUIDs lower-cased), as every input is read.
    const given = request.query.get('tenantId')?.trim();
    const tenantId = given ? canonicalId(given) : undefined;
    const result = await caseView(rt.store, id, tenantId);
    return result ? { status: 200, body: result } : { status: 404, body: { error: { name: 'NotFound', message: `no case ${id}` } } };
  });
}

// HEAD as well as GET, as every GET route: Azure's Functions host does not derive it from GET (see health.ts).
app.http('getCase', { methods: ['GET', 'HEAD'], route: 'cases/{id}', authLevel: 'function', handler: getCase });
