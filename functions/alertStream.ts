/**
 * Event Hub trigger (cardinality many) on the Log Analytics data export hub.
 * Each event gets its own outcome; bad events are parked and never throw the batch.
 * The host checkpoints even when the function throws, so this throws only when an
 * item could be neither triaged nor parked (store down): the registration's retry
 * policy then redelivers the whole batch, which idempotency makes safe.
 */
import { app, type InvocationContext } from '@azure/functions';
import { getRuntime } from '../shared/runtime';

/** Handler: one batch of events (envelopes, strings or bytes). */
export async function alertStream(messages: unknown, context: InvocationContext): Promise<void> {
  const rt = await getRuntime();
  const batch = Array.isArray(messages) ? messages : [messages];
  const outcome = await rt.pipeline.ingest(batch, { kind: 'eventhub-batch', source: `eventhub:${rt.settings.eventHubName}` });
  rt.log.info('eventhub.batch', { invocationId: context.invocationId, events: batch.length, ...outcome.counts });
}

app.eventHub('alertStream', {
  connection: 'EVENTHUB_CONNECTION',
  eventHubName: '%EVENTHUB_NAME%',
  consumerGroup: '%EVENTHUB_CONSUMER_GROUP%',
  cardinality: 'many',
  // Infinite retries with backoff: a batch is only thrown when the store is down, and
  // checkpointing past it would lose alerts. Poison items never throw (they are parked).
  retry: { strategy: 'exponentialBackoff', maxRetryCount: -1, minimumInterval: { seconds: 5 }, maximumInterval: { minutes: 5 } },
  handler: alertStream,
});
