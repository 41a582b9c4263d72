import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CosmosClient } from '@azure/cosmos';
import { silentLogger } from '../../shared/log';
import { createRuntime } from '../../shared/runtime';
import { ROOT, SAMPLES } from '../helpers/cli';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';

describe('retention on Cosmos DB', () => {
  let server: CosmosTestServer;
  beforeAll(async () => {
    server = await startCosmosServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("stamps a tenant's case with its policy's retention, and others with COSMOS_RETENTION_DAYS", async () => {
    // Arrange: the runtime as in Azure, with the shipped Contoso policy (retention.days default 365)
    const rt = await createRuntime(
      {
        STORE: 'cosmos',
        COSMOS_ENDPOINT: server.endpoint,
        COSMOS_USE_KEY: 'true',
        COSMOS_KEY: server.key,
        COSMOS_DATABASE: 'retention',
        COSMOS_CREATE_IF_MISSING: 'true',
        COSMOS_RETENTION_DAYS: '30',
        POLICY_DIR: join(ROOT, 'policies'),
        OUTBOX_FILE: '',
      },
      { log: silentLogger },
    );
    const generic = JSON.parse(readFileSync(join(SAMPLES, 'generic-alert.json'), 'utf8')) as Record<string, unknown>;

    // Act: a case of the Contoso workspace, and one of a workspace without a policy
    await rt.pipeline.ingestText(readFileSync(join(SAMPLES, 'incident-create-bruteforce.json')), { kind: 'incident', source: 'test' });
    await rt.pipeline.ingest({ ...generic, tenantId: 'no-policy-tenant' }, { kind: 'alerts', source: 'test' });
    await rt.close();

    // Assert: read the raw documents
    const client = new CosmosClient({ endpoint: server.endpoint, key: server.key, connectionPolicy: { enableEndpointDiscovery: false } });
    const cases = client.database('retention').container('cases');
    const { resource: contoso } = await cases
      .item('case:6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b', '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b')
      .read<{ ttl?: number }>();
    const { resources: other } = await cases.items
      .query<{ ttl?: number }>(
        { query: "SELECT c.ttl FROM c WHERE c.docType = 'case' AND c.tenantId = 'no-policy-tenant'" },
        { partitionKey: 'no-policy-tenant' },
      )
      .fetchAll();
    client.dispose();
    expect(contoso?.ttl).toBe(365 * 86_400);
    expect(other.map((d) => d.ttl)).toEqual([30 * 86_400]);
  });
});
