/**
 * Command execution (seed §6, C&C / objective): attack commands or tools run on
 * a host. Critical unless the host is a registered maintenance terminal (then
 * medium); either way the customer is asked whether a user ran it.
 */
import { clean, renderFirstReport, subjectHost } from './report';
import type { Playbook } from './types';

/** The command-execution playbook. */
export const commandExecution: Playbook = {
  id: 'command-execution',
  title: 'Command execution',
  summary: 'Attack commands or tools executed on a host (remote control, objective execution).',
  recognition: {
    ruleNamePatterns: [
      /\bcommand[- ]?(line|execution)\b/i,
      /\b(suspicious|malicious|encoded|obfuscated)\s+(powershell|command|script|cmd)/i,
      /\battack (tool|command)s?\b/i,
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
        detail: `command execution on a maintenance terminal (${ctx.facts.maintenanceMatches.map((m) => clean(m, 80)).join(', ')}; policy network.maintenanceHosts): medium per the runbook`,
      };
    }
    return {
      severity: 'critical',
      detail: `command execution on ${subjectHost(ctx) ?? 'a host'}, not a maintenance terminal: critical per the runbook`,
    };
  },
  confirm(ctx) {
    const host = subjectHost(ctx) ?? 'the host';
    const cl = ctx.facts.commandLines[0];
    const q = [`Did a user on ${host} run this command${cl ? ` (${clean(cl, 160)})` : ''}? If nobody did, treat ${host} as compromised.`];
    if (ctx.facts.maintenanceTerminal)
      q.push(`${host} is registered as a maintenance terminal: was this planned maintenance work, and by whom?`);
    return q;
  },
  notes(ctx) {
    return ctx.facts.maintenanceTerminal
      ? [`Maintenance terminal: ${ctx.facts.maintenanceMatches.map((m) => clean(m, 80)).join(', ')} (severity medium instead of critical).`]
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
