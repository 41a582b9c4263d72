/** GET /api/health — anonymous liveness: the runtime starts and the store answers. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getRuntime } from '../shared/runtime';
import { guarded } from './lib/http';

/** Handler: 200 `{status:'ok'}` or 503 when the store does not answer. */
export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return guarded(context, async () => {
    const rt = await getRuntime();
    try {
      await rt.store.getCase('__health__', '__health__');
      return { status: 200, body: { status: 'ok', version: rt.version, tenants: rt.policies.tenants().length } };
    } catch {
      return { status: 503, body: { status: 'store-unavailable' } };
    }
  });
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
