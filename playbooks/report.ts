/**
 * The common first-report layout. Each playbook's `firstReport` calls
 * `renderFirstReport` with itself, so the report always has the same sections:
 * what happened, entities, why this severity, kill chain, threat level, the
 * playbook's notes, what the customer is asked to confirm, the next checks, limits.
 *
 * Plain text. Attacker-controlled strings (titles, command lines, user names) are
 * made single-line and bounded here; channels still escape for their format.
 */

import type { Case, Severity } from '../shared/model/domain';
import { parseInstant, utcFields } from '../shared/model/instant';
import { zoneOffsetMs } from '../shared/notify/hours';
import { EVIDENCE_QUERIES, type EvidenceQuery } from './evidence';
import {
  EVIDENCE_CONDITIONS,
  type EvidenceCondition,
  type EvidenceStep,
  type Playbook,
  type PlaybookContext,
  type ReportContext,
} from './types';

/** Longest attacker-controlled value rendered (command lines can be kilobytes of base64). */
export const MAX_VALUE_CHARS = 300;

// Control characters and Unicode line/paragraph separators would let a value forge report lines.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// Same class without the global flag: a stateless test for the common clean case.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const HAS_CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Makes an untrusted value single-line (control characters shown as `\xNN`) and bounded. */
export function clean(value: string, max = MAX_VALUE_CHARS): string {
  if (value.length <= max && !HAS_CONTROL_RE.test(value)) return value;
  const s = value.replace(CONTROL_RE, (ch) => {
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    if (ch === '\t') return '\\t';
    return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

/**
 * `values.map((v) => clean(v, max)).join(separator)`, with one scan of the joined text
 * instead of one per value when nothing needs cleaning (the usual case; a report lists
 * up to a few hundred related case ids). `separator` must be clean itself.
 */
export function cleanJoin(values: readonly string[], max: number, separator: string): string {
  let fits = true;
  for (const v of values) if (v.length > max) fits = false;
  const joined = fits ? values.join(separator) : '';
  if (fits && !HAS_CONTROL_RE.test(joined)) return joined;
  return values.map((v) => clean(v, max)).join(separator);
}

function holds(when: EvidenceCondition, ctx: PlaybookContext): boolean {
  switch (when) {
    case 'always':
      return true;
    case 'external-ip':
      return ctx.facts.hasExternalIp;
    case 'internal-only':
      return ctx.facts.internalOnly;
    case 'rule-severity-high':
      return ctx.classification.ruleSeverity === 'high' || ctx.classification.ruleSeverity === 'critical';
    default: {
      const never: never = when;
      return never;
    }
  }
}

/** The evidence queries of a playbook that apply to this case, in declaration order. */
export function selectEvidence(steps: readonly EvidenceStep[], ctx: PlaybookContext): EvidenceQuery[] {
  const out: EvidenceQuery[] = [];
  for (const s of steps) if (holds(s.when, ctx)) out.push(EVIDENCE_QUERIES[s.query]);
  return out;
}

/** The host the activity is about: the first host entity, else the first internal IP, else any IP. */
export function subjectHost(ctx: PlaybookContext): string | undefined {
  const f = ctx.facts;
  const host = f.hosts[0] ?? f.ips.find((i) => i.scope !== 'external') ?? f.ips[0];
  return host ? clean(host.entity.label, 120) : undefined;
}

/** Labels of the case's IPs with their scope (`203.0.113.77 (external)`). */
export function ipsWithScope(ctx: PlaybookContext): string[] {
  return ctx.facts.ips.map((i) => `${clean(i.entity.label, 60)}${i.scope ? ` (${i.scope})` : ''}`);
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * `YYYY-MM-DD HH:MM Zone` in the tenant's zone. Built from the cached zone offset
 * (`zoneOffsetMs`) and calendar arithmetic: Intl formatting costs about a microsecond per
 * call, and a Date with five getters most of one, and this runs twice per case.
 */
export function localTime(iso: string, timeZone: string): string {
  const t = parseInstant(iso);
  if (!Number.isFinite(t)) return 'unknown time';
  const d = utcFields(t + zoneOffsetMs(t, timeZone));
  return `${d.year}-${two(d.month)}-${two(d.day)} ${two(d.hour)}:${two(d.minute)} ${timeZone}`;
}

function upper(s: Severity): string {
  return s.toUpperCase();
}

/** Distinct values of `pick` over the alerts, in first-seen order. */
function distinct(alerts: Case['alerts'], pick: (a: Case['alerts'][number]) => readonly string[]): readonly string[] {
  const only = alerts.length === 1 ? alerts[0] : undefined;
  // One alert with a short list (the usual case): the list itself when it has no repeats, no Set.
  if (only !== undefined) {
    const values = pick(only);
    if (values.length <= 1 || (values.length <= 8 && values.every((v, i) => values.indexOf(v) === i))) return values;
  }
  const seen = new Set<string>();
  for (const a of alerts) for (const v of pick(a)) seen.add(v);
  return [...seen];
}

/** Appends the entity section's lines to `lines`. */
function pushEntityLines(lines: string[], ctx: PlaybookContext): void {
  const before = lines.length;
  for (const f of ctx.facts.entities) {
    const e = f.entity;
    // Process entities are shown by their command lines below.
    if (e.kind === 'process') continue;
    // Tags joined by hand: no array per entity on this per-case path.
    let tags = f.scope ?? '';
    if (f.maintenance) tags = tags ? `${tags}; maintenance terminal` : 'maintenance terminal';
    if (f.dmzManagement) tags = tags ? `${tags}; DMZ management device` : 'DMZ management device';
    if (f.indicator) {
      const listed = `listed: ${clean(f.indicator.source, 60)}${f.indicator.category ? ` ${clean(f.indicator.category, 60)}` : ''}`;
      tags = tags ? `${tags}; ${listed}` : listed;
    }
    lines.push(`  ${e.kind}: ${clean(e.label, 160)}${tags ? ` (${tags})` : ''}`);
  }
  for (const cl of ctx.facts.commandLines) lines.push(`  command line: ${clean(cl)}`);
  if (lines.length === before) lines.push('  (no entities in the alert)');
}

function ruleLine(ctx: PlaybookContext): string {
  const names = distinct(ctx.case.alerts, (a) => (a.ruleNames.length > 0 ? a.ruleNames : [a.name]));
  const rc = ctx.classification.ruleCode;
  // Name the rule code unless the rule name already starts with it ("K4-1 Brute force …").
  const rcLower = rc?.toLowerCase();
  const code = rc && rcLower !== undefined && !names.some((n) => n.toLowerCase().includes(rcLower)) ? `${clean(rc, 80)}: ` : '';
  const shown = cleanJoin(names.length > 3 ? names.slice(0, 3) : names, 160, ' | ');
  return `${code}${shown || '(unnamed rule)'}${names.length > 3 ? ` (+${names.length - 3} more)` : ''}`;
}

/**
 * The report's fixed closing sections (next checks, limits, then a blank line) as one block
 * of lines, built once per playbook and combination of evidence conditions: it is the same
 * text for every case that meets the same conditions.
 */
const closingBlocks = new WeakMap<Playbook, Map<number, string>>();

function checksAndLimits(pb: Playbook, ctx: PlaybookContext): string {
  let key = 0;
  for (let i = 0; i < EVIDENCE_CONDITIONS.length; i++) {
    const when = EVIDENCE_CONDITIONS[i];
    if (when !== undefined && holds(when, ctx)) key |= 1 << i;
  }
  let blocks = closingBlocks.get(pb);
  if (!blocks) {
    blocks = new Map();
    closingBlocks.set(pb, blocks);
  }
  let block = blocks.get(key);
  if (block === undefined) {
    const lines: string[] = [];
    const checks = selectEvidence(pb.evidence, ctx);
    if (checks.length > 0) {
      lines.push('');
      lines.push('Next checks (evidence queries)');
      for (const q of checks) lines.push(`  - ${q.id}: ${q.description} [${q.source}]`);
    }
    if (pb.limits.length > 0) {
      lines.push('');
      lines.push('Limits');
      for (const l of pb.limits) lines.push(`  - ${l}`);
    }
    lines.push('');
    block = lines.join('\n');
    blocks.set(key, block);
  }
  return block;
}

/** Renders the first report of a case with a playbook's questions, notes, checks and limits. */
export function renderFirstReport(pb: Playbook, ctx: ReportContext): string {
  const c = ctx.case;
  const tz = ctx.policy.tenant.timezone;
  const lines: string[] = [];
  lines.push(`[${upper(ctx.severity)}] ${pb.title}: ${clean(c.title, 200)}`);
  const incident = c.sentinel?.incidentNumber !== undefined ? ` (Sentinel incident #${c.sentinel.incidentNumber})` : '';
  lines.push(`Case ${clean(c.caseId, 120)}${incident} for ${clean(ctx.policy.tenant.name, 120)}`);
  lines.push('');
  lines.push('What happened');
  lines.push(`  Detected: ${c.detectedAt} (${localTime(c.detectedAt, tz)})`);
  lines.push(`  Rule: ${ruleLine(ctx)}`);
  lines.push(`  Classified as ${pb.id} by ${clean(ctx.classification.classifiedBy, 200)}`);
  lines.push(`  Provider severity: ${c.providerSeverity}; alerts: ${c.alerts.length}`);
  const tactics = distinct(c.alerts, (a) => a.tactics);
  const techniques = distinct(c.alerts, (a) => a.techniques);
  if (tactics.length + techniques.length > 0) {
    lines.push(`  ATT&CK: ${cleanJoin(techniques.length > 0 ? tactics.concat(techniques) : tactics, 40, ', ')}`);
  }
  lines.push('');
  lines.push('Entities');
  pushEntityLines(lines, ctx);
  lines.push('');
  lines.push(`Why ${upper(ctx.severity)}`);
  for (const r of ctx.reasons) {
    const move = r.from !== undefined && r.from !== r.to ? `${r.from} → ${r.to}` : r.to;
    lines.push(`  - ${r.rule} (${r.effect} ${move}): ${r.detail}`);
  }
  lines.push('');
  const v = ctx.verdict;
  lines.push('Kill chain');
  lines.push(`  Phases: ${v.phases.length > 0 ? v.phases.join(' → ') : 'none identified'}; stage: ${v.stage ?? 'unknown'}`);
  lines.push(`  Related cases: ${v.relatedCaseIds.length > 0 ? cleanJoin(v.relatedCaseIds, 120, ', ') : 'none in the window'}`);
  if (v.multiStage) lines.push('  Multi-stage attack suspected');
  if (v.detail) lines.push(`  ${clean(v.detail, 400)}`);
  for (const i of v.ignoredEntities) lines.push(`  Not correlated: ${clean(i.key, 160)}: ${clean(i.why, 200)}`);
  if (ctx.threatLevel) {
    lines.push('');
    lines.push(`Threat level (NIST SP 800-30): ${ctx.threatLevel}${ctx.scenario ? ` (scenario ${clean(ctx.scenario, 80)})` : ''}`);
  }
  const notes = pb.notes(ctx);
  if (notes.length > 0) {
    lines.push('');
    lines.push('Notes');
    for (const n of notes) lines.push(`  ${n}`);
  }
  lines.push('');
  lines.push('Please confirm');
  pb.confirm(ctx).forEach((q, i) => {
    lines.push(`  ${i + 1}. ${q}`);
  });
  lines.push(checksAndLimits(pb, ctx));
  lines.push(`First report due by ${ctx.notifyBy} (${localTime(ctx.notifyBy, tz)}).`);
  if (ctx.lateByMs !== undefined && ctx.lateByMs > 0) {
    lines.push(`Late: built ${Math.ceil(ctx.lateByMs / 60000)} min after the first-report deadline.`);
  }
  return lines.join('\n');
}
