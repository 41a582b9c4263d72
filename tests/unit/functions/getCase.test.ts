import { HttpRequest, InvocationContext } from '@azure/functions';
import { alertWebhook } from '../../../functions/alertWebhook';
import { getCase } from '../../../functions/getCase';
import { setRuntime } from '../../../shared/runtime';
import { testRuntime } from '../../helpers/runtime';

const ctx = () => new InvocationContext({ functionName: 'test', invocationId: 'inv-1' });
const TENANT_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const TENANT_B = 'bbbbbbbb-0000-4000-8000-000000000002';
/** A generic alert: its case id is `source:id`, so two tenants' firewalls can both send `fw:1`. */
const alert = (tenantId: string, name: string) =>
  new HttpRequest({
    method: 'POST',
    url: 'http://localhost/api/alerts',
    body: { string: JSON.stringify({ source: 'fw', tenantId, id: '1', name, severity: 'high', detectedAt: '2026-11-20T03:00:00Z' }) },
    headers: { 'content-type': 'application/json' },
  });
const get = (id: string, query = '') =>
  new HttpRequest({ method: 'GET', url: `http://localhost/api/cases/${encodeURIComponent(id)}${query}`, params: { id } });

afterEach(() => setRuntime(undefined));

describe('GET /api/cases/{id} with one case id in two tenants', () => {
  it("answers 409 naming both tenants instead of serving one tenant's case for the other's id", async () => {
    await testRuntime();
    await alertWebhook(alert(TENANT_A, 'Tenant A secret alert'), ctx());
    await alertWebhook(alert(TENANT_B, 'Tenant B alert'), ctx());

    const res = await getCase(get('fw:1'), ctx());

    expect(res.status).toBe(409);
    expect(res.jsonBody).toMatchObject({ error: { name: 'AmbiguousCaseError', tenantIds: [TENANT_A, TENANT_B] } });
    expect(JSON.stringify(res.jsonBody)).not.toContain('secret alert');
  });

  it('serves the case of the tenant named by ?tenantId=, whatever the case of its GUID', async () => {
    await testRuntime();
    await alertWebhook(alert(TENANT_A, 'Tenant A secret alert'), ctx());
    await alertWebhook(alert(TENANT_B, 'Tenant B alert'), ctx());

    const b = await getCase(get('fw:1', `?tenantId=${TENANT_B.toUpperCase()}`), ctx());
    const none = await getCase(get('fw:1', '?tenantId=cccccccc-0000-4000-8000-000000000003'), ctx());

    expect(b.status).toBe(200);
    expect(b.jsonBody).toMatchObject({ tenantId: TENANT_B, title: 'Tenant B alert' });
    expect(none.status).toBe(404);
  });
});
