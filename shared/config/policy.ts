/**
 * Tenant policy: the customer's runbook (運用仕様書) as data. One YAML file per
 * monitored workspace, validated with zod. `../shared/samples/policy.example.yaml`
 * is the reference of what it must express; `policies/contoso.yaml` ships it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration } from 'luxon';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { type InputIssue, PolicyError } from '../errors';
import { SEVERITIES } from '../model/domain';
import { formatZodIssues } from '../model/zodIssues';
import { isValidNetworkOrHost } from './networks';

const isoDuration = z.string().refine((s) => Duration.fromISO(s).isValid && Duration.fromISO(s).as('milliseconds') > 0, {
  message: 'must be a positive ISO 8601 duration such as PT15M or P7D',
});
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

const notifyRuleSchema = z
  .object({
    first: z.array(z.string()).default([]),
    escalateAfter: isoDuration.optional(),
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

/** The zod schema of a tenant policy file. */
export const tenantPolicySchema = z
  .object({
    tenant: z
      .object({
        id: z.string().min(1),
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
    rules: z.record(z.string(), ruleSchema).default({}),
    scenarios: z.record(z.string(), scenarioSchema).default({}),
    killChain: z
      .object({
        tactics: z.record(z.string(), z.string()).default({}),
        techniques: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .default({ tactics: {}, techniques: {} }),
    correlation: z
      .object({
        window: isoDuration.default('P7D'),
        escalateWhen: z
          .object({ distinctPhases: z.number().int().min(2).max(8).default(3), progression: z.boolean().default(true) })
          .strict()
          .default({ distinctPhases: 3, progression: true }),
        infrastructureThreshold: z.number().int().min(2).default(50),
      })
      .strict()
      .default({ window: 'P7D', escalateWhen: { distinctPhases: 3, progression: true }, infrastructureThreshold: 50 }),
    sla: z
      .object({ notifyWithin: isoDuration.default('PT15M') })
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
  if (!parsed.success) {
    const issues: InputIssue[] = formatZodIssues(parsed.error.issues).map((i) => {
      const node = doc.getIn(pathSegments(i.path), true) as { range?: [number, number] } | undefined;
      const line = node?.range ? lineOf(text, node.range[0]) : undefined;
      return line === undefined ? i : { path: `${i.path} (line ${line})`, reason: i.reason };
    });
    throw new PolicyError(file, issues);
  }
  return parsed.data;
}

function pathSegments(jsonPath: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of jsonPath.matchAll(/\.([^.[\]]+)|\[(\d+)\]|\["([^"]*)"\]/g)) {
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Reads and validates one policy file. */
export function loadPolicyFile(file: string): TenantPolicy {
  return parsePolicy(readFileSync(file, 'utf8'), file);
}

/** All tenant policies of a folder, keyed by tenant (workspace) id. */
export class PolicyRegistry {
  private readonly byTenant = new Map<string, ResolvedPolicy>();
  private readonly defaults = new Map<string, ResolvedPolicy>();

  /** Builds a registry from already-validated policies. */
  constructor(policies: readonly { policy: TenantPolicy; file?: string }[] = []) {
    for (const p of policies) {
      if (this.byTenant.has(p.policy.tenant.id)) {
        throw new PolicyError(p.file ?? '(inline)', [{ path: '$.tenant.id', reason: `duplicate tenant id ${p.policy.tenant.id}` }]);
      }
      this.byTenant.set(p.policy.tenant.id, { policy: p.policy, source: 'tenant', file: p.file });
    }
  }

  /**
   * Loads every `*.yaml`/`*.yml` of a folder; a missing folder gives an empty registry.
   * Invalid files throw PolicyError; `check` adds semantic checks (known playbooks, phases,
   * scenarios) that need knowledge this module must not import.
   */
  static fromDirectory(dir: string, options?: { check?: (p: TenantPolicy) => InputIssue[] }): PolicyRegistry {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => /\.ya?ml$/i.test(n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new PolicyRegistry();
      throw err;
    }
    return new PolicyRegistry(
      names.sort().map((n) => {
        const file = join(dir, n);
        const policy = loadPolicyFile(file);
        const issues = options?.check?.(policy) ?? [];
        if (issues.length > 0) throw new PolicyError(file, issues);
        return { policy, file };
      }),
    );
  }

  /** The tenant's policy, or the documented defaults flagged as such. */
  resolve(tenantId: string): ResolvedPolicy {
    const own = this.byTenant.get(tenantId);
    if (own) return own;
    let d = this.defaults.get(tenantId);
    if (!d) {
      d = { policy: defaultPolicy(tenantId), source: 'default' };
      this.defaults.set(tenantId, d);
    }
    return d;
  }

  /** Tenant ids with a policy file. */
  tenants(): string[] {
    return [...this.byTenant.keys()];
  }
}
