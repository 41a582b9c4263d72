/**
 * A local Cosmos DB stand-in for tests: @vercel/cosmosdb-server, in-process, on a random
 * loopback port. Plain HTTP by default (no certificate to trust; the SDK allows http for
 * loopback emulators), HTTPS with its bundled self-signed certificate on request.
 *
 * Known gaps of the stand-in: no TTL expiry, no change feed, no stored procedures, no
 * GROUP BY / DISTINCT / OFFSET, transactional batches are not atomic (operations before a
 * failing one stay applied; the later ones answer 424), no query plans (a query-plan request
 * is answered like the query itself, which the SDK ignores).
 */
import type { AddressInfo } from 'node:net';
import { createHttpServer, createHttpsServer } from '@vercel/cosmosdb-server';

/** The well-known key of the Cosmos DB emulator; the stand-in accepts any key. */
export const EMULATOR_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVGCgDDuTp/iF9ONgJTOqt/VGSn1g2Ep2N4S3w==';

/** A running stand-in. */
export interface CosmosTestServer {
  /** `http://127.0.0.1:PORT` (or https). */
  readonly endpoint: string;
  readonly key: string;
  readonly port: number;
  /** Stops the server, dropping keep-alive connections. */
  close(): Promise<void>;
}

/** Starts a stand-in on a random loopback port. */
export async function startCosmosServer(options: { https?: boolean } = {}): Promise<CosmosTestServer> {
  // keepAlive: the stand-in otherwise answers `Connection: close`, and a new TCP (+TLS) connection per request is ~5× slower.
  const server = options.https ? createHttpsServer({ keepAlive: true }) : createHttpServer({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `${options.https ? 'https' : 'http'}://127.0.0.1:${port}`,
    key: EMULATOR_KEY,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
