import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAMPLES, scratch, startServe } from '../helpers/cli';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';

describe('triage serve with STORE=cosmos against a local Cosmos DB stand-in', () => {
  let cosmos: CosmosTestServer;
  let server: Awaited<ReturnType<typeof startServe>>;

  beforeAll(async () => {
    cosmos = await startCosmosServer();
    server = await startServe({
      STORE: 'cosmos',
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_USE_KEY: 'true',
      COSMOS_KEY: cosmos.key,
      COSMOS_DATABASE: 'triage-e2e',
      COSMOS_CREATE_IF_MISSING: 'true',
      OUTBOX_FILE: join(scratch(), 'outbox.jsonl'),
    });
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    await cosmos?.close();
  });

  it('triages the sample incident into Cosmos, serves it back, and dedupes a repeat', async () => {
    const body = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'));

    const first = await fetch(`${server.url}/api/incidents`, { method: 'POST', body });
    const again = await fetch(`${server.url}/api/incidents`, { method: 'POST', body });
    const got = await fetch(`${server.url}/api/cases/6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b`);

    expect(first.status).toBe(200);
    expect(again.headers.get('x-triage-outcome')).toBe('duplicate');
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ severity: 'high', playbook: 'brute-force', revision: 1 });
    expect(server.stderr()).toContain('"store":"cosmos"');
  });

  it('fails fast naming a missing setting', async () => {
    await expect(
      startServe({ STORE: 'cosmos', COSMOS_ENDPOINT: cosmos.endpoint, COSMOS_USE_KEY: 'true', COSMOS_KEY: cosmos.key }),
    ).rejects.toThrow(/COSMOS_DATABASE/);
  });
});
