/**
 * Incident webhook bodies for revision tests, built from the sample incident: the same incident
 * (one name) created and updated, with no analytic rule code, so its severity follows the
 * provider's and each Update can move it up or down.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAMPLES } from './cli';

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
