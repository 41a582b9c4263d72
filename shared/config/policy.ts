/**
 * Tenant policy: the customer's runbook (運用仕様書) as data. One YAML file per
 * monitored workspace, validated with zod. `../shared/samples/policy.example.yaml`
 * is the reference of what it must express; `policies/contoso.yaml` ships it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Duration } from 'luxon';
import { type Document, isAlias, isMap, isNode, isScalar, isSeq, type Pair, parseDocument, type YAMLMap } from 'yaml';
import { z } from 'zod';
import { ConfigError, type InputIssue, PolicyError } from '../errors';
import { SEVERITIES } from '../model/domain';
import { canonicalDomain } from '../model/entities';
import { canonicalId } from '../model/inputs/securityAlert';
import { formatZodIssues, jsonPath } from '../model/zodIssues';
import { isValidNetworkOrHost } from './networks';

/**
 * A positive ISO 8601 duration of at most `max`. Every duration needs a ceiling: past
 * ~8.64e15 ms from now a deadline is no longer a valid Date, so an unbounded value that
 * passes `policy check` makes every alert of the tenant fail (`RangeError: Invalid time
 * value`). The ceilings (README "Tenant policy") follow the seed's scales, not Date's limits.
 */
function isoDuration(max: string) {
  const maxMs = Duration.fromISO(max).as('milliseconds');
  return z
    .string()
    .refine((s) => Duration.fromISO(s).isValid && Duration.fromISO(s).as('milliseconds') > 0, {
      message: 'must be a positive ISO 8601 duration such as PT15M or P7D',
    })
    .refine((s) => !Duration.fromISO(s).isValid || Duration.fromISO(s).as('milliseconds') <= maxMs, {
      message: `must be at most ${max}`,
    });
}
/** First report: the SLA is 15 minutes, 24×365 (seed §5); a first report due after more than a day is no SLA. */
const MAX_NOTIFY_WITHIN = 'P1D';
/** Escalation to a senior engineer who works business hours may span a long weekend or a holiday week, not more. */
const MAX_ESCALATE_AFTER = 'P7D';
/** Slow targeted attacks progress phase by phase over weeks (seed §2); a quarter, well inside the 12-month retention. */
const MAX_CORRELATION_WINDOW = 'P90D';

/**
 * A map keyed by names from the file (rule ids, scenarios, kill-chain overrides). zod
 * silently drops an own `__proto__` key from a record, so such an entry would vanish
 * without a word; it is refused instead (no rule, scenario or technique is called
 * `__proto__`, so an error costs nothing and tells the author the entry did not load).
 */
function recordOf<T extends z.ZodType>(value: T) {
  return z
    .unknown()
    .superRefine((v, ctx) => {
      if (typeof v === 'object' && v !== null && Object.hasOwn(v, '__proto__')) {
        ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'reserved key "__proto__" is not allowed' });
      }
    })
    .pipe(z.record(z.string(), value));
}
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24h)');
const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
const severity = z.enum(SEVERITIES);
const nistLevel = z.enum(['very-low', 'low', 'moderate', 'high', 'very-high']);
const networkList = z.array(z.string().refine(isValidNetworkOrHost, { message: 'must be an IP, a CIDR or a host name' })).default([]);

const contactSchema = z
  .object({
    name: z.string().min(1),
    teams: z.string().url().optional(),
    email: z.string().email().optional(),
    pagerduty: z.string().min(1).optional().describe('PagerDuty Events v2 routing key reference (Key Vault secret name)'),
    hours: z.enum(['always', 'business']).default('always'),
  })
  .strict()
  .refine((c) => c.teams !== undefined || c.email !== undefined || c.pagerduty !== undefined, {
    message: 'a contact needs at least one channel (teams, email or pagerduty)',
  });

/**
 * Contacts one severity may notify: each gets up to three outbox entries (Teams, e-mail, PagerDuty),
 * and a case's entries are written in one atomic store write with it (Cosmos: one transactional
 * batch of at most 100 operations), so the matrix must fit one.
 */
const MAX_CONTACTS_PER_SEVERITY = 20;

const notifyRuleSchema = z
  .object({
    first: z
      .array(z.string())
      .max(MAX_CONTACTS_PER_SEVERITY, { error: `at most ${MAX_CONTACTS_PER_SEVERITY} contacts per severity` })
      .default([]),
    escalateAfter: isoDuration(MAX_ESCALATE_AFTER).optional(),
    escalateTo: z.array(z.string()).default([]),
    secondReport: z.enum(['business', 'always']).optional(),
  })
  .strict();

const ruleSchema = z
  .object({
    playbook: z.string().min(1),
    severity: severity.optional(),
    scenario: z.string().optional(),
  })
  .strict();

const scenarioSchema = z
  .object({
    likelihood: z.object({ frequency: nistLevel, occurrence: nistLevel }).strict(),
    impact: z.object({ breadth: nistLevel, recovery: nistLevel }).strict(),
  })
  .strict();

/** Most UPN suffixes one NetBIOS domain may map to: each spelling of an account of that domain is looked up under one alias key per suffix. */
const MAX_UPN_SUFFIXES_PER_DOMAIN = 20;
/** Most NetBIOS domains of one tenant's `directory` (a forest has a handful; the bound keeps a typo'd generator from bloating every plan). */
const MAX_DIRECTORY_DOMAINS = 100;

/**
 * A NetBIOS domain name, the `DOMAIN` of `DOMAIN\\user` in Windows logs: 1–15 characters, none of the characters Windows
 * reserves, and no `@` or `.`, so a UPN suffix written in the wrong field (`contoso.com`) is refused rather than
 * making aliases no log ever spells (Windows allows a dot in a NetBIOS name but advises against it). Windows compares
 * it case-insensitively: kept lower-case, as account keys spell it.
 */
const netbiosDomain = z
  .string()
  .trim()
  .regex(/^[^\s\\/:*?"<>|@,.]{1,15}$/, {
    error: 'must be a NetBIOS domain name such as CONTOSO (1–15 characters, no spaces or \\ / : * ? " < > | @ , .)',
  })
  .toLowerCase();
/** A UPN suffix (a DNS name such as `contoso.com`), lower-cased and without a trailing dot, as account keys spell it. */
const upnSuffix = z
  .string()
  .overwrite(canonicalDomain)
  .regex(/^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    error: 'must be a DNS name such as contoso.com',
  });

/**
 * The tenant's directory: which UPN suffixes belong to which NetBIOS domain, so correlation can treat `CONTOSO\\alice`
 * (Windows security events) and `alice@contoso.com` (Entra ID sign-ins) as one account (`shared/correlation/plan.ts`).
 * A NetBIOS name listed twice, or a suffix listed twice or under two domains, is refused with its path: the alias
 * would be ambiguous, and which entry won would depend on the order of the file.
 */
const directorySchema = z
  .object({
    domains: z
      .array(
        z
          .object({
            netbios: netbiosDomain,
            upnSuffixes: z
              .array(upnSuffix)
              .min(1)
              .max(MAX_UPN_SUFFIXES_PER_DOMAIN, {
                error: `at most ${MAX_UPN_SUFFIXES_PER_DOMAIN} UPN suffixes per domain`,
              }),
          })
          .strict(),
      )
      .max(MAX_DIRECTORY_DOMAINS, { error: `at most ${MAX_DIRECTORY_DOMAINS} domains` }),
  })
  .strict()
  .superRefine((d, ctx) => {
    const domainAt = new Map<string, number>();
    const suffixAt = new Map<string, { domain: number; at: number }>();
    d.domains.forEach((dom, i) => {
      const first = domainAt.get(dom.netbios);
      if (first === undefined) domainAt.set(dom.netbios, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['domains', i, 'netbios'],
          message: `NetBIOS domain "${dom.netbios}" is listed twice (also ${jsonPath(['directory', 'domains', first, 'netbios'])})`,
        });
      dom.upnSuffixes.forEach((s, j) => {
        const owner = suffixAt.get(s);
        if (owner === undefined) {
          suffixAt.set(s, { domain: i, at: j });
          return;
        }
        const also = jsonPath(['directory', 'domains', owner.domain, 'upnSuffixes', owner.at]);
        const other = d.domains[owner.domain]?.netbios;
        ctx.addIssue({
          code: 'custom',
          path: ['domains', i, 'upnSuffixes', j],
          message:
            other === dom.netbios
              ? `UPN suffix "${s}" is listed twice (also ${also})`
              : `UPN suffix "${s}" is mapped to two NetBIOS domains, "${other}" and "${dom.netbios}" (also ${also})`,
        });
      });
    });
  });

/** The zod schema of a tenant policy file. */
export const tenantPolicySchema = z
  .object({
    tenant: z
      .object({
        // Canonical like incoming workspace ids (GUIDs lower-cased), or an upper-case id would never match an alert.
        id: z.string().min(1).transform(canonicalId),
        name: z.string().min(1),
        timezone: z.string().refine(isValidTimeZone, { message: 'must be an IANA time zone such as Asia/Tokyo' }).default('UTC'),
        businessHours: z
          .object({ days: z.array(weekday).min(1), start: hhmm, end: hhmm })
          .strict()
          .refine((b) => b.start < b.end, { message: 'start must be before end' })
          .default({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '18:00' }),
      })
      .strict(),
    network: z
      .object({
        internal: networkList,
        dmz: networkList,
        maintenanceHosts: networkList,
        dmzManagementDevices: networkList,
        /** Entities that must never link cases (scanners, DNS servers, VPN gateway, SYSTEM): entity keys or IP/CIDR/host names. */
        nonCorrelating: z.array(z.string()).default([]),
      })
      .strict()
      .default({ internal: [], dmz: [], maintenanceHosts: [], dmzManagementDevices: [], nonCorrelating: [] }),
    blacklists: z
      .object({ ip: networkList, domain: z.array(z.string()).default([]), filehash: z.array(z.string()).default([]) })
      .strict()
      .default({ ip: [], domain: [], filehash: [] }),
    rules: recordOf(ruleSchema).default({}),
    scenarios: recordOf(scenarioSchema).default({}),
    killChain: z
      .object({
        tactics: recordOf(z.string()).default({}),
        techniques: recordOf(z.string()).default({}),
      })
      .strict()
      .default({ tactics: {}, techniques: {} }),
    correlation: z
      .object({
        window: isoDuration(MAX_CORRELATION_WINDOW).default('P7D'),
        escalateWhen: z
          .object({ distinctPhases: z.number().int().min(2).max(8).default(3), progression: z.boolean().default(true) })
          .strict()
          .default({ distinctPhases: 3, progression: true }),
        infrastructureThreshold: z.number().int().min(2).default(50),
      })
      .strict()
      .default({ window: 'P7D', escalateWhen: { distinctPhases: 3, progression: true }, infrastructureThreshold: 50 }),
    /** Optional: NetBIOS domain ↔ UPN suffixes, for account aliases in correlation. Absent: no aliases. */
    directory: directorySchema.optional(),
    sla: z
      .object({ notifyWithin: isoDuration(MAX_NOTIFY_WITHIN).default('PT15M') })
      .strict()
      .default({ notifyWithin: 'PT15M' }),
    contacts: z.array(contactSchema).default([]),
    notify: z
      .object({
        critical: notifyRuleSchema.optional(),
        high: notifyRuleSchema.optional(),
        medium: notifyRuleSchema.optional(),
        low: notifyRuleSchema.optional(),
        informational: notifyRuleSchema.optional(),
      })
      .strict()
      .default({}),
    retention: z
      .object({ days: z.number().int().min(1).max(730).default(365) })
      .strict()
      .default({ days: 365 }),
  })
  .strict()
  .superRefine((p, ctx) => {
    // Contact names are how the notify matrix refers to contacts: the planner takes the first
    // match, so a second contact of the same name would never be notified.
    const firstIndex = new Map<string, number>();
    p.contacts.forEach((c, i) => {
      const first = firstIndex.get(c.name);
      if (first === undefined) firstIndex.set(c.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['contacts', i, 'name'],
          message: `duplicate contact name "${c.name}" (also $.contacts[${first}])`,
        });
    });
    // Every contact named in the notify matrix must exist: a typo here means nobody gets called at 3 a.m.
    const names = new Set(p.contacts.map((c) => c.name));
    for (const sev of SEVERITIES) {
      const rule = p.notify[sev];
      if (!rule) continue;
      for (const [field, list] of [
        ['first', rule.first],
        ['escalateTo', rule.escalateTo],
      ] as const) {
        list.forEach((n, i) => {
          if (!names.has(n)) ctx.addIssue({ code: 'custom', path: ['notify', sev, field, i], message: `unknown contact "${n}"` });
        });
      }
    }
  });

/** A validated tenant policy. */
export type TenantPolicy = z.infer<typeof tenantPolicySchema>;

/** A policy together with where it came from. */
export interface ResolvedPolicy {
  readonly policy: TenantPolicy;
  /** `tenant` when a file for this workspace exists, `default` otherwise (flagged in the result). */
  readonly source: 'tenant' | 'default';
  readonly file?: string;
}

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Documented defaults for a tenant without a policy file: everything triaged, no
 * overrides, no contacts (notifications go to the SOC default outbox recipient).
 */
export function defaultPolicy(tenantId: string): TenantPolicy {
  return tenantPolicySchema.parse({
    tenant: { id: tenantId, name: `(no policy) ${tenantId}` },
    contacts: [{ name: 'SOC default', email: 'soc-default@invalid.example', hours: 'always' }],
    notify: {
      critical: { first: ['SOC default'] },
      high: { first: ['SOC default'] },
      medium: { first: ['SOC default'] },
      low: { first: ['SOC default'] },
      informational: { first: [] },
    },
  });
}

/** Parses and validates one YAML policy text; errors carry the path inside the document and the line. */
export function parsePolicy(text: string, file: string): TenantPolicy {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      file,
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, reason: e.message.split('\n')[0] ?? e.message })),
    );
  }
  const parsed = tenantPolicySchema.safeParse(doc.toJS());
  if (!parsed.success) throw new PolicyError(file, annotateLines(doc, text, formatZodIssues(parsed.error.issues)));
  return parsed.data;
}

/**
 * Adds the YAML line to each issue whose path is a JSON path into the policy `text`:
 * `$.rules.K1.playbook` becomes `$.rules.K1.playbook (line 4)`, the line where that value starts.
 * A member that is missing (`$.tenant.name` when `tenant` has no `name`) has no line of its own: it gets the
 * line of its nearest present ancestor's key (`tenant:`), where the member belongs; a missing top-level
 * member gets the line where the document's content starts (after leading comments). Issues without a `$` path (YAML syntax errors, already `line N`)
 * and paths that do not reach the document are returned as they are. For issues found after `parsePolicy`
 * succeeded (`checkPolicy`, `duplicateTenants`), so that every error of `policy check` names its line; the
 * text is parsed again only when there is an issue to place, i.e. never for a valid file.
 */
export function withPolicyLines(text: string, issues: readonly InputIssue[]): InputIssue[] {
  if (!issues.some((i) => i.path.startsWith('$'))) return [...issues];
  return annotateLines(parseDocument(text), text, issues);
}

function annotateLines(doc: Document, text: string, issues: readonly InputIssue[]): InputIssue[] {
  let lineOf: ((offset: number) => number) | undefined;
  return issues.map((i) => {
    if (!i.path.startsWith('$')) return i;
    const offset = offsetOfPath(doc, pathSegments(i.path));
    if (offset === undefined) return i;
    lineOf ??= lineCounter(text);
    return { path: `${i.path} (line ${lineOf(offset)})`, reason: i.reason };
  });
}

function startOf(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

/**
 * Where `segments` start in `doc`: the value's offset when it is present, else the offset of the key naming
 * its nearest present ancestor. Aliases are followed on the way down (the path runs through the anchored node),
 * but a value that is itself an alias is placed at the alias, where the author wrote it.
 */
function offsetOfPath(doc: Document, segments: readonly (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  let named = startOf(node);
  for (const seg of segments) {
    const container = isAlias(node) ? node.resolve(doc) : node;
    if (isMap(container)) {
      const pair = pairsByName(container).get(String(seg));
      if (pair === undefined) return named;
      node = pair.value;
      named = startOf(pair.key) ?? startOf(pair.value) ?? named;
    } else if (isSeq(container) && typeof seg === 'number' && seg < container.items.length) {
      node = container.items[seg];
      named = startOf(node) ?? named;
    } else {
      return named;
    }
  }
  return startOf(node) ?? named;
}

/** Each map's pairs by member name, read once per map (a file with thousands of errors searched each map once per error). */
const pairsByNameOf = new WeakMap<YAMLMap, Map<string, Pair>>();

/** A map's pairs by member name; of pairs with one name, the last: the one `toJS` keeps (`1:` and `"1":` are both the rule "1"). */
function pairsByName(map: YAMLMap): Map<string, Pair> {
  let byName = pairsByNameOf.get(map);
  if (byName === undefined) {
    byName = new Map();
    for (const p of map.items) {
      const name = keyText(p.key);
      if (name !== undefined) byName.set(name, p as Pair);
    }
    pairsByNameOf.set(map, byName);
  }
  return byName;
}

/** A scalar map key as `toJS` names its member (a null key is the member `""`); undefined for any other key. */
function keyText(key: unknown): string | undefined {
  if (!isScalar(key)) return undefined;
  return key.value === null ? '' : typeof key.value === 'object' ? undefined : String(key.value);
}

/**
 * A JSON path as written by `jsonPath` (zodIssues.ts) or checkPolicy: `.name`, `[3]` and `["any \"key\""]`
 * (a JSON string, so keys with dots, quotes or spaces round-trip).
 */
function pathSegments(jsonPath: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of jsonPath.matchAll(/\.([^.[\]]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(jsonStringOr(m[3]));
  }
  return out;
}

function jsonStringOr(quoted: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    // Not valid JSON (a hand-written path): the text between the quotes is the best guess.
    return quoted.slice(1, -1);
  }
}

/**
 * The 1-based line of an offset in `text`: where its line breaks are is read once, then each offset is a
 * binary search (a file with thousands of errors counted its lines from the start once per error).
 */
function lineCounter(text: string): (offset: number) => number {
  const breaks: number[] = [];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) breaks.push(i);
  return (offset) => {
    // Lines before the offset's = the breaks strictly before it.
    let lo = 0;
    let hi = breaks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((breaks[mid] as number) < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/** Reads and validates one policy file. */
function loadPolicyFile(file: string): TenantPolicy {
  return parsePolicy(readFileSync(file, 'utf8'), file);
}

/** The policy files a registry loads from a folder: its `*.yaml`/`*.yml`, sorted, as paths. */
function policyFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /\.ya?ml$/i.test(n))
    .sort()
    .map((n) => join(dir, n));
}

/** A command-line path as policy files: a folder stands for exactly the files a registry would load from it. */
export function policyFilesAt(path: string): string[] {
  return statSync(path).isDirectory() ? policyFilesIn(path) : [path];
}

/**
 * The policies a registry refuses because an earlier one has the same tenant id (compared
 * canonically, as alerts are matched): one PolicyError per later file, naming both files.
 * The registry and `triage policy check` share this rule so that a check that says ok
 * never precedes a runtime that refuses to start.
 */
export function duplicateTenants(policies: readonly { policy: TenantPolicy; file?: string }[]): PolicyError[] {
  const seen = new Map<string, string>();
  const out: PolicyError[] = [];
  for (const p of policies) {
    const id = canonicalId(p.policy.tenant.id);
    const file = p.file ?? '(inline)';
    const first = seen.get(id);
    if (first === undefined) seen.set(id, file);
    else out.push(new PolicyError(file, [{ path: '$.tenant.id', reason: `duplicate tenant id ${id} (also in ${first})` }]));
  }
  return out;
}

/** All tenant policies of a folder, keyed by canonical tenant (workspace) id. */
export class PolicyRegistry {
  private readonly byTenant = new Map<string, ResolvedPolicy>();
  private readonly defaults = new Map<string, ResolvedPolicy>();

  /** Builds a registry from already-validated policies; throws PolicyError on a duplicate tenant id. */
  constructor(policies: readonly { policy: TenantPolicy; file?: string }[] = []) {
    const duplicate = duplicateTenants(policies)[0];
    if (duplicate) throw duplicate;
    // Keyed canonically even though the schema canonicalises: a policy built in code skips the schema.
    for (const p of policies) this.byTenant.set(canonicalId(p.policy.tenant.id), { policy: p.policy, source: 'tenant', file: p.file });
  }

  /**
   * Loads every `*.yaml`/`*.yml` of a folder; a missing folder gives an empty registry, unless
   * `required` names the setting that chose the folder: then it is a ConfigError on that setting (an
   * explicit folder that is not there is a mistake, and every tenant would silently get the defaults).
   * Invalid files throw PolicyError; `check` adds semantic checks (known playbooks, phases,
   * scenarios) that need knowledge this module must not import.
   */
  static fromDirectory(dir: string, options?: { check?: (p: TenantPolicy) => InputIssue[]; required?: string }): PolicyRegistry {
    let files: string[];
    try {
      files = policyFilesIn(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (options?.required) throw new ConfigError(options.required, `${dir} does not exist`, { cause: err });
        return new PolicyRegistry();
      }
      throw err;
    }
    return new PolicyRegistry(
      files.map((file) => {
        const policy = loadPolicyFile(file);
        const issues = options?.check?.(policy) ?? [];
        if (issues.length > 0) throw new PolicyError(file, issues);
        return { policy, file };
      }),
    );
  }

  /** The tenant's policy, or the documented defaults flagged as such. */
  resolve(tenantId: string): ResolvedPolicy {
    const id = canonicalId(tenantId);
    const own = this.byTenant.get(id);
    if (own) return own;
    let d = this.defaults.get(id);
    if (!d) {
      d = { policy: defaultPolicy(id), source: 'default' };
      this.defaults.set(id, d);
    }
    return d;
  }

  /** Tenant ids with a policy file (canonical). */
  tenants(): string[] {
    return [...this.byTenant.keys()];
  }
}
