/**
 * Property tests of the input edge: the team's samples, structurally mutated at random, must never
 * make parsing or ingestion throw (a throw answers 500 and stalls an Event Hub partition); every item
 * gets exactly one outcome; every rejection names a JSON path that exists in the input (or its parent,
 * for a missing field; an issue quoting a value names where that value is); no reader throws behind the
 * parse step's safety net; a rejected item is parked with its raw body and its valid neighbour is triaged;
 * the same delivery twice gives duplicates; a triaged result survives JSON.stringify / JSON.parse.
 *
 * Fixed seed and modest runs in CI (the file runs in a few seconds). To search further:
 * `FUZZ_SEED=7 FUZZ_RUNS=1500 FUZZ_PIPELINE_RUNS=100 FUZZ_STATS=1 npx jest tests/unit/model/fuzz.test.ts`.
 * Counterexamples found so far are plain tests in parse.fuzzFindings.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { PolicyRegistry } from '../../../shared/config/policy';
import { InputValidationError, TriageError } from '../../../shared/errors';
import { silentLogger } from '../../../shared/log';
import { stringifyJson } from '../../../shared/model/json';
import { BODY_KINDS, type BodyKind, type ParseOutcome, parseBody } from '../../../shared/model/parse';
import { OutboxDispatcher } from '../../../shared/notify/outbox';
import { fitParkedBody } from '../../../shared/pipeline/park';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT, SAMPLES } from '../../helpers/cli';

const RECEIVED = '2026-11-20T06:00:00.000Z';
const SEED = Number(process.env.FUZZ_SEED ?? 20261120);
const PARSE_RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const PIPELINE_RUNS = Number(process.env.FUZZ_PIPELINE_RUNS ?? 25);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Container = Json[] | { [k: string]: Json };

const sample = (name: string): Json => JSON.parse(readFileSync(join(SAMPLES, name), 'utf8')) as Json;
const examples = readdirSync(join(ROOT, 'examples'))
  .filter((f) => f.endsWith('.ndjson'))
  .flatMap((f) =>
    readFileSync(join(ROOT, 'examples', f), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Json),
  );

/** Each sample with the body kinds it may be delivered as. */
const SAMPLES_BY_KIND: readonly { readonly name: string; readonly value: Json; readonly kinds: readonly BodyKind[] }[] = [
  { name: 'incident', value: sample('incident-create-bruteforce.json'), kinds: ['incident', 'auto'] },
  { name: 'securityalert-records', value: sample('securityalert-records.json'), kinds: ['alerts', 'auto', 'eventhub-batch'] },
  { name: 'eventhub-batch', value: sample('eventhub-batch.json'), kinds: ['eventhub-batch', 'auto', 'alerts'] },
  { name: 'generic-alert', value: sample('generic-alert.json'), kinds: ['alerts', 'auto', 'eventhub-batch'] },
  ...examples.map((value, i) => ({ name: `example line ${i + 1}`, value, kinds: ['auto', 'alerts'] as const })),
];

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

const ODD_DATES = [
  '2016-12-31T23:59:60Z',
  '2026-11-20T03:42:60.000Z',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00Z',
  '0001-01-01',
  '9999-12-31T23:59:59.9999999Z',
  '9999-12-31T23:30:00.1234567-01:00',
  '1970-01-01T00:30:00.5+01:00',
  '1969-12-31T23:59:59.999Z',
  '2026-11-20T03:42:30+14:00',
  '2026-11-20T03:42:30-23:59',
  '2026-11-20T03:42:30+24:00',
  '2026-11-20T24:00:00Z',
  '2026-02-29T00:00:00Z',
  '2024-02-29T00:00:00Z',
  '2026-11-20',
  '2026-11-20T03:42:30',
  '+002026-11-20T03:42:30.000Z',
  '2026-11-20t03:42:30z',
  '2026-11-20 03:42:30,5+0100',
  '2026-11-20T03:42:30.1234567890Z',
  ' 2026-11-20T03:42:30Z ',
  '２０２６-11-20T03:42:30Z',
];

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\uDC00x\uD800',
  '\u202Eexe.gpj\u202C',
  '\u200F\u200E',
  '\uFEFF',
  'İı',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '<long 40000>',
  'y'.repeat(300),
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'null',
  '[',
  '{"a":',
  '[]',
  '{}',
  '42',
  '"str"',
  '[{"$ref":"2"}]',
  '[{"$id":"1","Type":"ip","Address":"10.0.0.1"},{"$ref":"1"},{"$ref":{"toString":1}}]',
  '{"__proto__":{"Rule Id":"K9-9"},"Analytic Rule Ids":"[\\"x\\"]"}',
  'S-1-5-21',
  'K4-1 x',
  'ip',
  'Host',
  'CloudApplication',
];

const deep = (n: number): Json => {
  let v: Json = [];
  for (let i = 0; i < n; i++) v = i % 2 === 0 ? [v] : { d: v };
  return v;
};

/** A value of another JSON type, or an odd string. */
const oddValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1e308, 0.5, -0, 2 ** 53 + 1, [], {}, [null], { '': null }),
  // Objects that String() cannot convert (their toString is not callable).
  fc.constantFrom<Json>({ toString: 1 }, { toString: {}, valueOf: null }),
  fc.constantFrom(...ODD_STRINGS),
  fc.constantFrom(...ODD_DATES),
  fc.constantFrom('<deep 40>', '<deep 3000>'),
  fc.string({ maxLength: 8, unit: 'binary' }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

/** Identifiers: empty, blank, huge, unicode, of another type. */
const oddId: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    '',
    '   ',
    'x'.repeat(257),
    '<long 70000>',
    'İd-\u202E',
    '\uD800',
    'a\u0000b',
    '__proto__',
    'constructor',
    0,
    null,
    [],
    {},
  ),
  fc.string({ minLength: 1, maxLength: 6, unit: 'grapheme' }),
);

/** `$ref` targets: existing ids, missing ones, and values that are no id at all. */
const refValue: fc.Arbitrary<Json> = fc.constantFrom<Json>(
  '2',
  '3',
  '4',
  '5',
  '6',
  '7',
  2,
  '999',
  '',
  null,
  [],
  {},
  { toString: 1 },
  { $ref: '2' },
  1.5,
);

/** Entity types the readers model (in their wire spellings), and some they do not. */
const ENTITY_TYPES = [
  'ip',
  'host',
  'account',
  'url',
  'dns',
  'DnsResolution',
  'domain',
  'filehash',
  'process',
  'file',
  'mailbox',
  'CloudApplication',
  'cloud-app',
  'malware',
  'constructor',
  '',
];

/** Field names the entity readers look at (PascalCase; the readers are case-insensitive). */
const ENTITY_FIELDS = [
  'Address',
  'HostName',
  'NetBiosName',
  'FQDN',
  'DnsDomain',
  'NTDomain',
  'AzureID',
  'Name',
  'Upn',
  'UserPrincipalName',
  'UPNSuffix',
  'Sid',
  'AadUserId',
  'Url',
  'DomainName',
  'Domain',
  'Value',
  'HashValue',
  'Algorithm',
  'Directory',
  'FileName',
  'ProcessId',
  'CommandLine',
  'CreationTimeUtc',
  'MailboxPrimaryAddress',
  'PrimaryAddress',
  'AppId',
  'Location',
] as const;

/** Values for entity fields: valid ones of each kind, and near misses. */
const entityFieldValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    '10.0.0.1',
    '::ffff:10.0.0.1',
    'fe80::1%eth0',
    '999.1.1.1',
    'ws-01',
    'ws-01.corp.example',
    'CORP\\ws-01',
    'a..b',
    'a b',
    '.',
    'x/y',
    'k.tanaka@contoso.example',
    'a@b@c',
    '@x',
    'S-1-5-21-1',
    'S-x',
    'https://bad.example/x',
    'http://[::1]:80/',
    'not a url',
    'd41d8cd98f00b204e9800998ecf8427e',
    'DA39A3EE5E6B4B0D3255BFEF95601890AFD80709',
    'abc',
    'SHA256',
    'MD5',
    'Unknown',
    'constructor',
    'C:\\Temp\\',
    '4711',
    '47 11',
    '2026-11-20T03:41:09Z',
    '2026-11-20',
    { CountryCode: 'JP', Asn: 1 },
  ),
  oddValue,
);

const entityFields: fc.Arbitrary<Record<string, Json>> = fc.dictionary(fc.constantFrom(...ENTITY_FIELDS), entityFieldValue, {
  minKeys: 0,
  maxKeys: 4,
});

const SPECIAL_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '$ref', '$id', 'Type', 'records'];

type Op =
  | { readonly t: 'drop'; readonly at: number }
  | { readonly t: 'set'; readonly at: number; readonly v: Json }
  | { readonly t: 'dup'; readonly at: number }
  | { readonly t: 'key'; readonly at: number; readonly k: string; readonly v: Json }
  | { readonly t: 'swapRefs'; readonly at: number; readonly to: number }
  | { readonly t: 'date'; readonly at: number; readonly v: string }
  | { readonly t: 'id'; readonly at: number; readonly v: Json }
  | { readonly t: 'chain'; readonly at: number; readonly n: number }
  | { readonly t: 'ref'; readonly at: number; readonly v: Json }
  | { readonly t: 'retype'; readonly at: number; readonly type: string }
  | { readonly t: 'entity'; readonly at: number; readonly type: string; readonly fields: Record<string, Json> }
  | { readonly t: 'inner'; readonly at: number; readonly op: Op }
  | { readonly t: 'breakInner'; readonly at: number; readonly v: string };

const leafOp = (at: fc.Arbitrary<number>): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ t: fc.constant('drop' as const), at }),
    fc.record({ t: fc.constant('set' as const), at, v: oddValue }),
    fc.record({ t: fc.constant('dup' as const), at }),
    fc.record({ t: fc.constant('key' as const), at, k: fc.constantFrom(...SPECIAL_KEYS), v: oddValue }),
    fc.record({ t: fc.constant('swapRefs' as const), at, to: fc.nat(40) }),
    fc.record({ t: fc.constant('date' as const), at, v: fc.constantFrom(...ODD_DATES) }),
    fc.record({ t: fc.constant('id' as const), at, v: oddId }),
    fc.record({ t: fc.constant('chain' as const), at, n: fc.constantFrom(2, 40, 3000) }),
    fc.record({ t: fc.constant('ref' as const), at, v: refValue }),
    fc.record({ t: fc.constant('retype' as const), at, type: fc.constantFrom(...ENTITY_TYPES) }),
    fc.record({ t: fc.constant('entity' as const), at, type: fc.constantFrom(...ENTITY_TYPES), fields: entityFields }),
  );

const anyAt = fc.nat(10_000);
/** One mutation: structural, or inside a JSON-in-string column (`Entities`, `ExtendedProperties`, …). */
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: leafOp(anyAt) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('inner' as const), at: anyAt, op: leafOp(anyAt) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('breakInner' as const),
      at: anyAt,
      v: fc.constantFrom('[{"$id":"2"', '{}', '[]', 'null', '42', '"x"', '[1,2]', '[[[[[[[]]]]]]]', ' ', '{"Rule Id":{}}'),
    }),
  },
);

type Slot = { readonly parent: Container; readonly key: string | number };

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

/** Every (parent, key) location of a value, breadth first, not descending into very deep values. */
function slots(root: Json): Slot[] {
  const out: Slot[] = [];
  const queue: { v: Container; depth: number }[] = isContainer(root) ? [{ v: root, depth: 0 }] : [];
  for (let q = queue.shift(); q !== undefined && out.length < 5_000; q = queue.shift()) {
    const keys: (string | number)[] = Array.isArray(q.v) ? q.v.map((_, i) => i) : Object.keys(q.v);
    for (const k of keys) {
      out.push({ parent: q.v, key: k });
      const child = (q.v as Record<string | number, Json>)[k];
      if (isContainer(child) && q.depth < 12) queue.push({ v: child, depth: q.depth + 1 });
    }
  }
  return out;
}

/** Strings holding JSON (Sentinel's JSON-in-string columns, an Event Hub event as text). */
function jsonStringSlots(root: Json): Slot[] {
  return slots(root).filter(({ parent, key }) => {
    const v = (parent as Record<string | number, Json>)[key];
    return typeof v === 'string' && /^\s*[[{]/.test(v) && tryParse(v) !== undefined;
  });
}

function tryParse(s: string): Json | undefined {
  try {
    return JSON.parse(s) as Json;
  } catch {
    return undefined;
  }
}

/**
 * The value a generated one stands for: huge and deep values are generated as markers, so that a
 * counterexample prints short (fast-check's printer recurses, and overflowed on a deep value).
 */
function materialise(given: Json): Json {
  const m = typeof given === 'string' ? /^<(deep|long) (\d+)>$/.exec(given) : null;
  if (m) return m[1] === 'deep' ? deep(Number(m[2])) : 'x'.repeat(Number(m[2]));
  // A copy: the arbitraries hand out shared constants, and a value inserted twice then mutated would become a cycle.
  return copy(given);
}

/** A deep copy whatever the depth (structuredClone recurses and overflows on a value 3,000 levels deep). */
function copy(v: Json): Json {
  // stringifyJson hands a string back as is (it is already the text to park).
  return !isContainer(v) ? v : (JSON.parse(stringifyJson(v)) as Json);
}

function setOwn(parent: Container, key: string | number, given: Json): void {
  const v = materialise(given);
  // defineProperty: `__proto__` must become an own member, as JSON.parse makes it, not the prototype.
  if (Array.isArray(parent)) parent[key as number] = v;
  else Object.defineProperty(parent, key, { value: v, enumerable: true, writable: true, configurable: true });
}

function refValues(root: Json): Slot[] {
  return slots(root).filter(({ key }) => key === '$ref' || key === '$id');
}

const DATE_LIKE = /^\s*\d{4}-\d\d-\d\d/;
const ID_KEY = /(^|[a-z])(id|Id|ID|name|Name)$/;

function valueAt(s: Slot): unknown {
  return (s.parent as Record<string | number, unknown>)[s.key];
}

/** Applies one mutation in place to `root` (a container) and returns the possibly replaced root. */
function apply(root: Json, op: Op): Json {
  if (op.t === 'inner' || op.t === 'breakInner') {
    const cands = jsonStringSlots(root);
    const s = cands[op.at % Math.max(cands.length, 1)];
    if (!s) return root;
    const at = s.parent as Record<string | number, Json>;
    if (op.t === 'breakInner') at[s.key] = op.v;
    else at[s.key] = stringifyJson(apply(JSON.parse(at[s.key] as string) as Json, op.op));
    return root;
  }
  if (op.t === 'swapRefs') {
    const refs = refValues(root);
    const a = refs[op.at % Math.max(refs.length, 1)];
    const b = refs[op.to % Math.max(refs.length, 1)];
    if (!a || !b) return root;
    const pa = a.parent as Record<string | number, Json>;
    const pb = b.parent as Record<string | number, Json>;
    const va = pa[a.key] as Json;
    pa[a.key] = pb[b.key] as Json;
    pb[b.key] = va;
    return root;
  }
  if (op.t === 'chain') {
    // An entity wrapped `n` deep in processes that each hold the next inline as their `Host`.
    const cands = slots(root).filter((s) => {
      const v = valueAt(s);
      return isContainer(v) && !Array.isArray(v) && ('Type' in v || 'kind' in v);
    });
    const s = cands[op.at % Math.max(cands.length, 1)];
    if (!s) return root;
    let v = valueAt(s) as Json;
    for (let i = 0; i < op.n; i++) v = { Type: 'process', ProcessId: String(i), Host: v };
    (s.parent as Record<string | number, Json>)[s.key] = v;
    return root;
  }
  if (op.t === 'entity') {
    // Replaces an entity by a random one in the same wire spelling (SecurityAlert, incident or generic).
    const cands = slots(root).filter((s) => {
      const v = valueAt(s);
      return isContainer(v) && !Array.isArray(v) && ('Type' in v || 'kind' in v);
    });
    const s = cands[op.at % Math.max(cands.length, 1)];
    if (!s) return root;
    const old = valueAt(s) as Record<string, Json>;
    const pascal = Object.fromEntries(Object.entries(op.fields).map(([k, v]) => [k, materialise(v)]));
    const camel = Object.fromEntries(Object.entries(pascal).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v]));
    const e: Json =
      'Type' in old
        ? { ...('$id' in old ? { $id: old.$id as Json } : {}), Type: op.type, ...pascal }
        : 'properties' in old
          ? { id: old.id as Json, kind: op.type, properties: camel }
          : { kind: op.type, ...camel };
    setOwn(s.parent, s.key, e);
    return root;
  }
  if (op.t === 'ref' || op.t === 'retype') {
    const cands = slots(root).filter((s) => {
      const v = valueAt(s);
      return isContainer(v) && !Array.isArray(v) && (op.t === 'ref' || 'Type' in v || 'kind' in v);
    });
    const s = cands[op.at % Math.max(cands.length, 1)];
    if (!s) return root;
    const v = valueAt(s) as Record<string, Json>;
    if (op.t === 'ref') setOwn(v, '$ref', op.v);
    else setOwn(v, 'kind' in v && !('Type' in v) ? 'kind' : 'Type', op.type);
    return root;
  }
  if (op.t === 'date' || op.t === 'id') {
    const cands = slots(root).filter((s) =>
      op.t === 'date'
        ? typeof valueAt(s) === 'string' && DATE_LIKE.test(valueAt(s) as string)
        : typeof s.key === 'string' && ID_KEY.test(s.key),
    );
    const s = cands[op.at % Math.max(cands.length, 1)];
    if (s) setOwn(s.parent, s.key, op.v);
    return root;
  }
  const all = slots(root);
  if (all.length === 0) return op.t === 'set' ? materialise(op.v) : root;
  const s = all[op.at % all.length] as Slot;
  const parent = s.parent as Record<string | number, Json>;
  switch (op.t) {
    case 'drop':
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
      else delete parent[s.key];
      return root;
    case 'set':
      setOwn(s.parent, s.key, op.v);
      return root;
    case 'dup':
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 0, copy(s.parent[s.key as number] as Json));
      else {
        // The same member again under another spelling: the readers of entities and rows are case-insensitive in places.
        const k = String(s.key);
        setOwn(s.parent, k.toLowerCase() !== k ? k.toLowerCase() : k.toUpperCase(), parent[s.key] as Json);
      }
      return root;
    case 'key': {
      const v = parent[s.key];
      if (isContainer(v) && !Array.isArray(v)) setOwn(v, op.k, op.v);
      else if (!Array.isArray(s.parent)) setOwn(s.parent, op.k, op.v);
      return root;
    }
    default: {
      const never: never = op;
      return never;
    }
  }
}

function mutate(value: Json, ops: readonly Op[]): Json {
  let v = copy(value);
  for (const op of ops) v = apply(v, op);
  return v;
}

const opsArb = fc.array(opArb, { minLength: 1, maxLength: 3 });

/** How a mutated sample is put on the wire for the Event Hub trigger: as objects, JSON text or bytes. */
const ENCODINGS = ['object', 'text', 'bytes', 'cut bytes'] as const;
type Encoding = (typeof ENCODINGS)[number];

function encodeEvents(body: Json, enc: Encoding): unknown {
  if (enc === 'object' || !Array.isArray(body)) return body;
  return body.map((e) => {
    const text = stringifyJson(e);
    if (enc === 'text') return text;
    const bytes = Buffer.from(text, 'utf8');
    // An event cut short, possibly inside a multi-byte character: not JSON, maybe not UTF-8.
    return enc === 'bytes' ? bytes : bytes.subarray(0, Math.floor((bytes.length * 2) / 3));
  });
}

// ---------------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------------

/** Segments of a JSON path as `childPath` spells it (`$[0].records[1]["Rule Id"]`). */
function segments(path: string): (string | number)[] | undefined {
  if (!path.startsWith('$')) return undefined;
  const out: (string | number)[] = [];
  const re = /\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;
  re.lastIndex = 1;
  while (re.lastIndex < path.length) {
    const m = re.exec(path);
    if (!m) return undefined;
    out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3] as string) as string)));
  }
  return out;
}

function step(cur: unknown, seg: string | number): { found: boolean; value: unknown } {
  let c = cur;
  if (typeof c === 'string' || c instanceof Uint8Array) {
    const parsed = tryParse(typeof c === 'string' ? c : Buffer.from(c).toString('utf8'));
    if (parsed === undefined) return { found: false, value: undefined };
    c = parsed;
  }
  if (!isContainer(c)) return { found: false, value: undefined };
  if (Array.isArray(c) !== (typeof seg === 'number')) return { found: false, value: undefined };
  return { found: Object.hasOwn(c, seg), value: (c as Record<string | number, unknown>)[seg] };
}

/** Whether `path` names a location of `body`, or a missing member of an existing object (its parent exists). */
function namesLocationOrParent(body: unknown, path: string): boolean {
  const segs = segments(path);
  if (segs === undefined) return false;
  let cur: unknown = body;
  for (let i = 0; i < segs.length; i++) {
    const r = step(cur, segs[i] as string | number);
    if (!r.found) return i === segs.length - 1 && isContainer(typeof cur === 'string' ? tryParse(cur) : cur);
    cur = r.value;
  }
  return true;
}

/** Whether `path` names a value of `body`. */
function namesLocation(body: unknown, path: string): boolean {
  const segs = segments(path);
  if (segs === undefined) return false;
  let cur: unknown = body;
  for (const seg of segs) {
    const r = step(cur, seg);
    if (!r.found) return false;
    cur = r.value;
  }
  return true;
}

/** Reasons that quote the value they refuse (`invalid domain name "a..b"`, `got "2026-…"`). */
const QUOTES_VALUE = /(invalid [a-z ]+|hash|got) "/;

function describeOutcome(o: ParseOutcome): string {
  return o.status === 'rejected' ? `${o.path}: ${o.error.message.slice(0, 300)}` : `${o.path}: ${o.status}`;
}

/** The invariants of one parse; returns the outcomes for further checks. */
function checkParse(body: unknown, kind: BodyKind): ParseOutcome[] {
  let out: ParseOutcome[] = [];
  expect(() => {
    out = parseBody(body, kind, RECEIVED);
  }).not.toThrow();
  // Exactly one outcome per item: paths are distinct.
  const paths = out.map((o) => o.path);
  expect(new Set(paths).size).toBe(paths.length);
  expect(out.length).toBeGreaterThan(0);
  if (Array.isArray(body) && !out.some((o) => o.path === '$')) {
    // Every element of a delivered array is accounted for.
    for (let i = 0; i < body.length; i++) expect(paths.some((p) => p === `$[${i}]` || p.startsWith(`$[${i}].`))).toBe(true);
  }
  for (const o of out) {
    if (o.status === 'rejected') {
      expect(o.error).toBeInstanceOf(InputValidationError);
      expect(o.error.issues.length).toBeGreaterThan(0);
      for (const i of o.error.issues) {
        if (!i.path.startsWith(o.path)) throw new Error(`issue ${i.path} is outside its item ${o.path}: ${describeOutcome(o)}`);
      }
      const located = o.error.issues.filter((i) => namesLocationOrParent(body, i.path));
      if (located.length === 0) throw new Error(`no issue names a location of the input: ${describeOutcome(o)}`);
      // An issue that quotes the offending value names where that value is.
      for (const i of o.error.issues) {
        if (QUOTES_VALUE.test(i.reason) && !namesLocation(body, i.path)) {
          throw new Error(`issue ${i.path} (${i.reason.slice(0, 80)}) names no value of the input: ${describeOutcome(o)}`);
        }
      }
      expect(o.raw).toBeDefined();
      // A reader that threw is caught and parked, but it is a bug all the same: a defect would hide behind it.
      if (o.error.cause !== undefined && !(o.error.cause instanceof TriageError)) {
        throw new Error(`a reader threw ${String(o.error.cause)}: ${describeOutcome(o)}`);
      }
    } else if (o.status === 'ok') {
      const c = o.case;
      // A triaged case serialises and re-parses unchanged.
      expect(JSON.parse(JSON.stringify(c))).toEqual(c);
      // Times are canonical instants: later steps compare them as strings and parse them with Date.parse.
      for (const t of [c.detectedAt, c.receivedAt, ...c.alerts.flatMap((a) => [a.detectedAt, a.startTime, a.endTime])]) {
        if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(t)) throw new Error(`time ${JSON.stringify(t)} is not canonical (${o.path})`);
      }
      if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,7}Z$/.test(c.revisionKey)) {
        throw new Error(`revision key ${JSON.stringify(c.revisionKey)} is not canonical (${o.path})`);
      }
    }
  }
  // Deterministic: the same body parses to the same fingerprints.
  const again = parseBody(body, kind, RECEIVED);
  expect(again.map((o) => (o.status === 'ok' ? o.case.fingerprint : o.status))).toEqual(
    out.map((o) => (o.status === 'ok' ? o.case.fingerprint : o.status)),
  );
  if (process.env.FUZZ_STATS) for (const o of out) STATS[o.status] = (STATS[o.status] ?? 0) + 1;
  return out;
}

const STATS: Record<string, number> = {};
afterAll(() => {
  if (process.env.FUZZ_STATS) console.log(STATS);
});

describe('parseBody under random structural mutations of the samples', () => {
  for (const s of SAMPLES_BY_KIND) {
    it(`never throws and names where each rejection is, for mutated ${s.name}`, () => {
      fc.assert(
        fc.property(opsArb, fc.constantFrom(...s.kinds, ...BODY_KINDS), fc.constantFrom(...ENCODINGS), (ops, kind, enc) => {
          const body = kind === 'eventhub-batch' ? encodeEvents(mutate(s.value, ops), enc) : mutate(s.value, ops);
          checkParse(body, kind);
        }),
        { numRuns: PARSE_RUNS, seed: SEED },
      );
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Through a real pipeline, beside a valid neighbour
// ---------------------------------------------------------------------------------------------

const POLICIES = PolicyRegistry.fromDirectory(join(ROOT, 'policies'));
const BRAIN = createBrain();

function pipelineOnMemory() {
  const store = openSqliteStore({ file: ':memory:' });
  const pipeline = new Pipeline({
    store,
    policies: POLICIES,
    brain: BRAIN,
    log: silentLogger,
    dispatcher: new OutboxDispatcher(store, { send: async () => undefined }, silentLogger),
    backoffMs: 1,
  });
  return { store, pipeline };
}

/** A valid SecurityAlert row no mutation produces: its case must be triaged whatever its neighbours are. */
const NEIGHBOUR: Json = {
  ...((sample('securityalert-records.json') as Json[])[1] as Record<string, Json>),
  SystemAlertId: 'fuzz-neighbour-0001',
};

/** The delivery: the neighbour first or last, beside the mutated sample's items. */
function withNeighbour(mutated: Json, kind: BodyKind, enc: Encoding, neighbourFirst: boolean): { body: unknown; neighbourPath: string } {
  const given = Array.isArray(mutated) ? mutated : [mutated];
  // The mutated events in the drawn encoding; the neighbour's event whole, as the same kind of value when it can be.
  const items = kind === 'eventhub-batch' ? (encodeEvents(given, enc) as unknown[]) : given;
  const neighbour = kind === 'eventhub-batch' ? encodeEvents([{ records: [NEIGHBOUR] }], enc === 'cut bytes' ? 'bytes' : enc) : [NEIGHBOUR];
  const all = neighbourFirst ? [...(neighbour as unknown[]), ...items] : [...items, ...(neighbour as unknown[])];
  const at = neighbourFirst ? 0 : all.length - 1;
  return {
    body: all,
    neighbourPath: kind === 'eventhub-batch' ? `$[${at}].records[0]` : `$[${at}]`,
  };
}

describe('the pipeline under random structural mutations of the samples', () => {
  for (const s of SAMPLES_BY_KIND) {
    const kinds = s.kinds.filter((k): k is Exclude<BodyKind, 'incident'> => k !== 'incident');
    it(`never throws, parks each rejected item with its raw body and triages the valid neighbour, for mutated ${s.name}`, async () => {
      await fc.assert(
        fc.asyncProperty(opsArb, fc.constantFrom(...kinds), fc.constantFrom(...ENCODINGS), fc.boolean(), async (ops, kind, enc, first) => {
          // Arrange
          const { store, pipeline } = pipelineOnMemory();
          const { body, neighbourPath } = withNeighbour(mutate(s.value, ops), kind, enc, first);
          const parsed = parseBody(body, kind, RECEIVED);
          const options = { kind, source: 'fuzz' };

          // Act
          const out = await pipeline.ingest(body, options);
          const again = await pipeline.ingest(body, options);

          // Assert: one outcome per parsed item, in order.
          expect(out.items.map((i) => i.path)).toEqual(parsed.map((p) => p.path));
          expect(out.items.find((i) => i.path === neighbourPath)?.status).toBe('triaged');
          expect(out.counts.failed).toBe(0);
          const parked = new Map((await store.listParked({ includeReplayed: true })).map((p) => [p.id, p]));
          for (const [i, item] of out.items.entries()) {
            const p = parsed[i] as ParseOutcome;
            if (item.status === 'rejected') {
              const kept = parked.get(item.parkedId ?? '');
              expect(kept).toBeDefined();
              expect(p.status).toBe('rejected');
              if (p.status === 'rejected') expect(kept?.body).toBe(fitParkedBody(stringifyJson(p.raw ?? null)));
              expect(kept?.issues.some((x) => x.path.startsWith(item.path))).toBe(true);
            }
            if (item.result !== undefined) expect(JSON.parse(JSON.stringify(item.result))).toEqual(item.result);
          }
          // The same delivery again: what was triaged is a duplicate (fingerprints are deterministic),
          // unless the delivery holds another revision of the same case.
          const caseIds = parsed.flatMap((p) => (p.status === 'ok' ? [`${p.case.tenantId}|${p.case.caseId}`] : []));
          for (const [i, item] of out.items.entries()) {
            const p = parsed[i] as ParseOutcome;
            const unique = p.status === 'ok' && caseIds.filter((c) => c === `${p.case.tenantId}|${p.case.caseId}`).length === 1;
            if (item.status === 'triaged' && unique) expect(again.items[i]?.status).toBe('duplicate');
            if (item.status === 'rejected') expect(again.items[i]?.status).toBe('rejected');
          }
          expect(parked.size).toBe((await store.listParked({ includeReplayed: true })).length);
          await store.close();
        }),
        { numRuns: PIPELINE_RUNS, seed: SEED },
      );
    });
  }
});

describe('members no reader reads', () => {
  it('never make a valid generic alert vanish as ignored: it is triaged, or rejected and parked', () => {
    const generic = sample('generic-alert.json') as Record<string, Json>;
    const unknownKey = fc.constantFrom(
      'Type',
      'type',
      'records',
      'object',
      'workspaceId',
      'objectEventType',
      'TenantId',
      'AlertName',
      'kind',
    );
    fc.assert(
      fc.property(unknownKey, fc.oneof(fc.constantFrom<Json>('Alert', 'SecurityAlert', 'Syslog', ''), oddValue), (key, value) => {
        // Arrange
        const item = { ...generic };
        setOwn(item, key, value);

        // Act
        const out = parseBody([item], 'alerts', RECEIVED);

        // Assert
        expect(out.map((o) => o.status)).not.toContain('ignored');
      }),
      { numRuns: PARSE_RUNS, seed: SEED },
    );
  });
});
