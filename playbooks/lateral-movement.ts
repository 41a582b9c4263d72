/**
 * Lateral movement (seed §6): spread from one internal host to others. First
 * report medium, naming the DMZ management device (mail relay, external DNS)
 * when one is involved, since those are the usual stepping stones.
 */
import { clean, ipsWithScope, renderFirstReport, subjectHost } from './report';
import type { Playbook } from './types';

/** The lateral-movement playbook. */
export const lateralMovement: Playbook = {
  id: 'lateral-movement',
  title: 'Lateral movement',
  summary: 'Activity spreading from one host to others inside the network (remote services, tool transfer).',
  recognition: {
    ruleNamePatterns: [
      /\blateral[- ]movement\b/i,
      /\b(psexec|wmiexec|smbexec)\b/i,
      /\bpass[- ]the[- ](hash|ticket)\b/i,
      /\binternal\s+(spread|propagation)\b/i,
    ],
    techniques: ['T1021', 'T1570', 'T1210', 'T1534', 'T1563', 'T1550', 'T1080', 'T1072'],
    tactics: ['LateralMovement'],
    indicatorHit: false,
  },
  impliedPhases: ['lateral-movement'],
  defaultScenario: 'lateral-movement-from-infected-terminal',
  nominalSeverity: 'medium',
  baseSeverity(ctx) {
    const dmz = ctx.facts.dmzManagementDevices;
    if (dmz.length > 0) {
      return {
        severity: 'medium',
        detail: `lateral movement involving the DMZ management device ${dmz.map((d) => clean(d, 80)).join(', ')}: medium per the runbook`,
      };
    }
    return { severity: 'medium', detail: 'lateral movement: medium per the runbook' };
  },
  confirm(ctx) {
    // The alert does not say which side started the connection, so the question names both without a direction.
    const host = ctx.facts.dmzManagementDevices[0] ?? subjectHost(ctx);
    const ips = ipsWithScope(ctx);
    const q = [
      `Is the connection between ${host ? clean(host, 120) : 'these hosts'} and ${ips.length > 0 ? ips.join(', ') : 'the other hosts'} expected?`,
    ];
    if (ctx.facts.dmzManagementDevices.length > 0) {
      q.push(`${clean(ctx.facts.dmzManagementDevices.join(', '), 200)} is a DMZ management device: is any administration of it under way?`);
    }
    return q;
  },
  notes(ctx) {
    const dmz = ctx.facts.dmzManagementDevices;
    return dmz.length > 0
      ? [`DMZ management device involved: ${dmz.map((d) => clean(d, 80)).join(', ')} (policy network.dmzManagementDevices).`]
      : ['No DMZ management device involved.'];
  },
  evidence: [
    { query: 'ip-reputation', when: 'external-ip' },
    { query: 'whois', when: 'external-ip' },
    { query: 'blacklist-check', when: 'always' },
    { query: 'stepping-stone-burst', when: 'always' },
  ],
  limits: ['Movement between hosts whose logs are not collected is not seen.'],
  firstReport(ctx) {
    return renderFirstReport(lateralMovement, ctx);
  },
};
