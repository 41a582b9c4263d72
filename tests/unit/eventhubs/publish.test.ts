import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, EventTooLargeError } from '../../../shared/errors';
import {
  EVENT_OVERHEAD_RESERVE_BYTES,
  type EventBatchLike,
  type EventLike,
  type ExportRecord,
  type ProducerLike,
  packEnvelopes,
  publishRecords,
} from '../../../shared/eventhubs/publish';

/** A batch that counts each event as its JSON body plus a fixed framing overhead, like the SDK's byte budget. */
class FakeBatch implements EventBatchLike {
  readonly events: EventLike[] = [];
  sizeInBytes = 0;
  constructor(
    readonly maxSizeInBytes: number,
    private readonly overhead: number,
  ) {}
  get count(): number {
    return this.events.length;
  }
  tryAdd(event: EventLike): boolean {
    const size = Buffer.byteLength(JSON.stringify(event.body)) + this.overhead;
    if (this.sizeInBytes + size > this.maxSizeInBytes) return false;
    this.events.push(event);
    this.sizeInBytes += size;
    return true;
  }
}

class FakeProducer implements ProducerLike {
  readonly created: { partitionKey?: string }[] = [];
  readonly sent: { partitionKey: string | undefined; events: EventLike[] }[] = [];
  private readonly keys = new WeakMap<FakeBatch, string | undefined>();
  closed = false;
  constructor(
    private readonly maxBatchBytes = 1_048_576,
    private readonly overhead = 64,
  ) {}
  async createBatch(options: { partitionKey?: string }): Promise<EventBatchLike> {
    this.created.push(options);
    const batch = new FakeBatch(this.maxBatchBytes, this.overhead);
    this.keys.set(batch, options.partitionKey);
    return batch;
  }
  async sendBatch(batch: EventBatchLike): Promise<void> {
    const fake = batch as FakeBatch;
    // What crosses the wire is JSON: round-trip the bodies so assertions see what a consumer would.
    this.sent.push({
      partitionKey: this.keys.get(fake),
      events: fake.events.map((e) => ({ ...e, body: JSON.parse(JSON.stringify(e.body)) })),
    });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  bodies(): unknown[] {
    return this.sent.flatMap((b) => b.events.map((e) => e.body));
  }
}

const envelopeSchema = z.strictObject({ records: z.array(z.record(z.string(), z.unknown())).min(1) });

const TENANT_A = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';
const TENANT_B = '11111111-2222-4333-8444-555555555555';
const rec = (tenant: string | undefined, id: number, pad = 0): ExportRecord => ({
  ...(tenant ? { TenantId: tenant } : {}),
  SystemAlertId: `alert-${id}`,
  Description: 'x'.repeat(pad),
});

const sample = JSON.parse(readFileSync(join(__dirname, '../../../../shared/samples/eventhub-batch.json'), 'utf8')) as {
  records: ExportRecord[];
}[];

describe('publishRecords', () => {
  it("sends each tenant's records under that tenant as the partition key, in order", async () => {
    const producer = new FakeProducer();
    const records = [rec(TENANT_A, 1), rec(TENANT_B, 2), rec(TENANT_A, 3), rec(TENANT_B, 4)];
    await publishRecords(producer, records);
    expect(producer.sent.map((b) => b.partitionKey)).toEqual([TENANT_A, TENANT_B]);
    expect(producer.sent[0]!.events.map((e) => e.body)).toEqual([{ records: [records[0], records[2]] }]);
    expect(producer.sent[1]!.events.map((e) => e.body)).toEqual([{ records: [records[1], records[3]] }]);
  });

  it('also accepts a camel-case tenantId and leaves records without a tenant to the hub', async () => {
    const producer = new FakeProducer();
    await publishRecords(producer, [{ tenantId: TENANT_B, id: 1 }, { id: 2 }]);
    expect(producer.created).toEqual([{ partitionKey: TENANT_B }, {}]);
    expect(producer.sent.map((b) => b.partitionKey)).toEqual([TENANT_B, undefined]);
  });

  it('uses a custom partition key', async () => {
    const producer = new FakeProducer();
    await publishRecords(producer, [rec(TENANT_A, 1), rec(TENANT_B, 2)], { partitionKeyOf: () => 'all' });
    expect(producer.created).toEqual([{ partitionKey: 'all' }]);
  });

  it('sends envelopes that are exactly {"records":[…]} with a JSON content type', async () => {
    const producer = new FakeProducer();
    await publishRecords(producer, [rec(TENANT_A, 1), rec(TENANT_A, 2)]);
    const events = producer.sent.flatMap((b) => b.events);
    expect(events).toHaveLength(1);
    expect(Object.keys(events[0]!.body as object)).toEqual(['records']);
    expect(envelopeSchema.safeParse(events[0]!.body).success).toBe(true);
    expect(events[0]!.contentType).toBe('application/json');
  });

  it('puts at most recordsPerEvent records in one envelope', async () => {
    const producer = new FakeProducer();
    const result = await publishRecords(
      producer,
      [1, 2, 3, 4, 5].map((i) => rec(TENANT_A, i)),
      { recordsPerEvent: 2 },
    );
    expect(producer.bodies().map((b) => (b as { records: unknown[] }).records.length)).toEqual([2, 2, 1]);
    expect(result).toEqual({ events: 3, batches: 1, records: 5 });
  });

  it('splits an envelope that would exceed the per-event byte budget', async () => {
    const producer = new FakeProducer();
    const records = [1, 2, 3, 4].map((i) => rec(TENANT_A, i, 300));
    await publishRecords(producer, records, { maxEventBytes: 800 });
    const bodies = producer.bodies();
    expect(bodies.length).toBeGreaterThan(1);
    for (const body of bodies) expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThanOrEqual(800);
    expect(bodies.flatMap((b) => (b as { records: unknown[] }).records)).toEqual(records);
  });

  it('starts a new batch when tryAdd refuses, and returns the totals', async () => {
    // A 4 KB batch holds three ~1.2 KB events (one record per envelope), so five records need two batches.
    const producer = new FakeProducer(4096, 64);
    const records = [1, 2, 3, 4, 5].map((i) => rec(TENANT_A, i, 1100));
    const result = await publishRecords(producer, records, { recordsPerEvent: 1 });
    expect(producer.sent.map((b) => b.events.length)).toEqual([3, 2]);
    expect(result).toEqual({ events: 5, batches: 2, records: 5 });
    expect(producer.bodies().flatMap((b) => (b as { records: unknown[] }).records)).toEqual(records);
  });

  it('refuses a record that alone exceeds the event budget before sending anything', async () => {
    const producer = new FakeProducer(16_384);
    const records = [rec(TENANT_A, 1), rec(TENANT_A, 2, 20_000), rec(TENANT_A, 3)];
    const err = await publishRecords(producer, records).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventTooLargeError);
    expect((err as EventTooLargeError).limit).toBe(16_384 - EVENT_OVERHEAD_RESERVE_BYTES);
    expect(producer.sent).toHaveLength(0);
  });

  it('refuses an envelope that does not fit an empty batch', async () => {
    // Framing overhead larger than the reserve: the budget check passes but the batch refuses.
    const producer = new FakeProducer(8192, EVENT_OVERHEAD_RESERVE_BYTES + 4096);
    const err = await publishRecords(producer, [rec(TENANT_A, 1, 3000)], { recordsPerEvent: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventTooLargeError);
    expect(producer.sent).toHaveLength(0);
  });

  it('does nothing for no records and leaves the producer open', async () => {
    const producer = new FakeProducer();
    expect(await publishRecords(producer, [])).toEqual({ events: 0, batches: 0, records: 0 });
    expect(producer.created).toHaveLength(0);
    expect(producer.closed).toBe(false);
  });

  it('refuses a non-positive recordsPerEvent', async () => {
    await expect(publishRecords(new FakeProducer(), [rec(TENANT_A, 1)], { recordsPerEvent: 0 })).rejects.toBeInstanceOf(ConfigError);
  });

  it('round-trips the sample Event Hub batch: one record per event reproduces it exactly', async () => {
    const producer = new FakeProducer();
    const records = sample.flatMap((e) => e.records);
    await publishRecords(producer, records, { recordsPerEvent: 1 });
    expect(producer.bodies()).toEqual(sample);
  });

  it('round-trips the sample records through default-sized envelopes', async () => {
    const producer = new FakeProducer();
    const records = sample.flatMap((e) => e.records);
    const result = await publishRecords(producer, records);
    const bodies = producer.bodies();
    for (const body of bodies) expect(envelopeSchema.safeParse(body).success).toBe(true);
    expect(bodies.flatMap((b) => (b as { records: unknown[] }).records)).toEqual(records);
    expect(result.records).toBe(records.length);
  });
});

describe('packEnvelopes', () => {
  it('never produces an envelope over the budget or with more records than allowed', () => {
    const records = Array.from({ length: 40 }, (_, i) => rec(i % 3 === 0 ? TENANT_B : TENANT_A, i, (i * 37) % 200));
    const packed = packEnvelopes(records, { recordsPerEvent: 5, maxEventBytes: 700 });
    for (const { envelopes } of packed) {
      for (const env of envelopes) {
        expect(env.records.length).toBeLessThanOrEqual(5);
        expect(Buffer.byteLength(JSON.stringify(env))).toBeLessThanOrEqual(700);
      }
    }
    expect(packed.flatMap((p) => p.envelopes.flatMap((e) => e.records))).toHaveLength(40);
  });

  it('fills an envelope up to exactly the budget', () => {
    const a = rec(TENANT_A, 1);
    const b = rec(TENANT_A, 2);
    const exact = Buffer.byteLength(JSON.stringify({ records: [a, b] }));
    expect(packEnvelopes([a, b], { maxEventBytes: exact })[0]!.envelopes).toHaveLength(1);
    expect(packEnvelopes([a, b], { maxEventBytes: exact - 1 })[0]!.envelopes).toHaveLength(2);
  });
});
