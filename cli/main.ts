/**
 * `triage` — the command line: serve (local runtime), replay, parked, policy check, send.
 * Results go to stdout (one JSON line per new case or revision for replay); logs and errors to stderr.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { InvocationContext } from '@azure/functions';
import { parseIp } from '../shared/config/networks';
import { duplicateTenants, parsePolicy, policyFilesAt, type TenantPolicy, withPolicyLines } from '../shared/config/policy';
import { PolicyError } from '../shared/errors';
import { createLogger, type Logger } from '../shared/log';
import type { TriageResult } from '../shared/model/domain';
import { canonicalId } from '../shared/model/inputs/securityAlert';
import { startDrainLoop } from '../shared/notify/outbox';
import type { ItemOutcome } from '../shared/pipeline/pipeline';
import { createRuntime, type Runtime, setRuntime } from '../shared/runtime';
import { openSqliteStore } from '../shared/store/sqlite';
import { checkPolicy } from '../shared/triage/checkPolicy';
import { type FileDocument, readAllDocuments } from './documents';
import { registered } from './host/functionsCore';
import { installFunctionsCore } from './host/install';
import { drainTimeoutFromEnv, startLocalHost } from './host/server';
import { createProgress } from './progress';
import { eventHubOption, republishParked, send } from './send';
import { UsageError } from './usage';

const USAGE = `usage: triage <command> [options]

commands:
  serve [--host 127.0.0.1] [--port 7071]       run the Function app's HTTP routes locally (npm start), on a loopback address only
  replay FILE... [--persist]                   triage JSON / NDJSON / envelope files; one TriageResult JSON line per new case or
                                               revision on stdout; exit 1 if anything was rejected (an empty file included), exit 2
                                               if a file cannot be read. In-memory store unless --persist.
  parked [list] [--tenant ID] [--all] [--limit 1000]
                                               list parked (rejected or failed) items from the configured store
  parked replay [--eventhub NAMESPACE/HUB]     re-run parked items through the pipeline (or re-publish them to a hub)
  policy check FILE|DIR...                     validate tenant policy files (and across them: duplicate tenants); every error with its path
  send FILE... --eventhub NAMESPACE/HUB        publish SecurityAlert records to an Event Hub in the export envelope shape
  stream FILE... [--batch 100]                 feed Event Hub events (an array of envelopes, or NDJSON) to the registered
                                               alertStream function in batches, as the trigger would, on the configured store

environment: see README "Configuration" (STORE, SQLITE_FILE, POLICY_DIR, INDICATOR_FILES, OUTBOX_FILE, LOG_LEVEL, …)`;

/** How often `triage serve` drains the outbox: the schedule of the Function app's outboxDrain timer. */
const OUTBOX_DRAIN_EVERY_MS = 60_000;

/** Exit codes. */
const EXIT = { ok: 0, rejected: 1, usage: 2, error: 3 } as const;

/** `parseArgs` refused the command line (unknown option, missing value, `--limit -1`); Node marks these by `code`. */
function isParseArgsError(e: unknown): e is Error {
  return e instanceof TypeError && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS_');
}

/**
 * An option that must be a whole number from `min` to `max`. Checked here, at the edge, because
 * `Number()` lets `abc` through as NaN and `-1` through as a number SQLite reads as "no limit".
 */
function intOption(name: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, got "${value}"`);
  }
  return n;
}

/**
 * `serve --host`: a loopback address only (`localhost`, 127.0.0.0/8, `::1`). The local host checks no
 * function keys (as `func start`), so an address other machines can reach would let anyone post alerts
 * and read cases; the Function app in Azure is the way to serve beyond this machine.
 */
function loopbackHost(value: string): string {
  const host = value.trim().replace(/^\[(.*)\]$/, '$1');
  if (host.toLowerCase() === 'localhost') return host;
  // parseIp (canonicalIp): `::127.0.0.1` is the IPv4-compatible `::7f00:1`, not loopback (ipaddr.js alone reads ::ffff:127.0.0.1).
  if (parseIp(host)?.range === 'loopback') return host;
  throw new UsageError(`--host must be a loopback address (127.0.0.1, ::1 or localhost), as no function keys are checked; got "${value}"`);
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}
function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function serve(args: string[], log: Logger): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '7071' } },
  });
  const port = intOption('port', values.port, 0, 65_535);
  const listenHost = loopbackHost(values.host);
  const drainTimeoutMs = drainTimeoutFromEnv(process.env); // before the runtime opens: a bad value fails fast
  const rt = await createRuntime(process.env, { log });
  await rt.store.warm?.(); // before listening: the first request should not pay for it
  setRuntime(rt);
  installFunctionsCore();
  require('../functions/index');
  const host = await startLocalHost({ host: listenHost, port, log, bodyLimit: rt.settings.maxBodyBytes, drainTimeoutMs });
  log.info('serve.listening', { url: host.url });
  // What the Function app's outboxDrain timer does in Azure: send the outbox entries that are due
  // (a retry after a failed send, a first attempt a crash interrupted), every minute.
  const drainLoop = rt.dispatcher ? startDrainLoop(rt.dispatcher, log, OUTBOX_DRAIN_EVERY_MS) : undefined;
  err(`sentinel-triage listening on ${host.url}  (POST /api/incidents, POST /api/alerts, GET /api/cases/{id}, GET /api/health)`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('serve.draining', { signal });
      void host.drain().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await drainLoop?.stop();
  await rt.close();
  log.info('serve.stopped');
  return EXIT.ok;
}

function printRejected(label: string, item: ItemOutcome): void {
  const issues = item.error?.issues ?? [{ path: item.path, reason: item.error?.message ?? 'rejected' }];
  for (const i of issues) err(`${label}: ${item.status}: ${i.path}: ${i.reason}`);
}

async function replay(args: string[], log: Logger): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { persist: { type: 'boolean', default: false } } });
  if (positionals.length === 0) {
    err('replay: name at least one file');
    return EXIT.usage;
  }
  // Default: a private in-memory store, so the output shows what the pipeline decides for these
  // files alone; --persist writes to the configured store (and its outbox) instead.
  const env = values.persist ? process.env : { ...process.env, OUTBOX_FILE: '' };
  const rt: Runtime = await createRuntime(env, values.persist ? { log } : { log, store: openSqliteStore({ file: ':memory:', log }) });
  let rejected = 0;
  // A file that cannot be read (missing, a directory, no permission) is a wrong command line, not a
  // rejected alert: it is counted apart so the exit code says which; the other files still run.
  let unreadable = 0;
  try {
    const read = readAllDocuments(positionals, err);
    // Nothing to triage is an input the user did not mean to give: rejected, for .json and .ndjson alike.
    rejected += read.empty;
    unreadable = read.unreadable;
    const docs = read.files.flatMap((f) => f.docs);
    const progress = createProgress(docs.length, 'replay');
    for (const doc of docs) {
      const outcome = await rt.pipeline.ingestText(doc.text, { kind: 'auto', source: `replay:${doc.label}` });
      for (const item of outcome.items) {
        switch (item.status) {
          case 'triaged':
          case 'revised':
            out(JSON.stringify(item.result as TriageResult));
            break;
          case 'duplicate':
          case 'stale':
            log.debug('replay.skipped', { caseId: item.caseId, status: item.status });
            break;
          case 'ignored':
            err(`${doc.label}: ignored: ${item.path}: ${item.error?.message ?? ''}`);
            break;
          case 'rejected':
          case 'failed':
            rejected++;
            printRejected(doc.label, item);
            break;
          default: {
            const never: never = item.status;
            throw new Error(`unhandled status ${String(never)}`);
          }
        }
      }
      progress.tick();
    }
    progress.done();
  } finally {
    await rt.close();
  }
  if (unreadable > 0) return EXIT.usage;
  return rejected > 0 ? EXIT.rejected : EXIT.ok;
}

async function parked(args: string[], log: Logger): Promise<number> {
  const sub = args[0] === 'replay' || args[0] === 'list' ? args[0] : 'list';
  const rest = args[0] === sub ? args.slice(1) : args;
  const { values } = parseArgs({
    args: rest,
    options: {
      tenant: { type: 'string' },
      all: { type: 'boolean', default: false },
      eventhub: { type: 'string' },
      limit: { type: 'string', default: '1000' },
    },
  });
  const limit = intOption('limit', values.limit, 1);
  // Checked before the store opens: a malformed target is a wrong command line, found before any item is read.
  const eventhub = sub === 'replay' ? eventHubOption(values.eventhub) : undefined;
  // Tenant ids are stored canonical (GUIDs lower-cased, as every input is read), so `--tenant` is read the same way.
  const tenantId = values.tenant?.trim() ? canonicalId(values.tenant.trim()) : undefined;
  const rt = await createRuntime(process.env, { log });
  try {
    const items = await rt.store.listParked({
      ...(tenantId ? { tenantId } : {}),
      limit,
      includeReplayed: values.all,
    });
    if (sub === 'list') {
      for (const p of items)
        out(
          JSON.stringify({
            id: p.id,
            parkedAt: p.parkedAt,
            source: p.source,
            tenantId: p.tenantId,
            errorName: p.errorName,
            issues: p.issues,
            replayedAt: p.replayedAt,
          }),
        );
      err(`${items.length} parked item(s)`);
      return EXIT.ok;
    }
    if (eventhub) {
      return await republishParked(rt, items, eventhub, log);
    }
    let still = 0;
    for (const p of items) {
      const outcome = await rt.pipeline.ingestText(p.body, { kind: 'auto', source: p.source });
      const ok = outcome.items.every((i) => i.status !== 'rejected' && i.status !== 'failed');
      // Still failing: the pipeline parked it again under the path it has inside this body (`$`, not
      // `$[0].records[1]`), so a new id. That entry, with today's reason, supersedes this one; marking
      // this one replayed keeps one listed entry per item that still needs attention, not two.
      const reparked = outcome.items.flatMap((i) => (i.parkedId !== undefined && i.parkedId !== p.id ? [i.parkedId] : []));
      if (ok || reparked.length > 0) await rt.store.markParkedReplayed(p.id, new Date().toISOString());
      if (!ok) still++;
      out(JSON.stringify({ id: p.id, replayed: ok, counts: outcome.counts, ...(reparked.length > 0 ? { parkedAs: reparked } : {}) }));
    }
    return still > 0 ? EXIT.rejected : EXIT.ok;
  } finally {
    await rt.close();
  }
}

/**
 * Events of a stream file's documents: a JSON array is one event per element (the trigger's batch shape); NDJSON one per
 * line, as text (the handler parses each, and parks a line that is not JSON as the trigger would).
 *
 * @throws SyntaxError when the file is one document that is not JSON: it cannot be split into events at all.
 */
function eventsOf(docs: readonly FileDocument[]): unknown[] {
  if (docs.length !== 1) return docs.map((d) => d.text);
  const doc: unknown = JSON.parse(docs[0]?.text ?? 'null');
  return Array.isArray(doc) ? doc : [doc];
}

async function stream(args: string[], log: Logger): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { batch: { type: 'string', default: '100' } } });
  const size = intOption('batch', values.batch, 1);
  if (positionals.length === 0) throw new UsageError('name at least one file');
  // Every file is read before the store opens: a file that cannot be read is a usage error (exit 2, as
  // for replay), and since stream writes to the configured store, a wrong command line writes nothing.
  const { files, empty, unreadable } = readAllDocuments(positionals, err);
  if (unreadable > 0) return EXIT.usage;
  // A file that is one document but not JSON is refused like an empty one (named, exit 1, the others still streamed),
  // and before the store opens, not as a crash of the command half-way through.
  let notJson = 0;
  const events = files.flatMap((f) => {
    try {
      return eventsOf(f.docs);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      err(`${f.docs[0]?.label ?? f.file}: not JSON: ${e.message}`);
      notJson++;
      return [];
    }
  });
  const rt = await createRuntime(process.env, { log });
  await rt.store.warm?.(); // before the first batch: it should not pay for it
  setRuntime(rt);
  try {
    installFunctionsCore();
    require('../functions/index');
    const fn = registered.find((f) => f.name === 'alertStream');
    if (!fn) throw new Error('alertStream is not registered');
    const progress = createProgress(events.length, 'stream');
    for (let i = 0; i < events.length; i += size) {
      const batch = events.slice(i, i + size);
      await fn.handler(batch, new InvocationContext({ functionName: 'alertStream', invocationId: `local-${i / size}` }));
      progress.tick(batch.length);
    }
    progress.done();
    err(`${events.length} event(s) in ${Math.ceil(events.length / size)} batch(es)`);
    return empty + notJson > 0 ? EXIT.rejected : EXIT.ok;
  } finally {
    await rt.close();
  }
}

async function policy(args: string[]): Promise<number> {
  if (args[0] !== 'check' || args.length < 2) {
    err('usage: triage policy check FILE|DIR...');
    return EXIT.usage;
  }
  let bad = 0;
  // Each file is read once: its text places the errors found after parsing (checkPolicy, duplicate tenants)
  // on their lines, as parsePolicy does for schema errors.
  const texts = new Map<string, string>();
  const report = (file: string, e: unknown): void => {
    bad++;
    if (e instanceof PolicyError) {
      const text = texts.get(file);
      for (const i of text === undefined ? e.issues : withPolicyLines(text, e.issues)) err(`${file}: ${i.path}: ${i.reason}`);
    } else err(`${file}: ${(e as Error).message}`);
  };
  // Valid files are only reported ok once checked against each other, as the registry will.
  const valid: { policy: TenantPolicy; file: string }[] = [];
  const seen = new Set<string>(); // a file named twice (`dir dir/a.yaml`) is one file, not its own duplicate
  for (const arg of args.slice(1)) {
    let files: string[];
    try {
      files = policyFilesAt(arg);
    } catch (e) {
      report(arg, e);
      continue;
    }
    if (files.length === 0) {
      bad++;
      err(`${arg}: no policy files (*.yaml, *.yml)`);
    }
    for (const file of files) {
      if (seen.has(file)) continue;
      seen.add(file);
      try {
        const text = readFileSync(file, 'utf8');
        const p = parsePolicy(text, file); // its schema errors already carry their lines
        const issues = checkPolicy(p);
        // Only now: parsePolicy's own errors carry their lines already, and `report` would add a second.
        texts.set(file, text);
        if (issues.length > 0) throw new PolicyError(file, issues);
        valid.push({ policy: p, file });
      } catch (e) {
        report(file, e);
      }
    }
  }
  const duplicates = duplicateTenants(valid);
  for (const d of duplicates) report(d.file, d);
  const refused = new Set(duplicates.map((d) => d.file));
  for (const { policy: p, file } of valid) {
    if (refused.has(file)) continue;
    out(`ok ${file}: tenant ${p.tenant.id} (${p.tenant.name}), ${Object.keys(p.rules).length} rules, ${p.contacts.length} contacts`);
  }
  return bad > 0 ? EXIT.rejected : EXIT.ok;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // replay reports every rejection itself on stderr; its log lines would only repeat them.
  const quiet = command === 'replay' && process.env.LOG_LEVEL === undefined;
  const log = createLogger(quiet ? { level: 'error' } : undefined);
  try {
    switch (command) {
      case 'serve':
        return await serve(rest, log);
      case 'replay':
        return await replay(rest, log);
      case 'parked':
        return await parked(rest, log);
      case 'policy':
        return await policy(rest);
      case 'stream':
        return await stream(rest, log);
      case 'send':
        return await send(rest, log);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        out(USAGE);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        err(`unknown command "${command}"\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (e) {
    if (e instanceof UsageError || isParseArgsError(e)) {
      err(`triage ${command}: ${e.message}`);
      return EXIT.usage;
    }
    err(`triage ${command}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return EXIT.error;
  }
}
