/**
 * Command execution (seed §6, C&C / objective): attack commands or tools run on
 * a host. Critical unless the host is a registered maintenance terminal (then
 * medium); either way the customer is asked whether a user ran it.
 */
import { clean, renderFirstReport, subjectHost } from './report';
import type { Playbook, PlaybookContext } from './types';

function labels(values: readonly string[]): string {
  return values.map((v) => clean(v, 80)).join(', ');
}

/**
 * Why the case is not on a maintenance terminal, naming the entities that failed the check (not
 * merely the first host: with ws-ops-001 and ws-fin-023 it is ws-fin-023 that keeps it critical).
 */
function notMaintenanceDetail(ctx: PlaybookContext): string {
  const f = ctx.facts;
  const failed = f.nonMaintenanceSubjects;
  if (failed.length === 0) return 'command execution with no host or IP entity in the alert, so not shown to be on a maintenance terminal';
  const one = failed.length === 1;
  const what = one ? 'not a maintenance terminal' : 'not maintenance terminals';
  if (f.hosts.length > 0) {
    const others =
      f.maintenanceMatches.length === 0
        ? ''
        : ` (${labels(f.maintenanceMatches)} ${f.maintenanceMatches.length === 1 ? 'is one' : 'are'}, but every host involved must be)`;
    return `command execution on ${labels(failed)}, ${what}${others}`;
  }
  const others =
    f.maintenanceMatches.length === 0
      ? ''
      : ` (${labels(f.maintenanceMatches)} ${f.maintenanceMatches.length === 1 ? 'is' : 'are'} in network.maintenanceHosts, but without a host entity every address must be)`;
  return `command execution, no host entity: ${labels(failed)} ${one ? 'is' : 'are'} ${what}${others}`;
}

/** The command-execution playbook. */
export const commandExecution: Playbook = {
  id: 'command-execution',
  title: 'Command execution',
  summary: 'Attack commands or tools executed on a host (remote control, objective execution).',
  recognition: {
    // "command" never counts when it begins "command and control" / "command-and-control" /
    // "command & control" / "command/control": that is C2 traffic (suspicious communication or a
    // reputation hit, medium), and this playbook is checked first with a critical base.
    ruleNamePatterns: [
      /\bcommand[- ]?(line|execution)\b/i,
      /\b(suspicious|malicious|encoded|obfuscated)\s+(powershell|command(?!s?[\s/-]*(?:(?:and|&)[\s/-]*)?control\b)|script|cmd)/i,
      /\battack (tool|command(?!s?[\s/-]*(?:(?:and|&)[\s/-]*)?control\b))s?\b/i,
      /\b(powershell|cmd\.exe|wscript|cscript|mshta|rundll32|regsvr32|certutil)\b.*\b(execut|launch|spawn|download|run)/i,
    ],
    techniques: ['T1059', 'T1047', 'T1106', 'T1218'],
    tactics: ['Execution'],
    indicatorHit: false,
  },
  impliedPhases: ['installation'],
  defaultScenario: 'remote-control-of-terminal',
  nominalSeverity: 'critical',
  baseSeverity(ctx) {
    if (ctx.facts.maintenanceTerminal) {
      return {
        severity: 'medium',
        detail: `command execution on a maintenance terminal (${labels(ctx.facts.maintenanceMatches)}; policy network.maintenanceHosts): medium per the runbook`,
      };
    }
    return { severity: 'critical', detail: `${notMaintenanceDetail(ctx)}: critical per the runbook` };
  },
  confirm(ctx) {
    const f = ctx.facts;
    // Several hosts: ask about each, since the command may have run on any of them.
    const host = f.hosts.length > 1 ? f.hosts.map((h) => clean(h.entity.label, 120)).join(' or ') : (subjectHost(ctx) ?? 'the host');
    const compromised = f.hosts.length > 1 ? 'the host it ran on' : host;
    const cl = f.commandLines[0];
    const q = [
      `Did a user on ${host} run this command${cl ? ` (${clean(cl, 160)})` : ''}? If nobody did, treat ${compromised} as compromised.`,
    ];
    // Named from the entities that passed the check (all of them, or the case would not be a maintenance one).
    if (f.maintenanceTerminal) {
      const many = f.maintenanceMatches.length > 1;
      q.push(
        `${labels(f.maintenanceMatches)} ${many ? 'are' : 'is'} registered as ${many ? 'maintenance terminals' : 'a maintenance terminal'}: was this planned maintenance work, and by whom?`,
      );
    }
    return q;
  },
  notes(ctx) {
    return ctx.facts.maintenanceTerminal
      ? [`Maintenance terminal: ${labels(ctx.facts.maintenanceMatches)} (severity medium instead of critical).`]
      : [];
  },
  evidence: [
    { query: 'fw-outbound-success', when: 'external-ip' },
    { query: 'proxy-post-out', when: 'always' },
  ],
  limits: ['Commands on devices whose logs are not collected (BYOD, unmanaged servers) are not seen.'],
  firstReport(ctx) {
    return renderFirstReport(commandExecution, ctx);
  },
};
