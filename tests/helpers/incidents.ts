/**
 * Incident webhook bodies for revision tests, and a pipeline whose notification channel fails on demand, built from the sample incident: the same incident
 * (one name) created and updated, with no analytic rule code, so its severity follows the
 * provider's and each Update can move it up or down.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../shared/config/policy';
import { silentLogger } from '../../shared/log';
import { type ChannelSender, OUTBOX_RETRY, OutboxDispatcher } from '../../shared/notify/outbox';
import { Pipeline } from '../../shared/pipeline/pipeline';
import type { NotificationRecord, Store } from '../../shared/store/port';
import { createBrain } from '../../shared/triage/brain';
import { ROOT, SAMPLES } from './cli';

const incidentText = readFileSync(join(SAMPLES, 'incident-create-bruteforce.json'), 'utf8');

/** The sample incident renamed `name`, as `event`, last modified at `lastModifiedTimeUtc`, with the provider's `severity`. */
export function uncodedIncident(
  name: string,
  event: 'Create' | 'Update',
  lastModifiedTimeUtc: string,
  severity: string,
  status = 'Active',
): unknown {
  const d = JSON.parse(incidentText) as {
    objectEventType: string;
    object: { id: string; name: string; properties: Record<string, unknown> };
  };
  d.objectEventType = event;
  d.object.name = name;
  d.object.id = `${d.object.id.slice(0, d.object.id.lastIndexOf('/'))}/${name}`;
  Object.assign(d.object.properties, {
    title: 'Unusual thing seen',
    description: 'no code',
    relatedAnalyticRuleIds: [],
    alerts: [],
    additionalData: {},
    createdTimeUtc: '2026-11-20T01:00:00.000Z',
    lastModifiedTimeUtc,
    severity,
    status,
  });
  return d;
}

/**
 * A pipeline on `store` (the repository's policies) whose outbox channel fails while `down(n)` says so, with
 * one attempt per entry: a failed send is abandoned at once (status `failed`), as after the default policy's
 * eight. `sent` lists what the channel took.
 */
export function pipelineWithFlakyChannel(
  store: Store,
  down: (n: NotificationRecord) => boolean,
): { pipeline: Pipeline; sent: NotificationRecord[] } {
  const sent: NotificationRecord[] = [];
  const channel: ChannelSender = {
    send: async (n) => {
      if (down(n)) throw new Error('channel down');
      sent.push(n);
    },
  };
  const dispatcher = new OutboxDispatcher(store, channel, silentLogger, undefined, { retry: { ...OUTBOX_RETRY, maxAttempts: 1 } });
  const pipeline = new Pipeline({
    store,
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain(),
    log: silentLogger,
    dispatcher,
    backoffMs: 1,
  });
  return { pipeline, sent };
}
