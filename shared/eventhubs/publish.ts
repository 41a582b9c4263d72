/**
 * Publishing alert records to an Event Hub in the Log Analytics data-export envelope
 * (`{"records":[…]}` per event), for end-to-end checks and load tests of a deployment
 * (`triage send … --eventhub`) and for re-publishing parked events (`triage parked replay`).
 *
 * The logic here talks only to the small {@link ProducerLike} port, which the SDK's
 * `EventHubProducerClient` satisfies structurally (see `client.ts`), so it is tested
 * with an in-memory fake.
 */
import { ConfigError, EventTooLargeError } from '../errors';
import { type Logger, silentLogger } from '../log';

/** One event as handed to a batch: the body is serialised to JSON by the SDK (an AMQP data section). */
export interface EventLike {
  /** The event body (here: an export envelope). */
  body: unknown;
  /** MIME type recorded on the event. */
  contentType?: string;
}

/** The part of the SDK's `EventDataBatch` this module uses. */
export interface EventBatchLike {
  /** Adds the event if it still fits; `false` when the batch is full (or the event alone is too big). */
  tryAdd(event: EventLike): boolean;
  /** Events in the batch. */
  readonly count: number;
  /** Current encoded size of the batch. */
  readonly sizeInBytes: number;
  /** Largest encoded size the batch accepts (the hub's maximum message size unless lowered). */
  readonly maxSizeInBytes: number;
}

/** The part of the SDK's `EventHubProducerClient` this module uses. */
export interface ProducerLike {
  /** Creates an empty batch; events in one batch share the partition key. */
  createBatch(options: { partitionKey?: string }): Promise<EventBatchLike>;
  /** Sends a batch created by {@link ProducerLike.createBatch}. */
  sendBatch(batch: EventBatchLike): Promise<void>;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** A record as exported by Log Analytics (e.g. a SecurityAlert row). */
export type ExportRecord = Readonly<Record<string, unknown>>;

/** The export envelope: exactly one key, `records`. */
export interface ExportEnvelope {
  /** The rows carried by one event. */
  records: ExportRecord[];
}

/** Options of {@link publishRecords} and {@link packEnvelopes}. */
export interface PublishOptions {
  /** Records per envelope (default 50): the data export groups several rows into one event. */
  recordsPerEvent?: number;
  /** Partition key of a record (default: its `TenantId` or `tenantId`); `undefined`/empty lets the hub choose. */
  partitionKeyOf?: (record: ExportRecord) => string | undefined;
  /**
   * Upper bound on one envelope's JSON size in bytes. By default, and never more than, the
   * batch's `maxSizeInBytes` minus {@link EVENT_OVERHEAD_RESERVE_BYTES}.
   */
  maxEventBytes?: number;
  /** Progress lines (batch sent, totals); record contents are never logged. */
  log?: Logger;
}

/** Totals of a publish. */
export interface PublishResult {
  /** Events (envelopes) sent. */
  events: number;
  /** Batches sent. */
  batches: number;
  /** Records sent. */
  records: number;
}

/** Default records per envelope. */
export const DEFAULT_RECORDS_PER_EVENT = 50;

/**
 * Bytes kept free for per-event AMQP framing (data-section header, message annotations
 * carrying the partition key, content type) when deriving the envelope budget from the
 * batch's maximum size. Generous on purpose: an envelope that still does not fit an empty
 * batch fails with {@link EventTooLargeError} rather than being sent partially.
 */
export const EVENT_OVERHEAD_RESERVE_BYTES = 2048;

/** Serialised size of `{"records":[` plus `]}`. */
const ENVELOPE_FRAME_BYTES = Buffer.byteLength('{"records":[]}');

/** Envelopes for one partition key, in record order. */
export interface PartitionEnvelopes {
  /** The partition key shared by the envelopes (`undefined`: none). */
  partitionKey: string | undefined;
  /** Envelopes, each within the byte budget. */
  envelopes: ExportEnvelope[];
}

/** Default partition key: the record's tenant (`TenantId` as exported, or `tenantId`). */
export function defaultPartitionKeyOf(record: ExportRecord): string | undefined {
  const v = record.TenantId ?? record.tenantId;
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function checkPositiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new ConfigError(name, `must be a positive integer, got ${String(v)}`);
}

/**
 * Groups records by partition key (groups in first-seen order, records in input order) and
 * packs each group into envelopes of at most `recordsPerEvent` records whose JSON stays
 * within `maxEventBytes`. Pure: no I/O.
 *
 * @throws EventTooLargeError when a single record alone makes an envelope over the budget.
 */
export function packEnvelopes(
  records: readonly ExportRecord[],
  options: { recordsPerEvent?: number; partitionKeyOf?: (record: ExportRecord) => string | undefined; maxEventBytes: number },
): PartitionEnvelopes[] {
  checkPositiveInt('recordsPerEvent', options.recordsPerEvent);
  checkPositiveInt('maxEventBytes', options.maxEventBytes);
  const perEvent = options.recordsPerEvent ?? DEFAULT_RECORDS_PER_EVENT;
  const keyOf = options.partitionKeyOf ?? defaultPartitionKeyOf;
  const budget = options.maxEventBytes;

  const groups = new Map<string | undefined, ExportRecord[]>();
  for (const record of records) {
    const raw = keyOf(record);
    const key = raw === '' ? undefined : raw;
    const group = groups.get(key);
    if (group) group.push(record);
    else groups.set(key, [record]);
  }

  const out: PartitionEnvelopes[] = [];
  for (const [partitionKey, group] of groups) {
    const envelopes: ExportEnvelope[] = [];
    let current: ExportRecord[] = [];
    let currentBytes = ENVELOPE_FRAME_BYTES;
    group.forEach((record, i) => {
      const size = Buffer.byteLength(JSON.stringify(record));
      if (ENVELOPE_FRAME_BYTES + size > budget) {
        throw new EventTooLargeError(
          ENVELOPE_FRAME_BYTES + size,
          budget,
          `record ${i} of partition ${partitionKey === undefined ? '(none)' : JSON.stringify(partitionKey)} does not fit one event on its own`,
        );
      }
      const added = size + (current.length > 0 ? 1 : 0); // the comma between records
      if (current.length > 0 && (current.length >= perEvent || currentBytes + added > budget)) {
        envelopes.push({ records: current });
        current = [];
        currentBytes = ENVELOPE_FRAME_BYTES;
      }
      currentBytes += size + (current.length > 0 ? 1 : 0);
      current.push(record);
    });
    if (current.length > 0) envelopes.push({ records: current });
    out.push({ partitionKey, envelopes });
  }
  return out;
}

/**
 * Publishes `records` as export envelopes: grouped by partition key (tenant), packed into
 * envelopes within the byte budget, added to batches with `tryAdd` until one is full, which
 * is then sent and replaced by a new batch. Every envelope is sized before anything is sent,
 * so an oversized record fails the whole call without a partial publish.
 *
 * Does not close the producer (the caller owns it).
 *
 * @throws EventTooLargeError when a record alone exceeds the budget, or an envelope does not
 *   fit an EMPTY batch (then earlier batches may already have been sent).
 * @throws ConfigError for a non-positive `recordsPerEvent`/`maxEventBytes`.
 */
export async function publishRecords(
  producer: ProducerLike,
  records: readonly ExportRecord[],
  options: PublishOptions = {},
): Promise<PublishResult> {
  const log = options.log ?? silentLogger;
  checkPositiveInt('recordsPerEvent', options.recordsPerEvent);
  checkPositiveInt('maxEventBytes', options.maxEventBytes);
  if (records.length === 0) return { events: 0, batches: 0, records: 0 };

  const keyOf = options.partitionKeyOf ?? defaultPartitionKeyOf;
  const firstKey = keyOf(records[0] as ExportRecord) || undefined;
  let batch = await producer.createBatch(firstKey === undefined ? {} : { partitionKey: firstKey });
  const derived = batch.maxSizeInBytes - EVENT_OVERHEAD_RESERVE_BYTES;
  if (derived < 1)
    throw new EventTooLargeError(EVENT_OVERHEAD_RESERVE_BYTES, batch.maxSizeInBytes, 'the batch size limit leaves no room for an event');
  const budget = Math.min(options.maxEventBytes ?? derived, derived);

  const partitions = packEnvelopes(records, { recordsPerEvent: options.recordsPerEvent, partitionKeyOf: keyOf, maxEventBytes: budget });

  const totals: PublishResult = { events: 0, batches: 0, records: 0 };
  let first = true;
  for (const { partitionKey, envelopes } of partitions) {
    // The first batch was created for the first record's key, which is the first group's key.
    if (!first) batch = await producer.createBatch(partitionKey === undefined ? {} : { partitionKey });
    first = false;
    let pendingRecords = 0;
    const send = async (): Promise<void> => {
      await producer.sendBatch(batch);
      totals.batches += 1;
      totals.events += batch.count;
      totals.records += pendingRecords;
      log.info('eventhub.batch.sent', { partitionKey, events: batch.count, bytes: batch.sizeInBytes });
      pendingRecords = 0;
    };
    for (const envelope of envelopes) {
      const event: EventLike = { body: envelope, contentType: 'application/json' };
      if (!batch.tryAdd(event)) {
        if (batch.count === 0) throw tooLargeForEmptyBatch(envelope, batch);
        await send();
        batch = await producer.createBatch(partitionKey === undefined ? {} : { partitionKey });
        if (!batch.tryAdd(event)) throw tooLargeForEmptyBatch(envelope, batch);
      }
      pendingRecords += envelope.records.length;
    }
    if (batch.count > 0) await send();
  }
  log.info('eventhub.publish.done', { ...totals });
  return totals;
}

function tooLargeForEmptyBatch(envelope: ExportEnvelope, batch: EventBatchLike): EventTooLargeError {
  return new EventTooLargeError(
    Buffer.byteLength(JSON.stringify(envelope)),
    batch.maxSizeInBytes,
    `an envelope of ${envelope.records.length} record(s) does not fit an empty batch`,
  );
}
