/**
 * SecurityAlert rows as Log Analytics exports them (query results, data export to Event
 * Hub, `securityalert-records.json`). Peculiarities handled here:
 * - `Entities`, `ExtendedProperties`, `Techniques`, `SubTechniques` are JSON inside strings
 *   (possibly ""); issue paths point into the decoded content (`$[0].Entities[3].Address`).
 * - `Tactics` is comma-separated ("Execution, CommandAndControl").
 * - `TenantId` is the workspace id; the case id is `SystemAlertId`.
 * - Rule ids come from ExtendedProperties "Analytic Rule Ids" (JSON array inside a string),
 *   "Rule Id", and the `AlertType` of scheduled alerts (`<workspace guid>_<rule guid>`);
 *   rule names from "Analytic Rule Name", `AlertName` and `DisplayName`. Policy codes such
 *   as `K2-3` at the start of any of these are added to `ruleIds` (see RULE_CODE_RE).
 * Unknown columns are ignored (the export carries ~35 of them); the ones used are strict.
 */
import { z } from 'zod';
import type { InputIssue } from '../../errors';
import { mergeEntities, readSecurityAlertEntities } from '../entities';
import { compareRevisionKeys, optRevisionDate, revisionDate, revisionMillis } from '../revision';
import {
  canonicalTechnique,
  childPath,
  decodeJsonInString,
  idText,
  isGuid,
  jsonTypeOf,
  MAX_STRING_CHARS,
  makeAlert,
  OrderedSet,
  optIsoDate,
  optText,
  type ReadResult,
  RuleRefs,
  ruleGuidFromAlertType,
  safeParseAt,
  sentinelSeverity,
  splitTactics,
  stringList,
} from './common';

/**
 * Columns of a SecurityAlert row that the product reads (JSON-in-string columns are decoded separately).
 * `TimeGenerated` and `ProcessingEndTime` are read as revision keys (../revision.ts): Log Analytics
 * writes them to 100 ns, and two exports of one alert within a millisecond are distinct revisions.
 */
export const securityAlertRowSchema = z.object({
  TenantId: idText,
  TimeGenerated: revisionDate,
  SystemAlertId: idText,
  AlertName: optText,
  DisplayName: optText,
  AlertSeverity: sentinelSeverity,
  Description: optText,
  ProviderName: optText,
  VendorName: optText,
  ProductName: optText,
  ProductComponentName: optText,
  AlertType: optText,
  StartTime: optIsoDate,
  EndTime: optIsoDate,
  ProcessingEndTime: optRevisionDate,
  Tactics: optText,
  Status: optText,
  CompromisedEntity: optText,
  AlertLink: optText,
  Type: optText,
});
/** A validated SecurityAlert row (used columns only). */
export type SecurityAlertRow = z.output<typeof securityAlertRowSchema>;

/** The Log Analytics table name carried in `Type`; rows of other tables are ignored, not rejected. */
export const SECURITY_ALERT_TABLE = 'SecurityAlert';

/** Column names that mark an object as a SecurityAlert-style row (PascalCase Log Analytics columns). */
export const SECURITY_ALERT_MARKERS = ['SystemAlertId', 'AlertName', 'TimeGenerated', 'TenantId', 'Type'] as const;

/** Canonical spelling of an id: GUIDs lower-cased (sources disagree on case), anything else as given. */
export function canonicalId(id: string): string {
  return isGuid(id) ? id.toLowerCase() : id;
}

function extString(ext: Record<string, unknown>, key: string, extPath: string, issues: InputIssue[]): string | undefined {
  const v = ext[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') {
    issues.push({ path: childPath(extPath, key), reason: `expected string, got ${jsonTypeOf(v)}` });
    return undefined;
  }
  if (v.length > MAX_STRING_CHARS) {
    issues.push({ path: childPath(extPath, key), reason: `string longer than ${MAX_STRING_CHARS} characters` });
    return undefined;
  }
  return v.trim() === '' ? undefined : v.trim();
}

/**
 * Reads one SecurityAlert row at `path` into case content. Every problem in the row
 * (columns, JSON-in-string content, entities) is collected, so one rejection names them all.
 */
export function readSecurityAlert(raw: Record<string, unknown>, path: string): ReadResult {
  const issues: InputIssue[] = [];
  const r = safeParseAt(securityAlertRowSchema, raw, path);
  if (!r.ok) issues.push(...r.issues);

  const extPath = childPath(path, 'ExtendedProperties');
  const ext = decodeJsonInString(raw.ExtendedProperties, extPath, issues, 'object') as Record<string, unknown> | undefined;
  const techniques = stringList(raw.Techniques, childPath(path, 'Techniques'), issues);
  const subTechniques = stringList(raw.SubTechniques, childPath(path, 'SubTechniques'), issues);
  const entities = readSecurityAlertEntities(raw.Entities, childPath(path, 'Entities'), issues);

  const rules = new RuleRefs();
  if (ext) {
    const ids = ext['Analytic Rule Ids'];
    if (ids !== undefined && ids !== null)
      for (const id of stringList(ids, childPath(extPath, 'Analytic Rule Ids'), issues)) rules.addId(id);
    rules.addId(extString(ext, 'Rule Id', extPath, issues));
    rules.addName(extString(ext, 'Analytic Rule Name', extPath, issues));
  }
  const hasName = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (
    !hasName(raw.DisplayName) &&
    !hasName(raw.AlertName) &&
    !issues.some((i) => i.path.endsWith('.AlertName') || i.path.endsWith('.DisplayName'))
  ) {
    issues.push({ path: childPath(path, 'AlertName'), reason: 'required (AlertName or DisplayName)' });
  }
  if (!r.ok || issues.length > 0) return { ok: false, issues };
  const d = r.data;
  const name = (d.DisplayName?.trim() || d.AlertName?.trim()) as string;
  // Everything but the revision key is a millisecond instant, like every other time in the product.
  const generated = revisionMillis(d.TimeGenerated);

  rules.ids.add(ruleGuidFromAlertType(d.AlertType ?? undefined));
  rules.addName(d.AlertName ?? undefined);
  rules.addName(d.DisplayName ?? undefined);

  const techs = new OrderedSet();
  for (const t of techniques) techs.add(canonicalTechnique(t));
  for (const t of subTechniques) techs.add(canonicalTechnique(t));
  const merged = mergeEntities([entities]);
  const tenantId = canonicalId(d.TenantId);
  const id = canonicalId(d.SystemAlertId);
  const alert = makeAlert({
    id,
    tenantId,
    name,
    description: d.Description,
    ruleIds: rules.ids.values,
    ruleNames: rules.names.values,
    productName: d.ProductName?.trim() || d.ProviderName?.trim() || 'unknown',
    providerSeverity: d.AlertSeverity,
    tactics: new OrderedSet().addAll(splitTactics(d.Tactics)).values,
    techniques: techs.values,
    entities: merged,
    startTime: d.StartTime ?? generated,
    endTime: d.EndTime ?? d.StartTime ?? generated,
    detectedAt: generated,
  });
  // A re-exported alert (status change) carries a later ProcessingEndTime: that orders revisions.
  // Keys of different lengths: compared as instants, not as strings (`.123Z` sorts after `.1231Z`).
  const revisionKey =
    d.ProcessingEndTime !== undefined && compareRevisionKeys(d.ProcessingEndTime, d.TimeGenerated) > 0
      ? d.ProcessingEndTime
      : d.TimeGenerated;
  return {
    ok: true,
    content: {
      caseId: id,
      tenantId,
      source: 'alert',
      title: name,
      ...(d.Description ? { description: d.Description } : {}),
      providerSeverity: d.AlertSeverity,
      alerts: [alert],
      entities: merged,
      detectedAt: generated,
      revisionKey,
    },
  };
}
