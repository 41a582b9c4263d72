/**
 * The parse step (public API): one delivery (HTTP body, replay document, Event Hub batch)
 * → one outcome per item. Shapes are detected per item; a bad item is its own `rejected`
 * outcome naming JSON paths, and its neighbours still parse. Never throws for bad input.
 *
 * Paths: `$` is the whole body, `$[2]` an array item, `$.records[0]` a record of a single
 * envelope, `$[0].records[1]` a record of the first envelope of a batch; issue paths inside
 * an item are appended (`$[0].records[1].TimeGenerated`, `$[0].Entities[3].Address`).
 *
 * Limits (exported from inputs/common.ts): MAX_ITEMS_PER_BODY items per HTTP delivery (a larger
 * delivery is one rejection at `$`) and per Event Hub event or replay envelope (a larger event is
 * one rejection at its own path; the batch's other events go through), MAX_ENTITIES_PER_ALERT entities per alert,
 * MAX_STRING_CHARS per string field; the 1 MiB body limit is applied by `parseJsonText`.
 */
import { createHash } from 'node:crypto';
import { type InputIssue, InputValidationError } from '../errors';
import type { Case, InputShape } from './domain';
import {
  type CaseContent,
  canonicalJson,
  childPath,
  issuesFromZod,
  jsonTypeOf,
  MAX_ITEMS_PER_BODY,
  PARSE_OPTS,
  type ReadResult,
} from './inputs/common';
import { decodeEvent, eventHubEnvelopeSchema, looksLikeEnvelope } from './inputs/eventhub';
import { looksLikeGeneric, readGeneric } from './inputs/generic';
import { looksLikeIncident, readIncident } from './inputs/incident';
import { canonicalId, readSecurityAlert, SECURITY_ALERT_MARKERS, SECURITY_ALERT_TABLE } from './inputs/securityAlert';

export { MAX_ALERTS_PER_INCIDENT, MAX_ENTITIES_PER_ALERT, MAX_ITEMS_PER_BODY, MAX_STRING_CHARS, RULE_CODE_RE } from './inputs/common';

/** What became of one item of a delivery. */
export type ParseOutcome =
  | { readonly status: 'ok'; readonly path: string; readonly case: Case }
  | {
      readonly status: 'rejected';
      readonly path: string;
      readonly error: InputValidationError;
      readonly raw: unknown;
      readonly tenantId?: string;
    }
  | { readonly status: 'ignored'; readonly path: string; readonly reason: string };

/** The kinds of delivery the pipeline accepts. */
export const BODY_KINDS = ['incident', 'alerts', 'eventhub-batch', 'auto'] as const;
/**
 * - `incident`: one Sentinel incident trigger body.
 * - `alerts`: a SecurityAlert row, an array of rows, an envelope, an array of envelopes, a generic
 *   alert or an array of them (detected per item).
 * - `eventhub-batch`: the Event Hub trigger's array of events (envelope objects, JSON strings or bytes).
 * - `auto`: any of the above (`triage replay`).
 */
export type BodyKind = (typeof BODY_KINDS)[number];

type Reader = 'incident' | 'security-alert' | 'generic';

type Work =
  | {
      readonly t: 'read';
      readonly reader: Reader;
      readonly shape: InputShape;
      readonly path: string;
      readonly value: Record<string, unknown>;
    }
  | { readonly t: 'reject'; readonly path: string; readonly issues: InputIssue[]; readonly raw: unknown; readonly cause?: unknown }
  | { readonly t: 'ignore'; readonly path: string; readonly reason: string };

interface ExpandOptions {
  /** Incident bodies accepted as items (auto). */
  readonly incidents: boolean;
  /** JSON strings and bytes decoded (Event Hub events, auto). */
  readonly decode: boolean;
  /** What an item should have been, for error messages. */
  readonly expected: string;
}

const ALERTS_EXPECTED = 'SecurityAlert row, envelope or generic alert';
const ALERTS: ExpandOptions = { incidents: false, decode: false, expected: ALERTS_EXPECTED };
const BATCH: ExpandOptions = {
  incidents: false,
  decode: true,
  expected: 'Event Hub event: envelope {"records":[…]}, SecurityAlert row or generic alert',
};
const AUTO: ExpandOptions = { incidents: true, decode: true, expected: 'incident body, SecurityAlert row, envelope or generic alert' };

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(v: unknown): string {
  return v instanceof Uint8Array ? 'bytes' : jsonTypeOf(v);
}

function reject(path: string, reason: string, raw: unknown, cause?: unknown): Work {
  return { t: 'reject', path, issues: [{ path, reason }], raw, cause };
}

function looksLikeRow(o: Record<string, unknown>): boolean {
  for (const m of SECURITY_ALERT_MARKERS) if (m !== 'Type' && m in o) return true;
  // `Type` alone does not make a row of a generic alert (whose unknown members are ignored): read as a row,
  // `"Type": "Alert"` made it a record of another table, ignored, never parked, and the alert was lost.
  return 'Type' in o && !looksLikeGeneric(o);
}

function keysHint(o: Record<string, unknown>): string {
  const keys = Object.keys(o);
  if (keys.length === 0) return 'empty object';
  const shown = keys.slice(0, 6).map((k) => JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k));
  return `object with keys ${shown.join(', ')}${keys.length > 6 ? ', …' : ''}`;
}

const SECURITY_ALERT_TABLE_LOWER = SECURITY_ALERT_TABLE.toLowerCase();
/** A Log Analytics table name (`SigninLogs`, `MyTable_CL`): what `Type` holds in a row of another table. */
const TABLE_NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * `Type` as compared with the table name: compatibility forms folded (NFKC: full-width letters), every
 * invisible character dropped (white space, controls such as NUL, format characters such as a zero-width
 * space, a soft hyphen or a BOM), and lower-cased with both Turkish i's as `i` (a .NET forwarder upper-casing
 * in a Turkish culture writes `SECURİTYALERT`). None of these makes another table.
 */
function foldType(type: string): string {
  return type
    .normalize('NFKC')
    .replace(/[\s\p{Cc}\p{Cf}]/gu, '')
    .replace(/[İı]/g, 'i')
    .toLowerCase();
}

/**
 * What a row whose string `Type` is not exactly SECURITY_ALERT_TABLE is: called only after that
 * comparison failed, so the common row pays nothing. `undefined` means "read it as a SecurityAlert row":
 * a forwarder that changed the case, the width or the Turkish i's of the name, or padded it with white space
 * or invisible characters (`"securityalert"`, `" SecurityAlert "`, `"SecurityAlert\u200b"`), still sent the
 * SecurityAlert table, and ignoring it lost the alert (ignored items are not parked). The row reader
 * accepts any `Type` text and leaves it out of the case, so such a row triages (and fingerprints) exactly as
 * `"SecurityAlert"`. An empty or blank `Type` (invisible characters only) names no table: refused at its path,
 * never ignored. Only a `Type` that is a table name (`SigninLogs`) is another table, ignored; any other text
 * (`"\"SecurityAlert\""`, `"SecurityAlert."`) names no table either and is refused, so a mangled name parks the
 * alert instead of losing it.
 * A `Type` that is not a string never reaches here: null is read as an absent column (as every nullable
 * column is; the row triages), and any other JSON type is refused by the row schema at `….Type`
 * ("expected string"); both keep the alert, so neither is changed.
 */
function typeOtherThanSecurityAlert(type: string, path: string, raw: unknown): Work | undefined {
  const t = foldType(type);
  const refuse = (reason: string): Work => ({ t: 'reject', path, issues: [{ path: childPath(path, 'Type'), reason }], raw });
  if (t === '') return refuse('Type is empty: expected a Log Analytics table name');
  if (t === SECURITY_ALERT_TABLE_LOWER) return undefined;
  if (!TABLE_NAME_RE.test(type.trim()))
    return refuse(`Type ${JSON.stringify(type.slice(0, 80))} is not a Log Analytics table name (expected ${SECURITY_ALERT_TABLE})`);
  return { t: 'ignore', path, reason: `record of table ${JSON.stringify(type.slice(0, 80))} is not a SecurityAlert` };
}

function expandRecord(rec: unknown, path: string, out: Work[]): void {
  if (!isObj(rec)) {
    out.push(reject(path, `expected an object (SecurityAlert row), got ${describe(rec)}`, rec));
    return;
  }
  const type = rec.Type;
  if (typeof type === 'string' && type !== SECURITY_ALERT_TABLE) {
    const other = typeOtherThanSecurityAlert(type, path, rec);
    if (other) {
      out.push(other);
      return;
    }
  }
  out.push({ t: 'read', reader: 'security-alert', shape: 'eventhub-envelope', path, value: rec });
}

function expandItem(item: unknown, path: string, opts: ExpandOptions, out: Work[]): void {
  let v = item;
  if (opts.decode && (typeof v === 'string' || v instanceof Uint8Array)) {
    const d = decodeEvent(v);
    if (!d.ok) {
      // Event Hub events are meant to be JSON; in a replay document a string item is just a wrong shape.
      const reason = opts.incidents ? `expected an object (${opts.expected}), got ${describe(v)} that is not JSON` : d.reason;
      out.push(reject(path, reason, item, d.cause));
      return;
    }
    v = d.value;
  }
  if (!isObj(v)) {
    // Where items are JSON values (an HTTP alerts body), a string item is a JSON string: kept as its JSON, so
    // `parked replay` reads the same string and gives the same reason (kept bare, `hello` was not JSON at all).
    const raw = typeof item === 'string' && !opts.decode ? JSON.stringify(item) : item;
    out.push(reject(path, `expected an object (${opts.expected}), got ${describe(v)}`, raw));
    return;
  }
  // An item with a `records` member (a generic alert's unknown member) is that item: read as an envelope, a
  // generic alert with `"records": []` was ignored, never parked, and lost; with records, only they were kept.
  if (looksLikeEnvelope(v) && !looksLikeIncident(v) && !looksLikeRow(v) && !looksLikeGeneric(v)) {
    const r = eventHubEnvelopeSchema.safeParse(v, PARSE_OPTS);
    if (!r.success) {
      out.push({ t: 'reject', path, issues: issuesFromZod(r.error.issues, path), raw: item });
      return;
    }
    const records = r.data.records;
    if (records.length === 0) {
      out.push({ t: 'ignore', path, reason: 'envelope without records' });
      return;
    }
    const recordsPath = childPath(path, 'records');
    for (let j = 0; j < records.length; j++) expandRecord(records[j], childPath(recordsPath, j), out);
    return;
  }
  if (looksLikeIncident(v)) {
    if (opts.incidents) out.push({ t: 'read', reader: 'incident', shape: 'incident', path, value: v });
    else
      out.push(
        reject(path, `an incident trigger body is not accepted here (send it to /api/incidents); expected a ${opts.expected}`, item),
      );
    return;
  }
  if (looksLikeRow(v)) {
    const type = v.Type;
    if (typeof type === 'string' && type !== SECURITY_ALERT_TABLE) {
      // The decoded event, as a read refusal keeps it: its tenant is guessed from it (a JSON string tells none).
      const other = typeOtherThanSecurityAlert(type, path, v);
      if (other) {
        out.push(other);
        return;
      }
    }
    out.push({ t: 'read', reader: 'security-alert', shape: 'security-alert', path, value: v });
    return;
  }
  if (looksLikeGeneric(v)) {
    out.push({ t: 'read', reader: 'generic', shape: 'generic', path, value: v });
    return;
  }
  out.push(reject(path, `unrecognised ${keysHint(v)}: expected ${/^[aeiou]/i.test(opts.expected) ? 'an' : 'a'} ${opts.expected}`, item));
}

function expand(body: unknown, kind: BodyKind): Work[] {
  const out: Work[] = [];
  if (kind === 'incident') {
    if (isObj(body)) out.push({ t: 'read', reader: 'incident', shape: 'incident', path: '$', value: body });
    else out.push(reject('$', `expected an object (incident trigger body), got ${describe(body)}`, body));
    return out;
  }
  const opts = kind === 'alerts' ? ALERTS : kind === 'eventhub-batch' ? BATCH : AUTO;
  if (Array.isArray(body)) {
    if (body.length > MAX_ITEMS_PER_BODY)
      return [reject('$', `${body.length} items exceed the limit of ${MAX_ITEMS_PER_BODY} per delivery`, body)];
    if (body.length === 0) return [{ t: 'ignore', path: '$', reason: 'empty array' }];
    for (let i = 0; i < body.length; i++) {
      const before = out.length;
      expandItem(body[i], `$[${i}]`, opts, out);
      // An Event Hub event (or a replay file's envelope) is judged on its own: one with too many
      // records is refused alone, kept whole (an event is at most 1 MB), and its neighbours still go
      // through. Refusing the whole batch lost them: the host checkpoints past a batch that returns.
      const added = out.length - before;
      if (kind !== 'alerts' && added > MAX_ITEMS_PER_BODY) {
        out.splice(before, added, reject(`$[${i}]`, `${added} records exceed the limit of ${MAX_ITEMS_PER_BODY} per event`, body[i]));
      }
    }
  } else {
    expandItem(body, '$', opts, out);
  }
  // An HTTP body (at most 1 MiB) or a single event is one delivery: more items than the limit refuse it whole.
  if ((kind === 'alerts' || !Array.isArray(body)) && out.length > MAX_ITEMS_PER_BODY)
    return [reject('$', `${out.length} items exceed the limit of ${MAX_ITEMS_PER_BODY} per delivery`, body)];
  return out;
}

const TENANT_RE = /^[\w.-]{1,128}$/;

/**
 * Best-effort tenant of a rejected item (for parking per tenant); undefined when not recognisable.
 * Looks at the item and, for an envelope, its first record: two levels, never deeper, because a
 * rejected item may be nested thousands deep (recursing on it overflowed the stack, and the throw
 * made the Event Hub host retry the batch forever).
 */
function guessTenant(raw: unknown): string | undefined {
  let item = raw;
  for (let level = 0; level < 2 && isObj(item); level++) {
    for (const k of ['TenantId', 'workspaceId', 'tenantId']) {
      const v = item[k];
      if (typeof v === 'string' && TENANT_RE.test(v)) return canonicalId(v);
    }
    const records = item.records;
    item = Array.isArray(records) ? records[0] : undefined;
  }
  return undefined;
}

/**
 * sha256 (hex) of the canonical JSON (sorted keys) of a case's content: everything except
 * receivedAt, shape and the fingerprint. The same alert delivered as a plain row and inside
 * an Event Hub envelope therefore has the same fingerprint; any content change changes it.
 */
export function caseFingerprint(content: CaseContent): string {
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

function finish(content: CaseContent, shape: InputShape, receivedAt: string): Case {
  const c: Case = {
    caseId: content.caseId,
    tenantId: content.tenantId,
    source: content.source,
    shape,
    ...(content.sentinel ? { sentinel: content.sentinel } : {}),
    title: content.title,
    ...(content.description ? { description: content.description } : {}),
    providerSeverity: content.providerSeverity,
    alerts: content.alerts,
    entities: content.entities,
    detectedAt: content.detectedAt,
    receivedAt,
    revisionKey: content.revisionKey,
    fingerprint: caseFingerprint(content),
  };
  return c;
}

function read(w: Extract<Work, { t: 'read' }>): ReadResult {
  switch (w.reader) {
    case 'incident':
      return readIncident(w.value, w.path);
    case 'security-alert':
      return readSecurityAlert(w.value, w.path);
    case 'generic':
      return readGeneric(w.value, w.path);
    default: {
      const never: never = w.reader;
      return never;
    }
  }
}

function outcome(w: Work, receivedAt: string): ParseOutcome {
  switch (w.t) {
    case 'ignore':
      return { status: 'ignored', path: w.path, reason: w.reason };
    case 'reject': {
      const tenantId = guessTenant(w.raw);
      const error = new InputValidationError(w.issues, w.cause === undefined ? undefined : { cause: w.cause });
      return { status: 'rejected', path: w.path, error, raw: w.raw, ...(tenantId ? { tenantId } : {}) };
    }
    case 'read': {
      let r: ReadResult;
      try {
        r = read(w);
      } catch (err) {
        // A reader bug must not lose the item or its neighbours: park it with the cause.
        r = { ok: false, issues: [{ path: w.path, reason: `could not be read (${err instanceof Error ? err.name : 'error'})` }] };
        const tenantId = guessTenant(w.value);
        return {
          status: 'rejected',
          path: w.path,
          error: new InputValidationError(r.issues, { cause: err }),
          raw: w.value,
          ...(tenantId ? { tenantId } : {}),
        };
      }
      if (r.ok) return { status: 'ok', path: w.path, case: finish(r.content, w.shape, receivedAt) };
      const tenantId = guessTenant(w.value);
      return {
        status: 'rejected',
        path: w.path,
        error: new InputValidationError(r.issues),
        raw: w.value,
        ...(tenantId ? { tenantId } : {}),
      };
    }
    default: {
      const never: never = w;
      return never;
    }
  }
}

/**
 * One HTTP body / one replay document / one Event Hub batch → one outcome per item.
 * Never throws for bad items; each bad item is its own 'rejected' outcome and neighbours
 * still parse. `receivedAt` (ISO 8601) is stamped on every case and excluded from fingerprints.
 */
export function parseBody(body: unknown, kind: BodyKind, receivedAt: string): ParseOutcome[] {
  const work = expand(body, kind);
  const out: ParseOutcome[] = new Array(work.length);
  for (let i = 0; i < work.length; i++) out[i] = outcome(work[i] as Work, receivedAt);
  return out;
}
