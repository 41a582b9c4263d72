/**
 * # Generic alert JSON (any non-Sentinel source: firewall relay, EDR webhook, script)
 *
 * POST one object or an array of objects to `/api/alerts` (or put them in a replay file).
 * Unknown members are ignored. Example: `../shared/samples/generic-alert.json`.
 *
 * ```jsonc
 * {
 *   "source":      "fortigate-01",        // required; 1-128 chars [A-Za-z0-9._-], first alphanumeric; names the sender
 *   "tenantId":    "8b0f5c2e-…",          // required; the Log Analytics workspace id the alert belongs to
 *   "id":          "fgt-2026-11-20-000981", // required; unique per source (1-256 chars). caseId = `${source}:${id}`
 *   "name":        "Connection to known botnet C&C address", // required; alert / rule display name
 *   "severity":    "medium",              // required; informational | low | medium | high | critical (any case)
 *   "detectedAt":  "2026-11-20T05:10:00Z",// required; ISO 8601 with time zone. Starts the 15-minute SLA clock
 *   "ruleId":      "K3-1",                // optional; a rule id or policy code (`K3-1`) used for playbook selection
 *   "ruleIds":     ["…"],                 // optional; more rule ids
 *   "ruleName":    "K3-1 Botnet C&C",     // optional; rule display name (name-prefix matching, codes at its start)
 *   "productName": "FortiGate",           // optional; defaults to `source`
 *   "description": "…",                   // optional
 *   "startTime":   "…", "endTime": "…",   // optional ISO 8601; default to detectedAt
 *   "tactics":     ["CommandAndControl"], // optional; ATT&CK tactics, PascalCase as Sentinel spells them
 *   "techniques":  ["T1071", "T1071.001"],// optional; ATT&CK technique ids, sub-techniques included
 *   "entities": [                         // optional; at most 500
 *     { "kind": "ip",        "address": "192.0.2.200" },
 *     { "kind": "host",      "hostName": "ws-hr-007", "dnsDomain": "corp.contoso.example", "ntDomain": "CONTOSO" },
 *     { "kind": "account",   "name": "k.tanaka", "upnSuffix": "contoso.example" }, // or "upn", "ntDomain", "sid", "aadUserId"
 *     { "kind": "url",       "url": "https://bad.example/x" },   // never fetched
 *     { "kind": "domain",    "domain": "bad.example" },
 *     { "kind": "filehash",  "algorithm": "SHA256", "value": "<64 hex>" }, // MD5 32, SHA1 40, SHA256 64 hex digits
 *     { "kind": "file",      "directory": "C:\\Temp", "name": "x.exe" },
 *     { "kind": "process",   "processId": "4711", "commandLine": "…", "creationTime": "…", "hostName": "ws-hr-007" },
 *     { "kind": "mailbox",   "address": "k.tanaka@contoso.example" },
 *     { "kind": "cloud-app", "appId": "20893", "name": "Dropbox" }
 *   ]
 * }
 * ```
 *
 * Revision: `revisionKey` = `detectedAt`, with its digits beyond the millisecond when sent (up to
 * 100 ns, see ../revision.ts; the case's `detectedAt` and SLA clock use the millisecond). Re-sending
 * the same id with changed content is a new revision of the same case (the fingerprint differs),
 * with identical content a duplicate.
 * Entity keys are documented in `shared/model/entities.ts`.
 */
import { z } from 'zod';
import type { InputIssue } from '../../errors';
import { mergeEntities, readGenericEntities } from '../entities';
import { revisionDate, revisionMillis } from '../revision';
import {
  anySeverity,
  canonicalTechnique,
  childPath,
  idText,
  MAX_ENTITIES_PER_ALERT,
  makeAlert,
  OrderedSet,
  optIsoDate,
  optText,
  type ReadResult,
  RuleRefs,
  safeParseAt,
  text,
} from './common';
import { canonicalId } from './securityAlert';

/** Allowed `source` values: they become the caseId prefix, so no separators or spaces. */
export const GENERIC_SOURCE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The generic alert schema (see the documentation block above). */
export const genericAlertSchema = z.object({
  source: z.string().regex(GENERIC_SOURCE_RE, { error: 'expected 1-128 characters [A-Za-z0-9._-] starting with a letter or digit' }),
  tenantId: idText,
  id: idText,
  name: text.trim().min(1, { error: 'must not be empty' }),
  severity: anySeverity,
  // Read as a revision key (to 100 ns, ../revision.ts); everything else uses its millisecond instant.
  detectedAt: revisionDate,
  ruleId: optText,
  ruleIds: z.array(text).nullish(),
  ruleName: optText,
  productName: optText,
  description: optText,
  startTime: optIsoDate,
  endTime: optIsoDate,
  tactics: z.array(text).nullish(),
  techniques: z.array(text).nullish(),
  entities: z
    .array(z.unknown())
    .max(MAX_ENTITIES_PER_ALERT, { error: `more than ${MAX_ENTITIES_PER_ALERT} entities` })
    .nullish(),
});
/** A validated generic alert. */
export type GenericAlert = z.output<typeof genericAlertSchema>;

/** True when an object looks like a generic alert (lower-case `source` / `detectedAt` members). */
export function looksLikeGeneric(o: Record<string, unknown>): boolean {
  return 'source' in o || 'detectedAt' in o;
}

/** Reads one generic alert at `path` into case content; all problems are collected. */
export function readGeneric(raw: Record<string, unknown>, path: string): ReadResult {
  const issues: InputIssue[] = [];
  const r = safeParseAt(genericAlertSchema, raw, path);
  if (!r.ok) issues.push(...r.issues);
  const entitiesRaw = raw.entities;
  const entities =
    Array.isArray(entitiesRaw) && entitiesRaw.length <= MAX_ENTITIES_PER_ALERT
      ? readGenericEntities(entitiesRaw, childPath(path, 'entities'), issues)
      : [];
  if (!r.ok || issues.length > 0) return { ok: false, issues };

  const g = r.data;
  const detectedAt = revisionMillis(g.detectedAt);
  const rules = new RuleRefs();
  rules.addId(g.ruleId ?? undefined);
  for (const id of g.ruleIds ?? []) rules.addId(id);
  rules.addName(g.ruleName ?? undefined);
  rules.addName(g.name);
  const techniques = new OrderedSet();
  for (const t of g.techniques ?? []) techniques.add(canonicalTechnique(t));
  const tactics = new OrderedSet();
  for (const t of g.tactics ?? []) tactics.add(t.trim());
  const merged = mergeEntities([entities]);
  const tenantId = canonicalId(g.tenantId);
  const caseId = `${g.source}:${g.id}`;
  const alert = makeAlert({
    id: g.id,
    tenantId,
    name: g.name,
    description: g.description,
    ruleIds: rules.ids.values,
    ruleNames: rules.names.values,
    productName: g.productName?.trim() || g.source,
    providerSeverity: g.severity,
    tactics: tactics.values,
    techniques: techniques.values,
    entities: merged,
    startTime: g.startTime ?? detectedAt,
    endTime: g.endTime ?? g.startTime ?? detectedAt,
    detectedAt,
  });
  return {
    ok: true,
    content: {
      caseId,
      tenantId,
      source: 'alert',
      title: g.name,
      ...(g.description ? { description: g.description } : {}),
      providerSeverity: g.severity,
      alerts: [alert],
      entities: merged,
      detectedAt,
      revisionKey: g.detectedAt,
    },
  };
}
