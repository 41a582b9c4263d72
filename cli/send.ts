/**
 * `triage send` and `triage parked replay --eventhub`: publish SecurityAlert records to
 * an Event Hub in the Log Analytics export envelope shape, for end-to-end checks and load
 * tests of a deployment, and to re-inject parked events after a fix.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../shared/errors';
import { asProducerLike, createEventHubProducerFromEnv, parseEventHubTarget } from '../shared/eventhubs/client';
import { type ExportRecord, publishRecords } from '../shared/eventhubs/publish';
import type { Logger } from '../shared/log';
import type { Runtime } from '../shared/runtime';
import type { ParkedItem } from '../shared/store/port';
import { readAllDocuments } from './documents';
import { UsageError } from './usage';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * SecurityAlert records of a document: a row, an array of rows, an envelope `{records}`,
 * or an array of envelopes (the Event Hub batch shape). Anything else is refused by path.
 */
export function recordsOf(doc: unknown, path = '$'): { records: ExportRecord[]; refused: string[] } {
  const records: ExportRecord[] = [];
  const refused: string[] = [];
  const visit = (v: unknown, p: string): void => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) visit(x, `${p}[${i}]`);
      return;
    }
    if (typeof v === 'string') {
      try {
        visit(JSON.parse(v), p);
      } catch {
        refused.push(`${p}: not JSON`);
      }
      return;
    }
    if (isObject(v) && Array.isArray(v.records)) {
      visit(v.records, `${p}.records`);
      return;
    }
    if (isObject(v) && typeof v.SystemAlertId === 'string') {
      records.push(v);
      return;
    }
    refused.push(`${p}: not a SecurityAlert record or export envelope`);
  };
  visit(doc, path);
  return { records, refused };
}

/**
 * The `--eventhub NAMESPACE/HUB` option, checked at the edge: a malformed target is a wrong command line (exit 2),
 * told before any file is read or parked item replayed, not as a failure (exit 3) once the work is done.
 *
 * @throws UsageError when the option is given but is not an Event Hub target.
 */
export function eventHubOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    parseEventHubTarget(value);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new UsageError(`--eventhub is not a usable Event Hub (${e.message})`, { cause: e });
  }
  return value;
}

async function publish(target: string | undefined, records: readonly ExportRecord[], log: Logger): Promise<void> {
  const client = createEventHubProducerFromEnv(target);
  try {
    const r = await publishRecords(asProducerLike(client), records, { log });
    process.stderr.write(`sent ${r.records} record(s) in ${r.events} event(s), ${r.batches} batch(es)\n`);
  } finally {
    await client.close();
  }
}

/** `triage send FILE… --eventhub NS/HUB`. */
export async function send(args: string[], log: Logger): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { eventhub: { type: 'string' } } });
  const target = eventHubOption(values.eventhub);
  if (positionals.length === 0 || (!target && !process.env.EVENTHUB_CONNECTION_STRING)) {
    process.stderr.write('usage: triage send FILE... --eventhub NAMESPACE/HUB\n');
    return 2;
  }
  const all: ExportRecord[] = [];
  const read = readAllDocuments(positionals, (message) => process.stderr.write(`${message}\n`));
  const { files, unreadable } = read;
  let refused = read.empty;
  // A file that cannot be read is a usage error (exit 2, as for replay), told before anything is
  // sent: a wrong command line publishes nothing, so the corrected run does not send the rest twice.
  if (unreadable > 0) return 2;
  for (const { file, docs } of files) {
    for (const d of docs) {
      let doc: unknown;
      try {
        doc = JSON.parse(d.text);
      } catch (e) {
        // Refused like a record that is not a SecurityAlert (named, exit 1, the rest still sent), not a crash (exit 3).
        if (!(e instanceof SyntaxError)) throw e;
        process.stderr.write(`${d.label}: not JSON: ${e.message}\n`);
        refused++;
        continue;
      }
      const r = recordsOf(doc, file);
      all.push(...r.records);
      for (const msg of r.refused) process.stderr.write(`${msg}\n`);
      refused += r.refused.length;
    }
  }
  await publish(target, all, log);
  return refused > 0 ? 1 : 0;
}

/** `triage parked replay --eventhub NS/HUB`: re-publishes parked Event Hub records and marks them replayed. */
export async function republishParked(rt: Runtime, items: readonly ParkedItem[], target: string, log: Logger): Promise<number> {
  const records: ExportRecord[] = [];
  const done: string[] = [];
  let skipped = 0;
  for (const p of items) {
    let doc: unknown;
    try {
      doc = JSON.parse(p.body);
    } catch {
      skipped++;
      process.stderr.write(`${p.id}: body is not JSON; replay it locally after fixing the source\n`);
      continue;
    }
    const r = recordsOf(doc);
    if (r.records.length === 0) {
      skipped++;
      process.stderr.write(`${p.id}: no SecurityAlert records (${p.source}); use \`triage parked replay\` without --eventhub\n`);
      continue;
    }
    records.push(...r.records);
    done.push(p.id);
  }
  if (records.length > 0) await publish(target, records, log);
  const at = new Date().toISOString();
  for (const id of done) await rt.store.markParkedReplayed(id, at);
  return skipped > 0 ? 1 : 0;
}
