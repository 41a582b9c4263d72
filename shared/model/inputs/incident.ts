/**
 * The Sentinel incident trigger body: what an automation rule hands the relay playbook
 * (Logic App), which posts it unchanged to `/api/incidents`
 * (`incident-create-bruteforce.json`). Extra fields are tolerated and dropped; the
 * fields the product uses are strict. Sentinel omits many optional fields or sends
 * them as null (alert `techniques`, `owner.*`, `description`): absence is fine.
 *
 * Mapping to a Case (why, where not obvious):
 * - caseId = `object.name` (incident GUID), tenantId = `workspaceId`.
 * - detectedAt = the earliest of `createdTimeUtc` and the alerts' `timeGenerated`: the
 *   SLA clock starts at detection, and Sentinel creates the incident after its first alert.
 * - revisionKey = `lastModifiedTimeUtc` (every Update moves it), with its digits beyond the
 *   millisecond (see ../revision.ts): two updates within one millisecond stay ordered.
 * - Rule ids: `relatedAnalyticRuleIds` (ARM ids, plus their GUID tail), each alert's
 *   GUID `alertType` and additionalData "Analytic Rule Ids"/"Rule Id", and policy codes at
 *   the start of the title, description, alert names and "Analytic Rule Name". Incident-level
 *   ids and codes are added to every alert (alerts are what classification reads), and the
 *   title is added to the rule names (Sentinel titles incidents after the analytic rule).
 * - Tactics/techniques: an alert without its own gets the incident's `additionalData` lists
 *   (Sentinel often omits alert-level techniques).
 * - Entities: `relatedEntities` are incident-level; alerts carry none of their own here.
 *   Case.entities = all of them, deduplicated. An incident without alerts (Update events
 *   may omit them) gets one synthesised alert built from the incident itself, so that
 *   downstream steps always have at least one alert to read.
 * - `objectEventType: "Delete"` is rejected with a clear reason (a deleted incident
 *   cannot be triaged or written back to).
 */
import { z } from 'zod';
import type { InputIssue } from '../../errors';
import type { Alert } from '../domain';
import { mergeEntities, readIncidentEntities } from '../entities';
import { revisionDate, revisionMillis } from '../revision';
import {
  canonicalTechnique,
  childPath,
  idText,
  isGuid,
  isoDate,
  MAX_ALERTS_PER_INCIDENT,
  makeAlert,
  OrderedSet,
  optIsoDate,
  optText,
  optTextList,
  type ReadResult,
  RuleRefs,
  safeParseAt,
  sentinelSeverity,
  stringList,
  text,
} from './common';
import { canonicalId } from './securityAlert';

const additionalData = z.record(z.string(), z.unknown()).nullish();

const incidentAlertSchema = z.object({
  id: optText,
  name: optText,
  properties: z.object({
    systemAlertId: optText,
    alertDisplayName: text.min(1, { error: 'must not be empty' }),
    description: optText,
    alertType: optText,
    severity: sentinelSeverity,
    status: optText,
    productName: optText,
    productComponentName: optText,
    providerAlertId: optText,
    tactics: optTextList,
    techniques: optTextList,
    subTechniques: optTextList,
    startTimeUtc: optIsoDate,
    endTimeUtc: optIsoDate,
    timeGenerated: isoDate,
    additionalData,
    friendlyName: optText,
  }),
});

const EVENT_TYPES = ['Create', 'Update'] as const;

/** The incident trigger body (fields the product reads). */
export const incidentBodySchema = z.object({
  eventUniqueId: optText,
  objectSchemaType: z.literal('Incident', { error: 'expected "Incident"' }),
  objectEventType: z
    .enum(EVENT_TYPES, {
      error: (iss) =>
        iss.input === 'Delete' ? 'Delete events are not triaged (expected "Create" or "Update")' : 'expected "Create" or "Update"',
    })
    .optional(),
  workspaceId: idText,
  workspaceInfo: z.record(z.string(), z.unknown()).nullish(),
  object: z.object({
    id: idText.max(2048, { error: 'ARM id longer than 2048 characters' }),
    name: idText,
    etag: optText,
    type: optText,
    properties: z.object({
      title: text.min(1, { error: 'must not be empty' }),
      description: optText,
      severity: sentinelSeverity,
      status: optText,
      labels: z.array(z.unknown()).nullish(),
      firstActivityTimeUtc: optIsoDate,
      lastActivityTimeUtc: optIsoDate,
      lastModifiedTimeUtc: revisionDate,
      createdTimeUtc: isoDate,
      incidentNumber: z.number().int().nullish(),
      additionalData: z
        .object({
          tactics: optTextList,
          techniques: optTextList,
          alertProductNames: optTextList,
        })
        .nullish(),
      relatedAnalyticRuleIds: optTextList,
      incidentUrl: optText,
      providerName: optText,
      alerts: z
        .array(incidentAlertSchema)
        .max(MAX_ALERTS_PER_INCIDENT, { error: `more than ${MAX_ALERTS_PER_INCIDENT} alerts` })
        .nullish(),
      relatedEntities: z.array(z.unknown()).nullish(),
    }),
  }),
});
/** A validated incident trigger body. */
export type IncidentBody = z.output<typeof incidentBodySchema>;

/** True when an object looks like an incident trigger body (used for shape detection). */
export function looksLikeIncident(o: Record<string, unknown>): boolean {
  return 'objectSchemaType' in o || ('object' in o && ('workspaceId' in o || 'objectEventType' in o));
}

function additionalString(data: Record<string, unknown> | null | undefined, key: string): string | undefined {
  const v = data?.[key];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** Reads an incident trigger body at `path` into case content; all problems are collected. */
export function readIncident(raw: unknown, path: string): ReadResult {
  const issues: InputIssue[] = [];
  const r = safeParseAt(incidentBodySchema, raw, path);
  if (!r.ok) issues.push(...r.issues);
  // Entities are checked even when the body is otherwise wrong, so one rejection names every problem.
  const propsPath = childPath(childPath(path, 'object'), 'properties');
  const relatedRaw = (raw as { object?: { properties?: { relatedEntities?: unknown } } } | null)?.object?.properties?.relatedEntities;
  const related = Array.isArray(relatedRaw) ? readIncidentEntities(relatedRaw, childPath(propsPath, 'relatedEntities'), issues) : [];
  if (!r.ok || issues.length > 0) return { ok: false, issues };

  const body = r.data;
  const o = body.object;
  const p = o.properties;
  const tenantId = canonicalId(body.workspaceId);
  const caseRules = new RuleRefs();
  for (const id of p.relatedAnalyticRuleIds ?? []) caseRules.addId(id);
  caseRules.addCodeFrom(p.title);
  caseRules.addCodeFrom(p.description ?? undefined);

  const caseTactics = new OrderedSet().addAll(p.additionalData?.tactics ?? undefined);
  const caseTechniques = new OrderedSet();
  for (const t of p.additionalData?.techniques ?? []) caseTechniques.add(canonicalTechnique(t));
  const incidentTactics = [...caseTactics.values];
  const incidentTechniques = [...caseTechniques.values];

  const alerts: Alert[] = [];
  const alertsPath = childPath(propsPath, 'alerts');
  for (const [i, a] of (p.alerts ?? []).entries()) {
    const ap = a.properties;
    const rules = new RuleRefs();
    const ad = ap.additionalData ?? undefined;
    rules.addName(additionalString(ad, 'Analytic Rule Name'));
    if (ad?.['Analytic Rule Ids'] !== undefined && ad['Analytic Rule Ids'] !== null) {
      const idsPath = childPath(childPath(childPath(childPath(alertsPath, i), 'properties'), 'additionalData'), 'Analytic Rule Ids');
      for (const id of stringList(ad['Analytic Rule Ids'], idsPath, issues)) rules.addId(id);
    }
    rules.addId(additionalString(ad, 'Rule Id'));
    if (ap.alertType && isGuid(ap.alertType)) rules.addId(ap.alertType);
    rules.addName(ap.alertDisplayName);
    rules.addCodeFrom(ap.description ?? undefined);
    rules.ids.addAll(caseRules.ids.values);
    rules.names.add(p.title);
    const techniques = new OrderedSet();
    for (const t of ap.techniques ?? []) techniques.add(canonicalTechnique(t));
    for (const t of ap.subTechniques ?? []) techniques.add(canonicalTechnique(t));
    const tactics = new OrderedSet().addAll(ap.tactics ?? undefined);
    // Sentinel often omits alert-level techniques; the incident's additionalData lists them.
    if (tactics.values.length === 0) tactics.addAll(incidentTactics);
    if (techniques.values.length === 0) techniques.addAll(incidentTechniques);
    caseTactics.addAll(tactics.values);
    caseTechniques.addAll(techniques.values);
    alerts.push(
      makeAlert({
        id: canonicalId(ap.systemAlertId?.trim() || a.name?.trim() || `${o.name}#${i}`),
        tenantId,
        name: ap.alertDisplayName,
        description: ap.description,
        ruleIds: rules.ids.values,
        ruleNames: rules.names.values,
        productName: ap.productName?.trim() || 'unknown',
        providerSeverity: ap.severity,
        tactics: tactics.values,
        techniques: techniques.values,
        entities: [],
        startTime: ap.startTimeUtc ?? ap.timeGenerated,
        endTime: ap.endTimeUtc ?? ap.startTimeUtc ?? ap.timeGenerated,
        detectedAt: ap.timeGenerated,
      }),
    );
  }
  if (issues.length > 0) return { ok: false, issues };

  const entities = mergeEntities([related]);
  let detectedAt = p.createdTimeUtc;
  for (const a of alerts) if (a.detectedAt < detectedAt) detectedAt = a.detectedAt;
  if (alerts.length === 0) {
    // Synthesised so that every case has an alert (see the file comment).
    caseRules.names.add(p.title);
    alerts.push(
      makeAlert({
        id: canonicalId(o.name),
        tenantId,
        name: p.title,
        description: p.description,
        ruleIds: caseRules.ids.values,
        ruleNames: caseRules.names.values,
        productName: p.additionalData?.alertProductNames?.[0] ?? p.providerName ?? 'Azure Sentinel',
        providerSeverity: p.severity,
        tactics: caseTactics.values,
        techniques: caseTechniques.values,
        entities,
        startTime: p.firstActivityTimeUtc ?? detectedAt,
        endTime: p.lastActivityTimeUtc ?? p.firstActivityTimeUtc ?? detectedAt,
        detectedAt,
      }),
    );
  }

  return {
    ok: true,
    content: {
      caseId: canonicalId(o.name),
      tenantId,
      source: 'incident',
      sentinel: {
        incidentArmId: o.id,
        incidentName: o.name,
        ...(p.incidentNumber !== undefined && p.incidentNumber !== null ? { incidentNumber: p.incidentNumber } : {}),
        ...(o.etag ? { etag: o.etag } : {}),
        ...(p.incidentUrl ? { url: p.incidentUrl } : {}),
        ...(p.status ? { status: p.status } : {}),
        lastModifiedTimeUtc: revisionMillis(p.lastModifiedTimeUtc),
      },
      title: p.title,
      ...(p.description ? { description: p.description } : {}),
      providerSeverity: p.severity,
      alerts,
      entities,
      detectedAt,
      revisionKey: p.lastModifiedTimeUtc,
    },
  };
}
