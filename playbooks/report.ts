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
import { zoneOffsetMs } from '../shared/notify/hours';
import { EVIDENCE_QUERIES, type EvidenceQuery } from './evidence';
import type { EvidenceCondition, EvidenceStep, Playbook, PlaybookContext, ReportContext } from './types';

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
 * (`zoneOffsetMs`): Intl formatting costs about a microsecond per call and this runs
 * twice per case.
 */
export function localTime(iso: string, timeZone: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'unknown time';
  const d = new Date(t + zoneOffsetMs(t, timeZone));
  return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())} ${timeZone}`;
}

function upper(s: Severity): string {
  return s.toUpperCase();
}

/** Distinct values of `pick` over the alerts, in first-seen order. */
function distinct(alerts: Case['alerts'], pick: (a: Case['alerts'][number]) => readonly string[]): string[] {
  const seen = new Set<string>();
  for (const a of alerts) for (const v of pick(a)) seen.add(v);
  return [...seen];
}

function entityLines(ctx: PlaybookContext): string[] {
  const out: string[] = [];
  for (const f of ctx.facts.entities) {
    const e = f.entity;
    const tags: string[] = [];
    if (f.scope) tags.push(f.scope);
    if (f.maintenance) tags.push('maintenance terminal');
    if (f.dmzManagement) tags.push('DMZ management device');
    if (f.indicator)
      tags.push(`listed: ${clean(f.indicator.source, 60)}${f.indicator.category ? ` ${clean(f.indicator.category, 60)}` : ''}`);
    const suffix = tags.length > 0 ? ` (${tags.join('; ')})` : '';
    // Process entities are shown by their command lines below.
    if (e.kind !== 'process') out.push(`  ${e.kind}: ${clean(e.label, 160)}${suffix}`);
  }
  for (const cl of ctx.facts.commandLines) out.push(`  command line: ${clean(cl)}`);
  return out.length > 0 ? out : ['  (no entities in the alert)'];
}

function ruleLine(ctx: PlaybookContext): string {
  const names = distinct(ctx.case.alerts, (a) => (a.ruleNames.length > 0 ? a.ruleNames : [a.name]));
  const rc = ctx.classification.ruleCode;
  // Name the rule code unless the rule name already starts with it ("K4-1 Brute force …").
  const code = rc && !names.some((n) => n.toLowerCase().includes(rc.toLowerCase())) ? `${clean(rc, 80)}: ` : '';
  const shown = names.slice(0, 3).map((n) => clean(n, 160));
  return `${code}${shown.join(' | ') || '(unnamed rule)'}${names.length > 3 ? ` (+${names.length - 3} more)` : ''}`;
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
    lines.push(`  ATT&CK: ${[...tactics, ...techniques].map((t) => clean(t, 40)).join(', ')}`);
  }
  lines.push('');
  lines.push('Entities');
  lines.push(...entityLines(ctx));
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
  lines.push(
    `  Related cases: ${v.relatedCaseIds.length > 0 ? v.relatedCaseIds.map((id) => clean(id, 120)).join(', ') : 'none in the window'}`,
  );
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
  lines.push(`First report due by ${ctx.notifyBy} (${localTime(ctx.notifyBy, tz)}).`);
  if (ctx.lateByMs !== undefined && ctx.lateByMs > 0) {
    lines.push(`Late: built ${Math.ceil(ctx.lateByMs / 60000)} min after the first-report deadline.`);
  }
  return lines.join('\n');
}
