import { CosmosClient } from '@azure/cosmos';
import { openCosmosStore } from '../../shared/store/cosmos';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';
import { pipelineWithFlakyChannel, uncodedIncident } from '../helpers/incidents';

const TENANT = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const NAME = '11111111-2222-4333-8444-555555555555';
const http = { kind: 'incident' as const, source: 'test' };

const incident = (event: 'Create' | 'Update', lastModifiedTimeUtc: string, severity: string): unknown =>
  uncodedIncident(NAME, event, lastModifiedTimeUtc, severity);

describe('a revision of a case whose sent notifications outlived their retention on Cosmos DB', () => {
  let server: CosmosTestServer;
  beforeAll(async () => {
    server = await startCosmosServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('does not announce again what was sent, when only an abandoned sibling is still listed', async () => {
    // Arrange: r1's first send fails and is abandoned (one attempt per entry), the others are sent
    const database = 'outbox-retention';
    const store = await openCosmosStore({ endpoint: server.endpoint, key: server.key, database, createIfMissing: true });
    let sends = 0;
    const { pipeline, sent } = pipelineWithFlakyChannel(store, () => sends++ === 0);
    await pipeline.ingest(incident('Create', '2026-11-20T01:00:00.000Z', 'Medium'), http);
    const told = sent.length;
    // The sent entries' TTL ran from their `sent` mark, before the abandoned one's: they expire first.
    const client = new CosmosClient({ endpoint: server.endpoint, key: server.key, connectionPolicy: { enableEndpointDiscovery: false } });
    const cases = client.database(database).container('cases');
    const { resources: expired } = await cases.items
      .query<{ id: string }>(
        {
          query: "SELECT c.id FROM c WHERE c.docType = 'outbox' AND c.status = 'sent' AND c.caseId = @caseId",
          parameters: [{ name: '@caseId', value: NAME }],
        },
        { partitionKey: TENANT },
      )
      .fetchAll();
    for (const d of expired) await cases.item(d.id, TENANT).delete();
    client.dispose();
    const listed = await store.listNotifications({ tenantId: TENANT, caseId: NAME });

    // Act: the incident updated at the same severity
    const revised = await pipeline.ingest(incident('Update', '2026-11-20T01:05:00.000Z', 'Medium'), http);
    await store.close();

    // Assert: those told are not told again
    expect(told).toBeGreaterThan(0);
    expect(expired).toHaveLength(told);
    expect(listed.map((n) => n.status)).toEqual(['failed']);
    expect(revised.items[0]?.status).toBe('revised');
    expect(sent).toHaveLength(told);
    expect(revised.items[0]?.result?.steps.find((s) => s.step === 'notify')?.detail).toBe('0 notification(s) queued');
  });
});
