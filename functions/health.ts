/** GET|HEAD /api/health — anonymous liveness: the runtime starts and the store answers (and writes, when it says its writes fail). */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { storeAnswers } from '../shared/http/health';
import { getRuntime } from '../shared/runtime';
import { guarded } from './lib/http';

/**
 * Handler: 200 `{status:'ok', version}`, or 503 when the store does not answer, or says its writes fail for a
 * reason that is not a lost race (a full disk, a read-only or replaced SQLite file) and the probe's own small
 * write does not commit either (see shared/http/health.ts; probed at most every 5 s).
 */
export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    // Anonymous: says whether it works and which build, nothing about the tenants it serves.
    if (await storeAnswers(rt.store)) return { status: 200, body: { status: 'ok', version: rt.version } };
    return { status: 503, body: { status: 'store-unavailable' } };
  });
}

// HEAD too (probes send it): Azure's Functions host does not derive HEAD from GET and would answer it 404,
// where `triage serve` answers it like GET; listed here, both answer it, and the host sends no body to HEAD.
app.http('health', { methods: ['GET', 'HEAD'], route: 'health', authLevel: 'anonymous', handler: health });
