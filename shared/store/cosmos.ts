/**
 * The Azure Store: Cosmos DB for NoSQL (@azure/cosmos 4.x), managed identity by default.
 *
 * Containers (both created with `defaultTtl: -1`: TTL on, items expire only with their own `ttl`)
 *
 * `cases` — partition key `/tenantId`. Everything the hot path touches for one alert lives in the
 *   tenant's logical partition, so one TransactionalBatch (one request, atomic, ≤ 100 operations)
 *   can commit a case revision with its correlation index and its outbox entries:
 *   - `docType: 'case'`      id `case:<caseId>`: the latest revision (case + result); `_etag` is the
 *                            CaseRecord etag. It also lists the ids of its sighting and outbox
 *                            documents, so a re-put knows what to delete without a query (and,
 *                            until a revision written in several batches is finished, `indexTodo`:
 *                            the index rows it still owes, see Limits). When
 *                            `result.firstReport` is one of the outbox payloads of the put, it is
 *                            stored as '' (the key stays in place, so reads keep the key order) and
 *                            `reportPayloadId` names the payload document holding the text.
 *   - `docType: 'sighting'`  id `sighting:<hash(caseId, entityKey, detectedAt)>`: one entity-index
 *                            row; findRelated is ONE single-partition query for all keys
 *                            (`entityKey IN (…) AND detectedAt BETWEEN …  ORDER BY detectedAt DESC`),
 *                            limitPerKey applied client-side while paging (it stops as soon as every
 *                            key is full). One query per key would cost N requests per alert.
 *   - `docType: 'outbox'`    id `outbox:<hash(key)>`: create → 201 'created', 409 'exists'. The text
 *                            is not inline: `payloadId` names its payload document.
 *   - `docType: 'payload'`   id `payload:<hash(text)>`: one outbox text (the first report, ≈ 2–3 KB)
 *                            in `payload`, once per tenant however many recipients and the case
 *                            share it (before, one alert to three recipients wrote it four times:
 *                            case + three outbox documents). Content-addressed, so it never changes:
 *                            written with Upsert (rewriting it only refreshes its TTL) and cached in
 *                            process after a write or read (bounded: 2 000 texts / 4 M characters).
 *                            Documents written before payload documents existed (`payload` and
 *                            `firstReport` inline, no ids) are read as they are.
 *   - `docType: 'lease'`     id `lease:<caseId>`: conditional create; an expired lease is taken over
 *                            by replace with IfMatch; `ttl` = time to expiry + 60 s so leases clean
 *                            themselves up.
 *   Indexing excludes the big `case`/`result`/`payload` subtrees and the never-queried id lists and
 *   payload ids (write RU scales with indexed paths).
 *
 * `parked` — partition key `/id`. The port addresses a parked item by id alone, so the id is the
 *   only partition key that keeps park (create, 409 = already parked) and markParkedReplayed (patch)
 *   point operations. listParked is a cross-partition query; it is an operator tool, not hot.
 *
 * Requests per alert on the hot path (measured against the stand-in with the counting proxy, see
 * tests/contract/cosmos.test.ts): getCase 1 point read; findRelated 1 single-partition query (the
 * JS SDK also asks the gateway for a query plan once per query iterator: one extra request, sent
 * concurrently with the query; there is no public switch to skip it); putCase 1 batch (case +
 * payload + sightings + outbox entries, whatever their number up to 100 operations); acquireLease 1
 * point create and releaseLease 1 point delete when used. A revision of a case read through this
 * store needs no extra read (the case's sighting/outbox ids are cached by etag from getCase). A
 * getCase of a case whose report is a payload document costs one more point read unless this
 * process wrote or read that payload already; listNotifications one point read per distinct payload
 * not cached (at most 8 in flight); enqueueNotification two point writes (payload upsert, then the
 * outbox create). No cross-partition query on the hot path: only findCase, listParked and
 * listNotifications without a tenant fan out.
 *
 * Bytes per alert (request bodies of writes, `BENCH_PARTS=stream`: one new alert, six index rows,
 * its ≈ 2.1 KB report to three recipients): 18 488 with the text inline, 12 468 with payload
 * documents, 11 511 with the stored case form of caseDoc.ts. The rest is mostly the case document
 * itself, then the index rows and the outbox entries.
 *
 * Concurrency: every update is conditional on the etag read before (IfMatch); 412 / 409 on the
 * case document become ConcurrencyConflictError and nothing of the batch is written. markNotification
 * and markParkedReplayed are single PATCH operations (server-side, atomic: no read-modify-write loop).
 *
 * Format version: every document this store writes carries `fv` (FORMAT_VERSION, now 1): Cosmos has
 * no schema to version, so each document says which shape it has, as SQLite's `user_version` does for
 * a file. A build that changes a shape an older one would misread (as the stored case form and the
 * payload documents did) bumps it. Every read that interprets a document (point reads, findCase,
 * findRelated's rows, listNotifications, listParked) refuses one newer than this build with
 * ConfigError (setting COSMOS_DATABASE: the data is newer than the build, as a SQLite file newer
 * than the build is refused at open) and logs `store.cosmos.format.newer` with the id and version,
 * rather than answering a wrong verdict, "not found" or "nothing related". ConfigError, not
 * StoreUnavailableError: retrying cannot help until this build is replaced, so the pipeline parks
 * the alert at once (replayable after the upgrade) and GET /api/cases answers 500, not "retry later".
 * A document without `fv` (written before it existed) is version 1; an `fv` that is no version at
 * all ("1", null, 1.5, 0: no build writes it) is refused too, with a message saying so. Queries check
 * every row they return (findRelated projects `fv` for it, not `id`: its log line names the row's
 * case instead); pages findRelated does not fetch (every key already full) cannot change its answer,
 * but rows a query's WHERE no longer matches (a newer shape) stay unseen. Writes never change a newer
 * document: a replace or delete follows a read that refused it (or is IfMatch an etag read from one
 * that did not), a create of an existing id fails, and the two patches (markNotification,
 * markParkedReplayed), which read nothing first, carry a filter predicate on `fv` (KNOWN_FORMAT, no
 * extra request) and refuse as the reads do. Upserts (payload and index rows) are not guarded: a
 * payload id is the hash of its text, so rewriting it in this build's form loses nothing a newer
 * build cannot read, and index rows are upserted only in a batch whose case operation (a create, or
 * a replace IfMatch) fails, and with it the batch, if the case is not the one this build read.
 * `"fv":1,` is 7 bytes more per document written, and not indexed.
 *
 * Retention: `defaultTtlSeconds` (or `ttlSecondsForTenant`, e.g. from the tenant policy's
 * `retention.days`) sets `ttl` on cases, sightings, outbox, payload and parked items; the port
 * carries no per-call TTL. Without either, items are kept until deleted. A case points only at a
 * payload written in the same batch, so both expire together (a read that finishes a case's index
 * rows later writes the case with the TTL it had left, see Limits). An outbox document restarts its TTL
 * when markNotification patches it, so it can outlive its payload by the time between enqueue and
 * its last mark: such a read gives `payload: ''` and logs `store.payload.missing`, and the dispatcher
 * marks that entry failed instead of sending an empty message (notify/outbox.ts). Payload documents
 * are never deleted by the store: one nothing points at (the outbox key already existed) stays until
 * its TTL, or for good without one.
 *
 * Throttling and faults: the SDK's own throttle retries are switched off (maxRetryAttemptCount 0) so
 * there is one retry policy: `withRetry` with exponential backoff and jitter, honouring
 * `x-ms-retry-after-ms`, for 408/429/449/5xx and connection errors; after the last attempt
 * StoreUnavailableError (with the SDK error as cause). Two SDK behaviours remain: reads and queries
 * are retried by the SDK itself on a connection reset (up to 10 × 1 s, not configurable), and a
 * failed batch request reaches us as a plain Error without its status (so a throttled batch is
 * retried with our backoff, not the service's retry-after).
 *
 * Auth: managed identity (data-plane RBAC: Cosmos DB Built-in Data Contributor). Data-plane RBAC
 * cannot create databases or containers, so `createIfMissing` is for key auth (emulator, stand-in);
 * in Azure the containers come from Bicep with the partition keys, TTL and indexing above.
 *
 * Limits: one tenant's partition holds at most 20 GB (cases × retention); TransactionalBatch holds at
 * most 100 operations and 2 MB. The first batch of a revision carries the case and the etag check,
 * its payloads (the report first) and its outbox entries, so a notification without its case or a
 * case without its notifications never exists (a case whose outbox would not fit is refused before
 * anything is written); index operations (deletes of the previous revision's rows, then this
 * revision's rows) fill the rest.
 *
 * A revision with more index operations than that batch holds (≈ 99) owes the rest: the case
 * document the first batch commits lists them in `indexTodo` (ids to delete, rows to write). Each
 * later batch also replaces the case document, IfMatch the etag the batch before returned, with the
 * to-do shrunk by what this batch does; the last drops it. Every batch is atomic on Azure, so at any
 * moment the case document names every index row that may disagree with it. A batch that fails
 * fails the put with StoreUnavailableError (the delivery is redelivered; the revision and its outbox
 * are committed already): the redelivery's getCase finishes the to-do before it answers (then it
 * finds a duplicate with its entries queued, and delivers them; a getCase whose repair fails still
 * answers, trying each batch once, and leaves the to-do to the next read), and a newer revision
 * written on top deletes the rows still owed with its own stale ones. Until one of those, findRelated
 * can still find the case under a key it no longer has, or miss it under a new one: a case nothing
 * reads or writes again keeps them until its TTL. A later batch meeting a
 * changed case document (412: another reader finished it, a newer revision took it over, or a retried
 * batch whose answer was lost had committed) stops, and the put reads the document back as getCase
 * does, finishing what is still owed with the put's own retries; rows of its revision still owed
 * after that fail the put with StoreUnavailableError, as a failed batch does (answered success,
 * nothing would come back for them). A read that finishes the to-do replaces the case document,
 * which restarts its TTL: it writes the TTL left (`ttl` less the time since `_ts`), and gives the
 * rows it writes the same, so the case expires with the documents of its revision as before.
 * Rejected designs: writing the case document last, after the index batches, leaves those batches
 * without the etag check (a writer losing the race would leave its rows, or delete the winner's, for
 * good) and records nowhere what a failed attempt wrote, so only an identical redo would remove it
 * (one that never comes, or comes with other keys because a newer revision arrived first, leaves it
 * for good); its deletes would also hide the stored revision under keys it still has. Index rows
 * stamped with the revision that wrote them would need each related case's revision in findRelated:
 * one more read per case found.
 * Cost: a revision that fits one batch (the common case) is written exactly as before: one batch,
 * same bytes. A larger one takes 99 index operations per later batch plus the case document again
 * (its bytes and the shrinking to-do, ≈ 120 B per owed row); a getCase finding a to-do pays its batches.
 */
import { createHash } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import {
  type Container,
  CosmosClient,
  type CosmosClientOptions,
  type IndexingPolicy,
  type Item,
  type JSONObject,
  type OperationInput,
  type PatchOperation,
  type SqlParameter,
} from '@azure/cosmos';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { AmbiguousCaseError, ConcurrencyConflictError, ConfigError, StoreUnavailableError } from '../errors';
import { type Logger, silentLogger } from '../log';
import type { KillChainPhase, Severity } from '../model/domain';
import { canonicalInstant } from '../model/instant';
import { BoundedMap } from './boundedMap';
import { compactCaseDocument, expandCaseDocument, type StoredCaseDocument } from './caseDoc';
import type {
  CaseRecord,
  CaseState,
  EntitySighting,
  Lease,
  NotificationRecord,
  ParkedItem,
  RelatedQuery,
  RelatedResult,
  Store,
} from './port';
import { listLimit } from './port';
import { type RetryPolicy, withRetry } from './retry';

/** Settings read from the environment (see cosmosSettingsFromEnv). */
export interface CosmosSettings {
  readonly endpoint: string;
  readonly database: string;
  /** Account key: only for the local emulator / stand-in (COSMOS_USE_KEY=true). Otherwise managed identity. */
  readonly key?: string;
  /** Accept a self-signed TLS certificate (the local stand-in); never for Azure. */
  readonly allowSelfSigned: boolean;
  readonly createIfMissing: boolean;
  readonly defaultTtlSeconds?: number;
}

const TRUE = /^(1|true|yes|on)$/i;

/**
 * Reads Cosmos settings, failing fast with ConfigError naming the first missing or invalid one:
 * COSMOS_ENDPOINT (https URL; http only together with COSMOS_USE_KEY), COSMOS_DATABASE,
 * COSMOS_KEY (required only when COSMOS_USE_KEY=true, i.e. the local emulator / stand-in),
 * COSMOS_ALLOW_SELF_SIGNED (default false), COSMOS_CREATE_IF_MISSING (default false),
 * COSMOS_RETENTION_DAYS (optional, 1–730: item TTL).
 */
export function cosmosSettingsFromEnv(env: NodeJS.ProcessEnv): CosmosSettings {
  const endpoint = env.COSMOS_ENDPOINT?.trim();
  if (!endpoint) throw new ConfigError('COSMOS_ENDPOINT', 'is required when STORE=cosmos');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (err) {
    throw new ConfigError('COSMOS_ENDPOINT', 'is not a URL', { cause: err });
  }
  const useKey = TRUE.test(env.COSMOS_USE_KEY ?? '');
  if (url.protocol !== 'https:' && !(useKey && url.protocol === 'http:')) {
    throw new ConfigError(
      'COSMOS_ENDPOINT',
      'must be an https URL (http is accepted only for the local emulator with COSMOS_USE_KEY=true)',
    );
  }
  const database = env.COSMOS_DATABASE?.trim();
  if (!database) throw new ConfigError('COSMOS_DATABASE', 'is required when STORE=cosmos');
  const key = env.COSMOS_KEY?.trim();
  if (useKey && !key) throw new ConfigError('COSMOS_KEY', 'is required when COSMOS_USE_KEY=true');
  let defaultTtlSeconds: number | undefined;
  const days = env.COSMOS_RETENTION_DAYS?.trim();
  if (days) {
    const n = Number(days);
    if (!Number.isInteger(n) || n < 1 || n > 730)
      throw new ConfigError('COSMOS_RETENTION_DAYS', 'must be a whole number of days between 1 and 730');
    defaultTtlSeconds = n * 86_400;
  }
  return {
    endpoint,
    database,
    ...(useKey && key ? { key } : {}),
    allowSelfSigned: TRUE.test(env.COSMOS_ALLOW_SELF_SIGNED ?? ''),
    createIfMissing: TRUE.test(env.COSMOS_CREATE_IF_MISSING ?? ''),
    ...(defaultTtlSeconds !== undefined ? { defaultTtlSeconds } : {}),
  };
}

/** Options of openCosmosStore. */
export interface CosmosStoreOptions {
  readonly endpoint: string;
  /** Account key (local emulator / stand-in only). Without it, `credential` or DefaultAzureCredential (managed identity). */
  readonly key?: string;
  readonly credential?: TokenCredential;
  readonly database: string;
  readonly log?: Logger;
  /** Create the database and containers when missing (local runs, tests). Otherwise they must exist (Bicep creates them). */
  readonly createIfMissing?: boolean;
  /** Per-request timeout (default 10 000 ms). */
  readonly requestTimeoutMs?: number;
  /** A ready client (tests, custom pipelines). Then endpoint/key/credential are not used; give it retryOptions.maxRetryAttemptCount 0. */
  readonly client?: CosmosClient;
  /** Accept the local stand-in's self-signed certificate (https endpoints only). */
  readonly allowSelfSigned?: boolean;
  /** TTL in seconds for cases, sightings, outbox entries and parked items (retention). */
  readonly defaultTtlSeconds?: number;
  /** Per-tenant TTL (e.g. from the tenant policy's retention.days); falls back to defaultTtlSeconds. */
  readonly ttlSecondsForTenant?: (tenantId: string) => number | undefined;
  /** Retry tuning (defaults: 6 attempts, 100 ms base, 5 s max per wait). */
  readonly retry?: Partial<Pick<RetryPolicy, 'attempts' | 'baseMs' | 'maxMs' | 'sleep' | 'random'>>;
  /** Container names (defaults `cases`, `parked`). */
  readonly containers?: { readonly cases?: string; readonly parked?: string };
  /** Clock (ms since the epoch) for the TTL a case keeps when a read finishes its index rows (tests); default Date.now. */
  readonly now?: () => number;
}

const CASES_INDEXING: IndexingPolicy = {
  indexingMode: 'consistent',
  automatic: true,
  includedPaths: [{ path: '/*' }],
  excludedPaths: [
    { path: '/case/*' },
    { path: '/result/*' },
    { path: '/payload/?' },
    { path: '/payloadId/?' },
    { path: '/reportPayloadId/?' },
    { path: '/sightingIds/*' },
    { path: '/outboxIds/*' },
    { path: '/indexTodo/*' },
    { path: '/fv/?' },
    { path: '/"_etag"/?' },
  ],
};

const PARKED_INDEXING: IndexingPolicy = {
  indexingMode: 'consistent',
  automatic: true,
  includedPaths: [{ path: '/*' }],
  excludedPaths: [{ path: '/body/?' }, { path: '/issues/*' }, { path: '/reason/?' }, { path: '/fv/?' }, { path: '/"_etag"/?' }],
};

/**
 * Opens the Cosmos store: builds the client (unless given), then creates or checks the database
 * and containers. Throws ConfigError when they are missing and `createIfMissing` is off, and
 * StoreUnavailableError when the account cannot be reached.
 */
export async function openCosmosStore(options: CosmosStoreOptions): Promise<CosmosStore> {
  const log = options.log ?? silentLogger;
  const client = options.client ?? new CosmosClient(clientOptions(options));
  const names = { cases: options.containers?.cases ?? 'cases', parked: options.containers?.parked ?? 'parked' };
  const policy = retryPolicy('open', options.retry, log);
  try {
    if (options.createIfMissing) {
      const { database } = await withRetry(() => client.databases.createIfNotExists({ id: options.database }), policy);
      await withRetry(
        () =>
          database.containers.createIfNotExists({
            id: names.cases,
            partitionKey: { paths: ['/tenantId'] },
            defaultTtl: -1,
            indexingPolicy: CASES_INDEXING,
          }),
        policy,
      );
      await withRetry(
        () =>
          database.containers.createIfNotExists({
            id: names.parked,
            partitionKey: { paths: ['/id'] },
            defaultTtl: -1,
            indexingPolicy: PARKED_INDEXING,
          }),
        policy,
      );
    } else {
      for (const name of [names.cases, names.parked]) {
        const read = await withRetry(() => client.database(options.database).container(name).read(), policy).catch((err: unknown) => {
          if (statusOf(err) === 404) {
            throw new ConfigError(
              'COSMOS_DATABASE',
              `container ${options.database}/${name} does not exist (deploy infra or set COSMOS_CREATE_IF_MISSING)`,
              {
                cause: err,
              },
            );
          }
          throw err;
        });
        if (!read.resource) throw new ConfigError('COSMOS_DATABASE', `container ${options.database}/${name} does not exist`);
      }
    }
  } catch (err) {
    if (!options.client) client.dispose();
    throw err;
  }
  const db = client.database(options.database);
  log.info('store.cosmos.opened', { database: options.database, containers: names });
  return new CosmosStore(client, db.container(names.cases), db.container(names.parked), options, log, !options.client);
}

function clientOptions(options: CosmosStoreOptions): CosmosClientOptions {
  const https = options.endpoint.startsWith('https:');
  return {
    endpoint: options.endpoint,
    ...(options.key ? { key: options.key } : { aadCredentials: options.credential ?? new DefaultAzureCredential() }),
    connectionPolicy: {
      // A key means the local emulator / stand-in, whose account metadata names an endpoint that is not ours to follow.
      enableEndpointDiscovery: !options.key,
      requestTimeout: options.requestTimeoutMs ?? 10_000,
      // One retry policy, ours (withRetry): the SDK's throttle retries would multiply with it.
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 0 },
    },
    // Without an agent the SDK uses its own keep-alive agents (http allowed for the emulator).
    ...(https && options.allowSelfSigned ? { agent: new HttpsAgent({ keepAlive: true, rejectUnauthorized: false }) } : {}),
  };
}

const RETRYABLE_STATUS = new Set([408, 429, 449, 500, 502, 503, 504]);
const RETRYABLE_NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'REQUEST_SEND_ERROR',
  'TimeoutError',
]);

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Whether a Cosmos SDK error is transient: 408/429/449/5xx, connection failures, timeouts. */
export function isTransientCosmosError(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return RETRYABLE_STATUS.has(code);
  if (typeof code === 'string') return RETRYABLE_NETWORK.has(code);
  return false;
}

/** The delay the service asked for: `retryAfterInMs` (x-ms-retry-after-ms) or a `Retry-After` header in seconds. */
export function cosmosRetryAfterMs(err: unknown): number | undefined {
  const e = err as { retryAfterInMs?: unknown; headers?: Record<string, unknown> } | null;
  if (typeof e?.retryAfterInMs === 'number' && Number.isFinite(e.retryAfterInMs)) return e.retryAfterInMs;
  const ms = Number(e?.headers?.['x-ms-retry-after-ms']);
  if (e?.headers?.['x-ms-retry-after-ms'] !== undefined && Number.isFinite(ms)) return ms;
  const s = Number(e?.headers?.['retry-after']);
  if (e?.headers?.['retry-after'] !== undefined && Number.isFinite(s)) return s * 1000;
  return undefined;
}

/** The pipeline step an operation serves, for its retry lines (house rule: tenantId, caseId and step on every case event). */
const STEP_OF_OP: Readonly<Record<string, string>> = {
  getCase: 'dedupe',
  findRelated: 'correlate',
  putCase: 'persist',
  enqueueNotification: 'notify',
  markNotification: 'notify',
  listNotifications: 'notify',
};

/** The case an operation is for, when it is for one (retry lines carry it). */
interface OpScope {
  readonly tenantId?: string;
  readonly caseId?: string;
}

function retryPolicy(op: string, tuning: CosmosStoreOptions['retry'], log: Logger, scope: OpScope = {}): RetryPolicy {
  return {
    attempts: tuning?.attempts ?? 6,
    baseMs: tuning?.baseMs ?? 100,
    maxMs: tuning?.maxMs ?? 5_000,
    ...(tuning?.sleep ? { sleep: tuning.sleep } : {}),
    ...(tuning?.random ? { random: tuning.random } : {}),
    isRetryable: isTransientCosmosError,
    retryAfterMs: cosmosRetryAfterMs,
    exhausted: (err, attempts) =>
      err instanceof StoreUnavailableError
        ? err
        : new StoreUnavailableError(`cosmos ${op} failed after ${attempts} attempt(s)`, { cause: err }),
    onRetry: ({ attempt, delayMs, error }) =>
      log.warn('store.cosmos.retry', {
        ...scope,
        ...(Object.hasOwn(STEP_OF_OP, op) ? { step: STEP_OF_OP[op] } : {}),
        op,
        attempt,
        delayMs,
        status: statusOf(error),
      }),
  };
}

const SAFE_ID = /^[A-Za-z0-9._:@=-]{1,200}$/;

function hashId(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\u0000');
  return h.digest('base64url').slice(0, 32);
}

/** Cosmos ids may not contain / \ ? #: readable ids when safe, a hash otherwise. */
function idPart(s: string): string {
  return SAFE_ID.test(s) ? s : `~${hashId(s)}`;
}

const caseDocId = (caseId: string) => `case:${idPart(caseId)}`;
const leaseDocId = (caseId: string) => `lease:${idPart(caseId)}`;
const sightingDocId = (caseId: string, entityKey: string, at: string) => `sighting:${hashId(caseId, entityKey, at)}`;
const outboxDocId = (key: string) => `outbox:${hashId(key)}`;
/** Content-addressed: the same text always gets the same id, so a payload document never changes once written. */
const payloadDocId = (text: string) => `payload:${hashId(text)}`;

/**
 * Format version of the documents this build writes (their `fv`, see the header). Bump it with any
 * change of a document's shape that the build before would misread: that build then refuses the
 * document instead. A document without `fv` was written before the field existed: version 1.
 */
const FORMAT_VERSION = 1;
/** Spread into every document written: `fv` is short because it is on every document (7 bytes). */
const FV = { fv: FORMAT_VERSION } as const;

/**
 * Refuses a document whose format this build does not know: logs its id and version (nothing of its
 * content), then throws ConfigError, so the caller fails rather than reading it as something else.
 * Absent `fv` is version 1. Two cases, told apart in the message because the operator's remedy
 * differs: an integer above FORMAT_VERSION (a newer build wrote it: upgrade this one), and anything
 * else (`"1"`, null, 1.5, 0: no build writes that, so the document was changed outside this store and
 * upgrading would not help). Both are still refused: reading such a document as version 1 would guess.
 */
function refuseNewer(doc: { readonly id?: unknown; readonly fv?: unknown } | undefined, log: Logger, scope: OpScope = {}): void {
  if (doc === undefined) return;
  const fv = doc.fv === undefined ? 1 : doc.fv;
  if (typeof fv === 'number' && Number.isInteger(fv) && fv >= 1 && fv <= FORMAT_VERSION) return;
  const docId = typeof doc.id === 'string' ? doc.id : '?';
  const newer = typeof fv === 'number' && Number.isInteger(fv) && fv > FORMAT_VERSION;
  // As JSON, so the string "1" does not read as the number 1 in the log or the message.
  const version = typeof fv === 'number' ? fv : (JSON.stringify(fv) ?? String(fv)).slice(0, 40);
  log.error('store.cosmos.format.newer', { ...scope, docId, formatVersion: version, supported: FORMAT_VERSION });
  throw new ConfigError(
    'COSMOS_DATABASE',
    newer
      ? `document ${docId} has format version ${version}, this build reads up to ${FORMAT_VERSION}: a newer build wrote it (upgrade this one, or restore the data from before that build)`
      : `document ${docId} has fv ${version}, which is not a format version (an integer from 1; this build reads up to ${FORMAT_VERSION}): no build writes that, so it was changed outside this store (restore the document from a backup)`,
  );
}

/**
 * The filter predicate of every patch: it applies only to a document of a format this build knows,
 * the same set refuseNewer accepts (no `fv`, or an integer 1..FORMAT_VERSION; `IN` compares without
 * type conversion, so "1" or null do not match). A patch does not read the document first, so without
 * it a newer build's document would be changed by a build that does not know its shape. The server
 * evaluates it with the patch: no extra request; a document it does not match answers 412, unchanged.
 */
const KNOWN_FORMAT = `FROM c WHERE NOT IS_DEFINED(c.fv) OR c.fv IN (${Array.from({ length: FORMAT_VERSION }, (_, i) => i + 1).join(', ')})`;

interface CaseDoc {
  id: string;
  docType: 'case';
  tenantId: string;
  caseId: string;
  revision: number;
  revisionKey: string;
  fingerprint: string;
  state: string;
  detectedAt: string;
  /** Stored form of caseDoc.ts (repeated entity lists as markers; documents written before are whole). */
  case: StoredCaseDocument['case'];
  result: StoredCaseDocument['result'];
  /** Set when `result.firstReport` is stored as '' and its text lives in this payload document. */
  reportPayloadId?: string;
  sightingIds: string[];
  outboxIds: string[];
  /** Index work of a revision written in several batches not done yet (see the header, Limits). */
  indexTodo?: IndexTodo;
  /** Format version (FORMAT_VERSION); absent on documents written before it existed. */
  fv?: number;
  ttl?: number;
  _etag?: string;
  /** Seconds since the epoch of the last write (server clock): `ttl` counts from it. */
  _ts?: number;
}

interface PayloadDoc {
  id: string;
  docType: 'payload';
  tenantId: string;
  payload: string;
  fv?: number;
  ttl?: number;
}

interface SightingDoc {
  entityKey: string;
  caseId: string;
  detectedAt: string;
  phases: KillChainPhase[];
  playbook: string;
  severity: Severity;
}

/** An index row as findRelated's query returns it: with its format version, to refuse a newer one. */
type SightingHit = SightingDoc & { readonly fv?: unknown };

/** An index row as a case document's to-do keeps it: its id and the rest follow from the case. */
type SightingRow = Omit<SightingDoc, 'caseId'>;

/** The index rows a case document still owes: rows to delete (by id), then rows to write. */
interface IndexTodo {
  readonly delete: readonly string[];
  readonly upsert: readonly SightingRow[];
}

/** One index operation of a put: delete a stale row or write one of the revision's rows. */
type IndexOp = { readonly kind: 'delete'; readonly id: string } | { readonly kind: 'upsert'; readonly row: SightingRow };

interface LeaseDoc {
  id: string;
  tenantId: string;
  caseId: string;
  owner: string;
  expiresAt: string;
  fv?: number;
  _etag?: string;
}

/** What a put needs to know about the stored revision it replaces. */
interface Known {
  readonly etag: string;
  readonly sightingIds: readonly string[];
  readonly outboxIds: readonly string[];
}

/** One batch operation; `make` builds a fresh input each time (the SDK mutates inputs it sends). */
interface BatchOp {
  readonly role: 'case' | 'payload' | 'sighting' | 'unsighting' | 'outbox';
  readonly make: () => OperationInput;
}

const KNOWN_MAX = 10_000;
/** Times a getCase re-reads a case document whose to-do someone else changed under it before answering as read. */
const SETTLE_ROUNDS = 3;
/** Attempts per batch of a to-do finished by a read (see readSettled). */
const REPAIR_ATTEMPTS = 1;
const LEASE_TTL_GRACE_S = 60;
const BATCH_MAX = 100;
const PARKED_DEFAULT_LIMIT = 1000;
/** Resolved payload texts kept in process: ≈ 2.8 KB reports, so at most a few MB. */
const PAYLOAD_CACHE_ENTRIES = 2_000;
const PAYLOAD_CACHE_CHARS = 4_000_000;
/** Payload point reads in flight at once when a listing needs several (a burst would only be throttled). */
const PAYLOAD_READS_IN_FLIGHT = 8;

const NOTIFICATION_FIELDS = [
  'key',
  'tenantId',
  'caseId',
  'revision',
  'kind',
  'channel',
  'recipient',
  'payload',
  'createdAt',
  'status',
  'sentAt',
  'attempts',
  'lastError',
] as const;
const PARKED_FIELDS = ['tenantId', 'source', 'reason', 'errorName', 'issues', 'body', 'parkedAt', 'replayedAt'] as const;

function pick<T>(doc: Record<string, unknown>, fields: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (doc[f] !== undefined && doc[f] !== null) out[f] = doc[f];
  return out as T;
}

const asJson = (doc: object): JSONObject => doc as unknown as JSONObject;

const payloadKey = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

/**
 * Payload texts by (tenant, payload id), least recently used evicted first, bounded by entries
 * and by characters. A payload id is a hash of its text, so an entry can never be stale.
 */
class PayloadCache {
  private readonly texts = new Map<string, string>();
  private chars = 0;

  get(key: string): string | undefined {
    const text = this.texts.get(key);
    if (text !== undefined) {
      this.texts.delete(key);
      this.texts.set(key, text);
    }
    return text;
  }

  set(key: string, text: string): void {
    const old = this.texts.get(key);
    if (old !== undefined) {
      this.texts.delete(key);
      this.chars -= old.length;
    }
    if (text.length > PAYLOAD_CACHE_CHARS) return;
    this.texts.set(key, text);
    this.chars += text.length;
    while (this.texts.size > PAYLOAD_CACHE_ENTRIES || this.chars > PAYLOAD_CACHE_CHARS) {
      const oldest = this.texts.entries().next().value;
      if (oldest === undefined) break;
      this.texts.delete(oldest[0]);
      this.chars -= oldest[1].length;
    }
  }
}

/** The payload document holding `text` for a tenant (its id is the hash of the text). */
function payloadDoc(tenantId: string, text: string, ttlField: { ttl?: number }): PayloadDoc {
  return { id: payloadDocId(text), docType: 'payload', tenantId, payload: text, ...FV, ...ttlField };
}

/** The outbox document of `n`: the payload text is replaced by the id of its payload document. */
function outboxDoc(n: NotificationRecord, payloadId: string, ttlField: { ttl?: number }): JSONObject {
  const { payload: _inline, ...rest } = n;
  return asJson({ id: outboxDocId(n.key), docType: 'outbox', ...rest, payloadId, ...FV, ...ttlField });
}

/** The index row document of a case (same id for the same case, key and instant, so a rewrite replaces it). */
function sightingDoc(tenantId: string, caseId: string, row: SightingRow, ttlField: { ttl?: number }): JSONObject {
  return asJson({
    id: sightingDocId(caseId, row.entityKey, row.detectedAt),
    docType: 'sighting',
    tenantId,
    caseId,
    entityKey: row.entityKey,
    detectedAt: row.detectedAt,
    phases: row.phases,
    playbook: row.playbook,
    severity: row.severity,
    ...FV,
    ...ttlField,
  });
}

/** The batch operation doing `op`. A delete of a row already gone answers 404, which commit() accepts. */
function indexBatchOp(tenantId: string, caseId: string, op: IndexOp, ttlField: { ttl?: number }): BatchOp {
  switch (op.kind) {
    case 'delete':
      return { role: 'unsighting', make: () => ({ operationType: 'Delete', partitionKey: tenantId, id: op.id }) };
    case 'upsert': {
      const doc = sightingDoc(tenantId, caseId, op.row, ttlField);
      return { role: 'sighting', make: () => ({ operationType: 'Upsert', partitionKey: tenantId, resourceBody: doc }) };
    }
    default: {
      const never: never = op;
      return never;
    }
  }
}

/** `ops` as a case document stores them (deletes and writes keep their order: deletes come first). */
function todoOf(ops: readonly IndexOp[]): IndexTodo {
  const todo = { delete: [] as string[], upsert: [] as SightingRow[] };
  for (const op of ops) {
    if (op.kind === 'delete') todo.delete.push(op.id);
    else todo.upsert.push(op.row);
  }
  return todo;
}

/** The operations a stored to-do stands for, deletes first. */
function opsOf(todo: IndexTodo): IndexOp[] {
  return [
    ...(todo.delete ?? []).map((id): IndexOp => ({ kind: 'delete', id })),
    ...(todo.upsert ?? []).map((row): IndexOp => ({ kind: 'upsert', row })),
  ];
}

/** Every index row a stored revision may have: its own, and those it still owes a delete. */
function indexRowIds(doc: CaseDoc): string[] {
  return [...(doc.sightingIds ?? []), ...(doc.indexTodo?.delete ?? [])];
}

/**
 * A case document as read, without its system properties and its to-do: the body a replace writes back.
 * A copy is in the shape it was read in, so it keeps that format version (one written without `fv` is 1).
 */
function caseBody(doc: CaseDoc): CaseDoc {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!k.startsWith('_') && k !== 'indexTodo') body[k] = v;
  body.fv = doc.fv ?? 1;
  return body as unknown as CaseDoc;
}

/** The Cosmos DB Store. Create it with openCosmosStore. */
export class CosmosStore implements Store {
  /** etag-keyed knowledge of stored cases (from getCase / putCase), so a revision write needs no extra read. */
  private readonly known = new BoundedMap<string, Known>(KNOWN_MAX);
  /**
   * etags of leases this process holds, so release is one conditional delete. Bounded: the replay
   * guard takes a lease per signed request and releases only failed ones, so unbounded this grew
   * with every request; a forgotten etag only costs release a read.
   */
  private readonly leaseEtags = new BoundedMap<string, string>(KNOWN_MAX);
  /** Payload texts written or read by this process (immutable, so never stale). */
  private readonly payloads = new PayloadCache();

  /** Use openCosmosStore. */
  constructor(
    private readonly client: CosmosClient,
    private readonly cases: Container,
    private readonly parked: Container,
    private readonly options: CosmosStoreOptions,
    private readonly log: Logger,
    private readonly ownsClient: boolean,
  ) {}

  /** `fn` under the retry policy; `attempts` overrides the configured number (a repair on a read tries once). */
  private call<T>(op: string, fn: () => Promise<T>, attempts?: number, scope?: OpScope): Promise<T> {
    const tuning = attempts === undefined ? this.options.retry : { ...this.options.retry, attempts };
    return withRetry(fn, retryPolicy(op, tuning, this.log, scope));
  }

  private ttlFor(tenantId: string): number | undefined {
    return this.options.ttlSecondsForTenant?.(tenantId) ?? this.options.defaultTtlSeconds;
  }

  private remember(tenantId: string, caseId: string, known: Known): void {
    this.known.set(`${tenantId}\u0000${caseId}`, known);
  }

  /**
   * One point read. A case document that still owes index rows (a write in several batches that
   * failed part-way, see the header) is finished first: this is the read a redelivery dedupes with,
   * and it answers a duplicate, so nothing else would finish it.
   */
  async getCase(tenantId: string, caseId: string): Promise<CaseRecord | undefined> {
    const doc = await this.readSettled(tenantId, caseId, REPAIR_ATTEMPTS);
    return doc ? this.toRecord(doc) : undefined;
  }

  /**
   * Reads a case document and does the index work it still owes, if any. Another writer changing
   * it meanwhile (412: a newer revision took the work over, or another reader did it) means a
   * re-read; after SETTLE_ROUNDS of that it answers the document as read, to-do and all (its etag
   * is current, and a put on it takes the to-do over). The repair tries each batch once, without
   * backoff: a read must not wait seconds on a troubled store for work that is not its own, and
   * one that cannot be done now stays recorded on the document for the next read or write (the
   * read then answers the document as it is after the attempt, logging `store.index.unfinished`).
   * `repairAttempts` is that one attempt for a read; a writer settling its own revision passes
   * none and gets the configured retries, as its other batches do.
   */
  private async readSettled(tenantId: string, caseId: string, repairAttempts?: number): Promise<CaseDoc | undefined> {
    let doc = await this.readCaseDoc(tenantId, caseId);
    for (let round = 0; doc?.indexTodo !== undefined && round < SETTLE_ROUNDS; round++) {
      // A replace restarts the TTL: the case keeps the expiry its revision was written with (so it
      // cannot outlive the payload and outbox documents of that write), and the rows it writes get the same.
      const ttl = this.ttlLeft(doc);
      const body = ttl === undefined ? caseBody(doc) : { ...caseBody(doc), ttl };
      const ops = opsOf(doc.indexTodo);
      try {
        const etag = await this.finishIndex(body, doc._etag ?? '', ops, repairAttempts, ttl);
        this.log.info('store.index.finished', { tenantId, caseId, rows: ops.length });
        return { ...body, _etag: etag };
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          this.log.warn('store.index.unfinished', { tenantId, caseId, owed: ops.length, err });
          // Read again: a batch of the attempt may have committed, and the caller needs the current etag.
          return await this.readCaseDoc(tenantId, caseId);
        }
        if (!(err instanceof ConcurrencyConflictError)) throw err;
      }
      doc = await this.readCaseDoc(tenantId, caseId);
    }
    return doc;
  }

  /**
   * The `ttl` that keeps a stored case document's expiry where its last write put it (Cosmos counts
   * `ttl` from `_ts`), at least 1 s; undefined when it has none.
   */
  private ttlLeft(doc: CaseDoc): number | undefined {
    if (typeof doc.ttl !== 'number' || doc.ttl <= 0 || typeof doc._ts !== 'number') return undefined;
    const elapsed = Math.floor((this.options.now ?? Date.now)() / 1000) - doc._ts;
    return Math.max(1, doc.ttl - Math.max(0, elapsed));
  }

  /**
   * Does index operations a committed case document owes, 99 per batch, each batch also replacing
   * the case document (IfMatch the etag before) with what is still owed after it, the last one
   * without a to-do. Returns the case document's final etag. ConcurrencyConflictError when the case
   * document changed meanwhile: whoever changed it has the to-do (or a newer revision replacing it).
   * The rows get `rowTtl` when given (the case's TTL left), else the tenant's.
   */
  private async finishIndex(body: CaseDoc, etag: string, todo: readonly IndexOp[], attempts?: number, rowTtl?: number): Promise<string> {
    const { tenantId, caseId } = body;
    const ttl = rowTtl ?? this.ttlFor(tenantId);
    const ttlField = ttl !== undefined ? { ttl } : {};
    let current = etag;
    let remaining = todo;
    while (remaining.length > 0) {
      const now = remaining.slice(0, BATCH_MAX - 1);
      const after = remaining.slice(now.length);
      const doc = asJson(after.length > 0 ? { ...body, indexTodo: todoOf(after) } : body);
      const condition = current;
      const ops: BatchOp[] = [
        {
          role: 'case',
          make: () => ({ operationType: 'Replace', partitionKey: tenantId, id: body.id, ifMatch: condition, resourceBody: doc }),
        },
        ...now.map((op) => indexBatchOp(tenantId, caseId, op, ttlField)),
      ];
      current = await this.commit(tenantId, caseId, ops, attempts);
      remaining = after;
    }
    return current;
  }

  /**
   * The texts of payload documents, by payloadKey: from the cache, else one point read per
   * distinct id (a few in flight at once). A payload document that is gone (it expired before a
   * document pointing at it, see the header) reads as '' with a warning rather than failing the caller.
   */
  private async resolvePayloads(refs: Iterable<{ tenantId: string; id: string }>): Promise<Map<string, string>> {
    const texts = new Map<string, string>();
    const toRead = new Map<string, { tenantId: string; id: string }>();
    for (const ref of refs) {
      const key = payloadKey(ref.tenantId, ref.id);
      if (texts.has(key) || toRead.has(key)) continue;
      const cached = this.payloads.get(key);
      if (cached !== undefined) texts.set(key, cached);
      else toRead.set(key, ref);
    }
    const queue = [...toRead];
    const reader = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const [key, { tenantId, id }] = next;
        const { resource } = await this.call('readPayload', () => this.cases.item(id, tenantId).read<PayloadDoc>());
        refuseNewer(resource, this.log, { tenantId });
        if (typeof resource?.payload === 'string') {
          this.payloads.set(key, resource.payload);
          texts.set(key, resource.payload);
        } else {
          this.log.warn('store.payload.missing', { tenantId, payloadId: id });
          texts.set(key, '');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PAYLOAD_READS_IN_FLIGHT, queue.length) }, reader));
    return texts;
  }

  private async readCaseDoc(tenantId: string, caseId: string): Promise<CaseDoc | undefined> {
    const res = await this.call('getCase', () => this.cases.item(caseDocId(caseId), tenantId).read<CaseDoc>(), undefined, {
      tenantId,
      caseId,
    });
    // Every reader of a case document (getCase, a put's read, a settling read) comes through here.
    refuseNewer(res.resource, this.log, { tenantId, caseId });
    return res.resource;
  }

  private async toRecord(doc: CaseDoc): Promise<CaseRecord> {
    const etag = doc._etag ?? '';
    this.remember(doc.tenantId, doc.caseId, { etag, sightingIds: indexRowIds(doc), outboxIds: doc.outboxIds ?? [] });
    // Documents written before payload documents existed carry the text inline and no reportPayloadId.
    const expanded = expandCaseDocument({ case: doc.case, result: doc.result });
    let result = expanded.result;
    if (typeof doc.reportPayloadId === 'string') {
      const texts = await this.resolvePayloads([{ tenantId: doc.tenantId, id: doc.reportPayloadId }]);
      result = { ...result, firstReport: texts.get(payloadKey(doc.tenantId, doc.reportPayloadId)) ?? '' };
    }
    return {
      tenantId: doc.tenantId,
      caseId: doc.caseId,
      revision: doc.revision,
      revisionKey: doc.revisionKey,
      fingerprint: doc.fingerprint,
      state: doc.state as CaseState,
      detectedAt: doc.detectedAt,
      case: expanded.case,
      result,
      etag,
    };
  }

  /** Cross-partition (not on the hot path). With the same case id in several tenants, the first tenant id wins. */
  async findCase(caseId: string): Promise<CaseRecord | undefined> {
    const { resources } = await this.call('findCase', () =>
      this.cases.items
        .query<CaseDoc>({
          query: "SELECT * FROM c WHERE c.docType = 'case' AND c.caseId = @caseId",
          parameters: [{ name: '@caseId', value: caseId }],
        })
        .fetchAll(),
    );
    for (const d of resources) refuseNewer(d, this.log, { caseId });
    const tenants = [...new Set(resources.map((d) => d.tenantId))].sort();
    if (tenants.length > 1) throw new AmbiguousCaseError(caseId, tenants);
    const doc = resources[0];
    return doc ? this.toRecord(doc) : undefined;
  }

  /** @inheritdoc */
  async putCase(
    record: CaseRecord,
    sightings: readonly EntitySighting[],
    expectedEtag: string | undefined,
    outbox: readonly NotificationRecord[] = [],
  ): Promise<CaseRecord> {
    const { tenantId, caseId } = record;
    let previous: Known = { etag: '', sightingIds: [], outboxIds: [] };
    if (expectedEtag !== undefined) {
      const cached = this.known.get(`${tenantId}\u0000${caseId}`);
      if (cached && cached.etag === expectedEtag) {
        previous = cached;
      } else {
        // Not read through this instance: one point read tells what to delete (and catches a stale etag early).
        const doc = await this.readCaseDoc(tenantId, caseId);
        if (!doc || doc._etag !== expectedEtag)
          throw new ConcurrencyConflictError(`case ${caseId} changed since etag ${expectedEtag} was read`);
        // A to-do left by an unfinished write is taken over: its rows still owed a delete are deleted too.
        previous = { etag: expectedEtag, sightingIds: indexRowIds(doc), outboxIds: doc.outboxIds ?? [] };
      }
    }
    const ttl = this.ttlFor(tenantId);
    const ttlField = ttl !== undefined ? { ttl } : {};

    const rows = new Map<string, SightingRow>();
    for (const s of sightings) {
      const at = canonicalInstant(s.detectedAt);
      rows.set(sightingDocId(caseId, s.entityKey, at), {
        entityKey: s.entityKey,
        detectedAt: at,
        phases: [...s.phases],
        playbook: s.playbook,
        severity: s.severity,
      });
    }
    const knownOutbox = new Set(previous.outboxIds);
    const outboxDocs = new Map<string, JSONObject>();
    // Each distinct payload of the new outbox entries once (all recipients of a report share it).
    // Entries this case already lists are not re-sent, and neither are their payloads.
    const payloadIds = new Map<string, string>();
    for (const n of outbox) {
      const id = outboxDocId(n.key);
      if (knownOutbox.has(id) || outboxDocs.has(id)) continue;
      let payloadId = payloadIds.get(n.payload);
      if (payloadId === undefined) {
        payloadId = payloadDocId(n.payload);
        payloadIds.set(n.payload, payloadId);
      }
      outboxDocs.set(id, outboxDoc(n, payloadId, ttlField));
    }
    // The case points at its report when it is one of the outbox payloads, and then this very batch
    // (re)writes that payload document: both get their TTL from the same commit, so the pointer cannot
    // outlive its target. That holds for entries already stored too (a redelivered put): the upsert
    // rewrites the same content-addressed document instead of adding a copy.
    const report = record.result.firstReport;
    let reportPayloadId = report === undefined ? undefined : payloadIds.get(report);
    if (report !== undefined && reportPayloadId === undefined && outbox.some((n) => n.payload === report)) {
      reportPayloadId = payloadDocId(report);
      payloadIds.set(report, reportPayloadId);
    }
    const stored = compactCaseDocument({
      case: record.case,
      // Spreading keeps firstReport in its place, so a read gives back the same key order.
      result: reportPayloadId === undefined ? record.result : { ...record.result, firstReport: '' },
    });
    // Stale rows first (a row under a key the case no longer has misleads correlation), then this
    // revision's rows. What does not fit the first batch beside the case, its payloads and its outbox
    // entries is owed: listed on the case document the first batch commits (see the header, Limits).
    const index: IndexOp[] = [];
    for (const id of previous.sightingIds) if (!rows.has(id)) index.push({ kind: 'delete', id });
    for (const row of rows.values()) index.push({ kind: 'upsert', row });
    const room = Math.max(0, BATCH_MAX - 1 - payloadIds.size - outboxDocs.size);
    const owed = index.slice(room);
    const caseDoc: CaseDoc = {
      id: caseDocId(caseId),
      docType: 'case',
      tenantId,
      caseId,
      revision: record.revision,
      revisionKey: record.revisionKey,
      fingerprint: record.fingerprint,
      state: record.state,
      detectedAt: record.detectedAt,
      case: stored.case,
      result: stored.result,
      ...(reportPayloadId !== undefined ? { reportPayloadId } : {}),
      sightingIds: [...rows.keys()],
      outboxIds: [...new Set([...previous.outboxIds, ...outbox.map((n) => outboxDocId(n.key))])],
      ...FV,
      ...ttlField,
    };
    const committed = owed.length > 0 ? { ...caseDoc, indexTodo: todoOf(owed) } : caseDoc;

    const ops: BatchOp[] = [
      expectedEtag === undefined
        ? { role: 'case', make: () => ({ operationType: 'Create', partitionKey: tenantId, resourceBody: asJson(committed) }) }
        : {
            role: 'case',
            make: () => ({
              operationType: 'Replace',
              partitionKey: tenantId,
              id: caseDoc.id,
              ifMatch: expectedEtag,
              resourceBody: asJson(committed),
            }),
          },
    ];
    // What must not be lost goes first, in the first batch with the case: the payloads (the report's
    // first of all), then the outbox entries that point at them. A case needing several batches
    // (more than ≈ 90 index operations) has only index rows in the later ones, each batch with the
    // case document and its shrinking to-do: if one fails after the first committed, the case
    // document still names the rows owed, and a redelivery's getCase writes them before it finds a
    // duplicate whose outbox entries exist and are delivered.
    const payloadOrder = [...payloadIds].sort(([, a], [, b]) => Number(b === reportPayloadId) - Number(a === reportPayloadId));
    for (const [text] of payloadOrder) {
      const doc = payloadDoc(tenantId, text, ttlField);
      ops.push({ role: 'payload', make: () => ({ operationType: 'Upsert', partitionKey: tenantId, resourceBody: asJson(doc) }) });
    }
    for (const doc of outboxDocs.values())
      ops.push({ role: 'outbox', make: () => ({ operationType: 'Create', partitionKey: tenantId, resourceBody: doc }) });
    // The case, its payloads and its outbox entries must commit together: outbox entries spilled into
    // a later batch were listed by the case yet lost if that batch failed, and never written again.
    // The policy bounds the notify matrix so this holds; refusing here keeps it true whatever the caller.
    if (ops.length > BATCH_MAX) {
      throw new ConfigError(
        'notify',
        `case ${caseId}: ${outboxDocs.size} outbox entries and ${payloadIds.size} payloads do not fit one transactional batch with the case (${BATCH_MAX} operations)`,
      );
    }
    for (const op of index.slice(0, room)) ops.push(indexBatchOp(tenantId, caseId, op, ttlField));

    let etag = await this.commit(tenantId, caseId, ops);
    for (const [text, id] of payloadIds) this.payloads.set(payloadKey(tenantId, id), text);
    if (owed.length > 0) {
      try {
        etag = await this.finishIndex(caseDoc, etag, owed);
      } catch (err) {
        if (err instanceof ConcurrencyConflictError) {
          // The revision (and its outbox) committed in the first batch; the case document changed since:
          // a getCase elsewhere did the to-do, a newer revision took it over, or a batch retried after
          // its answer was lost had committed. Reading it settles whatever is left, whoever left it.
          this.log.info('store.index.handed_over', { tenantId, caseId });
          // The work is still this put's own: it gets the put's retries, not a read's single attempt.
          const now = await this.readSettled(tenantId, caseId);
          if (now?._etag === undefined || now.revision !== record.revision || now.fingerprint !== record.fingerprint) {
            // A newer revision: the etag returned is stale, so the caller's next conditional write meets that conflict as usual.
            return { ...record, etag };
          }
          if (now.indexTodo !== undefined) {
            // Still owed: answered success, nothing would come back to finish it, and the case would stay
            // unfound under its new keys. Failing as a failed later batch does brings the redelivery, whose getCase finishes it.
            throw new StoreUnavailableError(`cosmos putCase ${caseId}: index operations still owed after the case document changed`);
          }
          this.remember(tenantId, caseId, { etag: now._etag, sightingIds: indexRowIds(now), outboxIds: now.outboxIds ?? [] });
          return { ...record, etag: now._etag };
        }
        // Committed, with the rows still owed on the case document: the redelivery's getCase finishes them.
        this.log.warn('store.index.unfinished', { tenantId, caseId, owed: owed.length });
        throw err;
      }
    }
    this.remember(tenantId, caseId, { etag, sightingIds: caseDoc.sightingIds, outboxIds: caseDoc.outboxIds });
    return { ...record, etag };
  }

  /**
   * Runs one TransactionalBatch until every operation is applied or known to be unnecessary:
   * an existing outbox key (409) or an already-deleted index row (404) is dropped and the rest is
   * re-sent; a failed case operation is a concurrency conflict. Works with atomic batches (Azure:
   * the others answer 424 and are re-sent) and with the stand-in's non-atomic ones (operations
   * before the failure are applied and not re-sent). Returns the case document's new etag (every batch
   * carries the case operation; a batch that returned none fails as StoreUnavailableError).
   */
  private async commit(tenantId: string, caseId: string, ops: readonly BatchOp[], attempts?: number): Promise<string> {
    let pending = ops;
    let etag: string | undefined;
    for (let round = 0; pending.length > 0; round++) {
      if (round > ops.length) throw new StoreUnavailableError(`cosmos putCase ${caseId}: batch did not converge`);
      const batch = pending;
      const res = await this.call(
        'putCase',
        async () => {
          try {
            return await this.cases.items.batch(
              batch.map((o) => o.make()),
              tenantId,
            );
          } catch (err) {
            // The SDK wraps batch transport errors in a plain Error (status lost): all of them are infrastructure trouble.
            throw new StoreUnavailableError(`cosmos batch for case ${caseId} failed`, { cause: err });
          }
        },
        attempts,
        { tenantId, caseId },
      );
      const results = res.result ?? [];
      const next: BatchOp[] = [];
      batch.forEach((op, i) => {
        const status = results[i]?.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          if (op.role === 'case') etag = results[i]?.eTag;
          return;
        }
        if (status === 424) {
          next.push(op);
          return;
        }
        if (op.role === 'case' && (status === 412 || status === 409 || status === 404)) {
          throw new ConcurrencyConflictError(
            `case ${caseId}: ${status === 409 ? 'already exists' : 'changed since it was read'} (${status})`,
          );
        }
        if (op.role === 'outbox' && status === 409) return;
        if (op.role === 'unsighting' && status === 404) return;
        throw new StoreUnavailableError(`cosmos putCase ${caseId}: ${op.role} operation failed with status ${status}`);
      });
      pending = next;
    }
    if (etag === undefined) throw new StoreUnavailableError(`cosmos putCase ${caseId}: the batch returned no etag for the case`);
    return etag;
  }

  /** @inheritdoc */
  async findRelated(query: RelatedQuery): Promise<RelatedResult> {
    const keys = [...new Set(query.keys)];
    if (keys.length === 0 || query.limitPerKey <= 0) return { sightings: [], saturated: [] };
    const parameters: SqlParameter[] = [
      { name: '@tenantId', value: query.tenantId },
      { name: '@from', value: canonicalInstant(query.from) },
      { name: '@to', value: canonicalInstant(query.to) },
    ];
    const names = keys.map((k, i) => {
      parameters.push({ name: `@k${i}`, value: k });
      return `@k${i}`;
    });
    let exclude = '';
    if (query.excludeCaseId !== undefined) {
      exclude = ' AND c.caseId != @exclude';
      parameters.push({ name: '@exclude', value: query.excludeCaseId });
    }
    const iterator = this.cases.items.query<SightingHit>(
      {
        query:
          'SELECT c.fv, c.entityKey, c.caseId, c.detectedAt, c.phases, c.playbook, c.severity FROM c ' +
          `WHERE c.tenantId = @tenantId AND c.docType = 'sighting' AND c.entityKey IN (${names.join(', ')}) ` +
          `AND c.detectedAt >= @from AND c.detectedAt <= @to${exclude} ORDER BY c.detectedAt DESC`,
        parameters,
      },
      { partitionKey: query.tenantId, maxItemCount: Math.min(1000, keys.length * query.limitPerKey) },
    );
    const scope: OpScope = { tenantId: query.tenantId, ...(query.excludeCaseId !== undefined ? { caseId: query.excludeCaseId } : {}) };
    const perKey = new Map<string, EntitySighting[]>(keys.map((k) => [k, []]));
    let full = 0;
    // Newest first across all keys: stop paging as soon as every key has its limit.
    while (full < keys.length && iterator.hasMoreResults()) {
      const page = await this.call('findRelated', () => iterator.fetchNext(), undefined, scope);
      // Every row returned, before any is kept: a newer row left out would change the verdict unseen.
      // The row's id is not selected (≈ 60 B more per row on every look-up): the log names its case instead.
      for (const d of page.resources) refuseNewer(d, this.log, { ...scope, caseId: d.caseId });
      for (const d of page.resources) {
        const list = perKey.get(d.entityKey);
        if (!list || list.length >= query.limitPerKey) continue;
        list.push({
          tenantId: query.tenantId,
          entityKey: d.entityKey,
          caseId: d.caseId,
          detectedAt: d.detectedAt,
          phases: d.phases,
          playbook: d.playbook,
          severity: d.severity,
        });
        if (list.length === query.limitPerKey) full++;
      }
    }
    // One query serves every key here, so saturated keys cost no extra request; their rows are dropped.
    const saturated = keys.filter((k) => (perKey.get(k)?.length ?? 0) >= query.limitPerKey);
    const sat = new Set(saturated);
    return { sightings: keys.filter((k) => !sat.has(k)).flatMap((k) => perKey.get(k) ?? []), saturated };
  }

  /** @inheritdoc */
  async acquireLease(lease: Lease, now: string): Promise<{ acquired: boolean; lease: Lease }> {
    const id = leaseDocId(lease.caseId);
    const item = this.cases.item(id, lease.tenantId);
    const ttl = Math.max(1, Math.ceil((Date.parse(lease.expiresAt) - Date.parse(now)) / 1000) + LEASE_TTL_GRACE_S);
    const body = {
      id,
      docType: 'lease',
      tenantId: lease.tenantId,
      caseId: lease.caseId,
      owner: lease.owner,
      expiresAt: lease.expiresAt,
      ...FV,
      ttl,
    };
    const held = (doc: LeaseDoc): { acquired: boolean; lease: Lease } => ({
      acquired: false,
      lease: { tenantId: doc.tenantId, caseId: doc.caseId, owner: doc.owner, expiresAt: doc.expiresAt },
    });
    const won = (etag: string | undefined): { acquired: boolean; lease: Lease } => {
      if (etag) this.leaseEtags.set(`${lease.tenantId}\u0000${lease.caseId}\u0000${lease.owner}`, etag);
      return { acquired: true, lease: { ...lease } };
    };
    for (let round = 0; round < 3; round++) {
      try {
        const created = await this.call('acquireLease', () => this.cases.items.create(body));
        return won(created.etag);
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
      }
      const { resource: existing } = await this.call('acquireLease', () => item.read<LeaseDoc>());
      refuseNewer(existing, this.log, { tenantId: lease.tenantId, caseId: lease.caseId });
      if (!existing) continue; // deleted (released or expired) between create and read: try again
      const mine = existing.owner === lease.owner;
      if (!mine && !(Date.parse(existing.expiresAt) <= Date.parse(now))) return held(existing);
      try {
        const replaced = await this.call('acquireLease', () =>
          item.replace(body, { accessCondition: { type: 'IfMatch', condition: existing._etag ?? '' } }),
        );
        return won(replaced.etag);
      } catch (err) {
        const status = statusOf(err);
        if (status !== 412 && status !== 404) throw err;
        // Someone else renewed or took it over first: look again.
      }
    }
    const { resource: current } = await this.call('acquireLease', () => item.read<LeaseDoc>());
    refuseNewer(current, this.log, { tenantId: lease.tenantId, caseId: lease.caseId });
    if (current) return held(current);
    throw new ConcurrencyConflictError(`lease on case ${lease.caseId}: too much contention`);
  }

  /** @inheritdoc */
  async releaseLease(tenantId: string, caseId: string, owner: string): Promise<void> {
    const key = `${tenantId}\u0000${caseId}\u0000${owner}`;
    const item = this.cases.item(leaseDocId(caseId), tenantId);
    let etag = this.leaseEtags.get(key);
    this.leaseEtags.delete(key);
    for (let round = 0; round < 2; round++) {
      if (etag === undefined) {
        const { resource } = await this.call('releaseLease', () => item.read<LeaseDoc>());
        refuseNewer(resource, this.log, { tenantId, caseId });
        if (!resource || resource.owner !== owner) return;
        etag = resource._etag ?? '';
      }
      try {
        const condition = etag;
        await this.call('releaseLease', () => item.delete({ accessCondition: { type: 'IfMatch', condition } }));
        return;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) return;
        if (status !== 412) throw err;
        etag = undefined; // changed since we took it: re-read, delete only if still ours
      }
    }
  }

  /**
   * Two point writes: the payload document (an upsert: it is content-addressed, so writing it again
   * changes nothing but its TTL), then the outbox document pointing at it (409 → 'exists'). The
   * payload goes first so an outbox document never points at a payload not yet written.
   */
  async enqueueNotification(n: NotificationRecord): Promise<'created' | 'exists'> {
    const ttl = this.ttlFor(n.tenantId);
    const ttlField = ttl !== undefined ? { ttl } : {};
    const payload = payloadDoc(n.tenantId, n.payload, ttlField);
    await this.call('enqueueNotification', () => this.cases.items.upsert(payload));
    this.payloads.set(payloadKey(n.tenantId, payload.id), n.payload);
    try {
      await this.call('enqueueNotification', () => this.cases.items.create(outboxDoc(n, payload.id, ttlField)));
      return 'created';
    } catch (err) {
      if (statusOf(err) === 409) return 'exists';
      throw err;
    }
  }

  /**
   * One PATCH (atomic on the server; see patchKnown: never of an entry of a newer format, ConfigError then).
   * `sentAt` / `lastError` replace the stored value only when given. An unknown key changes nothing.
   */
  async markNotification(
    tenantId: string,
    key: string,
    update: { status: NotificationRecord['status']; sentAt?: string; lastError?: string; attempts: number },
  ): Promise<void> {
    const ops: PatchOperation[] = [
      { op: 'set', path: '/status', value: update.status },
      { op: 'set', path: '/attempts', value: update.attempts },
    ];
    if (update.sentAt !== undefined) ops.push({ op: 'set', path: '/sentAt', value: update.sentAt });
    if (update.lastError !== undefined) ops.push({ op: 'set', path: '/lastError', value: update.lastError });
    if (!(await this.patchKnown('markNotification', this.cases.item(outboxDocId(key), tenantId), ops, { tenantId })))
      this.log.warn('store.notification.unknown', { tenantId, key });
  }

  /**
   * One PATCH of `item` carrying KNOWN_FORMAT: true when applied, false when there is no such document.
   * A 412 (the predicate did not match: a document of a newer format, or an `fv` that is no version)
   * costs one point read, on that failure path only, so the refusal logs the version as every read does
   * (refuseNewer throws ConfigError). A document that reads as known after all changed between the two
   * requests: the patch is sent once more, and a second such answer is a ConcurrencyConflictError.
   */
  private async patchKnown(op: string, item: Item, operations: PatchOperation[], scope: OpScope): Promise<boolean> {
    for (let round = 0; round < 2; round++) {
      try {
        await this.call(op, () => item.patch({ condition: KNOWN_FORMAT, operations }), undefined, scope);
        return true;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) return false;
        if (status !== 412) throw err;
      }
      const { resource } = await this.call(op, () => item.read<{ id: string; fv?: unknown }>(), undefined, scope);
      refuseNewer(resource, this.log, scope);
      if (resource === undefined) return false;
    }
    throw new ConcurrencyConflictError(`${op}: the document changed format while it was being patched`);
  }

  /**
   * Filters combine (AND); oldest first (createdAt, then key). Without tenantId the query is cross-partition.
   * `due` is checked by the query and `limit` is its TOP (ORDER BY createdAt, on the range index every path
   * has), so a drain gets at most `limit` documents back and resolves only their payloads, never the whole
   * backlog's. The canonical-instant test (REGEXMATCH) is not indexable: the server evaluates it on the
   * queued documents it visits. Which of several entries sharing the createdAt at the cut are kept is the
   * server's choice, not key order.
   */
  async listNotifications(filter: Parameters<Store['listNotifications']>[0]): Promise<NotificationRecord[]> {
    const limit = listLimit(filter.limit);
    if (limit === 0) return [];
    const where = ["c.docType = 'outbox'"];
    const parameters: SqlParameter[] = [];
    if (filter.tenantId !== undefined) {
      where.push('c.tenantId = @tenantId');
      parameters.push({ name: '@tenantId', value: filter.tenantId });
    }
    if (filter.caseId !== undefined) {
      where.push('c.caseId = @caseId');
      parameters.push({ name: '@caseId', value: filter.caseId });
    }
    if (filter.status !== undefined) {
      where.push('c.status = @status');
      parameters.push({ name: '@status', value: filter.status });
    }
    if (filter.due !== undefined) {
      // Text order is time order for a canonical instant; any other createdAt, or none, is due (see the port).
      const arms = ['NOT IS_STRING(c.createdAt)', 'NOT REGEXMATCH(c.createdAt, @canonical)'];
      parameters.push({ name: '@canonical', value: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z$' });
      // Cut-off i for `attempts = i`, the last for every count from there on: as ranges, so each arm can use the index.
      const cutoffs = filter.due.createdBy;
      cutoffs.forEach((cutoff, i) => {
        const counts = [...(i > 0 ? [`c.attempts >= ${i}`] : []), ...(i < cutoffs.length - 1 ? [`c.attempts < ${i + 1}`] : [])];
        arms.push(`(${[...counts, `c.createdAt <= @due${i}`].join(' AND ')})`);
        parameters.push({ name: `@due${i}`, value: cutoff });
      });
      where.push(`(${arms.join(' OR ')})`);
    }
    // With a limit, the oldest entries first (the drain's order).
    const query = `SELECT ${limit !== undefined ? 'TOP @limit ' : ''}* FROM c WHERE ${where.join(' AND ')}${limit !== undefined ? ' ORDER BY c.createdAt' : ''}`;
    if (limit !== undefined) parameters.push({ name: '@limit', value: limit });
    const { resources } = await this.call('listNotifications', () =>
      this.cases.items
        .query<Record<string, unknown>>({ query, parameters }, filter.tenantId !== undefined ? { partitionKey: filter.tenantId } : {})
        .fetchAll(),
    );
    for (const doc of resources) refuseNewer(doc, this.log, filter.tenantId !== undefined ? { tenantId: filter.tenantId } : {});
    // Documents written before payload documents existed carry `payload` inline and no payloadId.
    const pointing: { doc: Record<string, unknown>; tenantId: string; id: string }[] = [];
    for (const doc of resources) {
      if (typeof doc.payloadId === 'string' && typeof doc.tenantId === 'string')
        pointing.push({ doc, tenantId: doc.tenantId, id: doc.payloadId });
    }
    if (pointing.length > 0) {
      const texts = await this.resolvePayloads(pointing);
      for (const p of pointing) p.doc.payload = texts.get(payloadKey(p.tenantId, p.id)) ?? '';
    }
    // Binary order, as the query's ORDER BY and SQLite (localeCompare would disagree with TOP's choice).
    const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    return resources
      .map((d) => pick<NotificationRecord>(d, NOTIFICATION_FIELDS))
      .sort((a, b) => order(a.createdAt, b.createdAt) || order(a.key, b.key));
  }

  /** @inheritdoc */
  async park(item: ParkedItem): Promise<void> {
    const ttl = item.tenantId !== undefined ? this.ttlFor(item.tenantId) : this.options.defaultTtlSeconds;
    const id = idPart(item.id);
    try {
      await this.call('park', () =>
        this.parked.items.create({ ...item, id, parkedId: item.id, ...FV, ...(ttl !== undefined ? { ttl } : {}) }),
      );
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
    }
  }

  /** Cross-partition. Newest first (parkedAt, then id); `limit` defaults to 1000; replayed items only with `includeReplayed`. */
  async listParked(filter: { tenantId?: string; limit?: number; includeReplayed?: boolean } = {}): Promise<ParkedItem[]> {
    const limit = Math.max(0, Math.floor(filter.limit ?? PARKED_DEFAULT_LIMIT));
    if (limit === 0) return [];
    const where = ['true'];
    const parameters: SqlParameter[] = [{ name: '@limit', value: limit }];
    if (filter.tenantId !== undefined) {
      where.push('c.tenantId = @tenantId');
      parameters.push({ name: '@tenantId', value: filter.tenantId });
    }
    if (!filter.includeReplayed) where.push('NOT IS_DEFINED(c.replayedAt)');
    const { resources } = await this.call('listParked', () =>
      this.parked.items
        .query<Record<string, unknown>>({
          query: `SELECT TOP @limit * FROM c WHERE ${where.join(' AND ')} ORDER BY c.parkedAt DESC`,
          parameters,
        })
        .fetchAll(),
    );
    for (const d of resources) refuseNewer(d, this.log);
    return resources
      .map((d) => ({ id: String(d.parkedId ?? d.id), ...pick<Omit<ParkedItem, 'id'>>(d, PARKED_FIELDS) }))
      .sort((a, b) => b.parkedAt.localeCompare(a.parkedAt) || b.id.localeCompare(a.id));
  }

  /** One PATCH (see patchKnown: never of a newer format); an unknown id changes nothing. */
  async markParkedReplayed(id: string, at: string): Promise<void> {
    const docId = idPart(id);
    if (!(await this.patchKnown('markParkedReplayed', this.parked.item(docId, docId), [{ op: 'set', path: '/replayedAt', value: at }], {})))
      this.log.warn('store.parked.unknown', { parkedId: id });
  }

  /** Releases the client's sockets (when this store created the client). */
  async close(): Promise<void> {
    if (this.ownsClient) this.client.dispose();
  }
}
