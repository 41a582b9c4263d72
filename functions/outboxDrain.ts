/**
 * Timer trigger, every minute: sends the outbox entries that are due (a first attempt a crash or an
 * outage interrupted, a retry after a failed send) and abandons those out of attempts. Thin: the
 * policy is OutboxDispatcher.drain's (shared/notify/outbox.ts). Runs that overlap (a slow channel,
 * several instances) are safe: each entry is claimed before it is sent.
 */
import { app, type InvocationContext } from '@azure/functions';
import { getRuntime } from '../shared/runtime';

/** Handler: one drain. The timer's schedule status is not needed (a missed run is just a later drain). */
export async function outboxDrain(_timer: unknown, context: InvocationContext): Promise<void> {
  const rt = await getRuntime();
  // The runtime's own dispatcher: the channel the pipeline delivers through. None: delivery is off and entries stay queued.
  const dispatcher = rt.dispatcher;
  if (!dispatcher) return;
  // A store outage throws: the run is reported failed, and the next one (a minute later) tries again.
  const sent = await dispatcher.drain();
  // Quiet when there was nothing to send (every minute), as the local drain loop is.
  if (sent > 0) rt.log.info('outbox.drained', { invocationId: context.invocationId, step: 'notify', sent });
}

app.timer('outboxDrain', { schedule: '0 */1 * * * *', runOnStartup: false, handler: outboxDrain });
