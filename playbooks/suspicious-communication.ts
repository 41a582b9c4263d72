/**
 * Suspicious communication (seed §6, business security): malware-like traffic
 * in proxy logs (periodic beacons, regular patterns, POSTs out). The seed gives
 * no first-report level for it; medium, like the reputation hit it resembles,
 * because it is an indication to verify rather than a confirmed compromise.
 */
import { renderFirstReport, subjectHost } from './report';
import type { Playbook } from './types';

/** The suspicious-communication playbook. */
export const suspiciousCommunication: Playbook = {
  id: 'suspicious-communication',
  title: 'Suspicious communication',
  summary: 'Malware-like network traffic: beacons, command-and-control channels, data leaving.',
  recognition: {
    ruleNamePatterns: [
      /\bbeacon(ing)?\b/i,
      // Every spelling command execution's patterns leave to this one: and / & / - / slash.
      /\b(c2|c&c|command(?:[\s-]+(?:and|&)[\s-]+|\s*[&/]\s*)control)\b/i,
      /\bsuspicious\s+(outbound\s+|network\s+)?(traffic|communication|connection)s?\b/i,
      /\bdns\s+tunnel/i,
      /\b(data\s+exfiltration|large\s+(upload|outbound))\b/i,
    ],
    techniques: [
      'T1071',
      'T1573',
      'T1105',
      'T1095',
      'T1571',
      'T1572',
      'T1090',
      'T1102',
      'T1568',
      'T1132',
      'T1001',
      'T1041',
      'T1048',
      'T1567',
    ],
    tactics: ['CommandAndControl', 'Exfiltration'],
    indicatorHit: false,
  },
  impliedPhases: ['command-and-control'],
  defaultScenario: 'c2-communication',
  nominalSeverity: 'medium',
  baseSeverity() {
    return { severity: 'medium', detail: 'suspicious communication: medium (to be verified with proxy and reputation checks)' };
  },
  confirm(ctx) {
    const host = subjectHost(ctx) ?? 'the host';
    return [`Is this traffic from ${host} expected (an update agent, monitoring tool or cloud backup)?`];
  },
  notes() {
    return [];
  },
  evidence: [
    { query: 'beacon-periodic', when: 'always' },
    { query: 'proxy-post-out', when: 'always' },
    { query: 'ip-reputation', when: 'external-ip' },
  ],
  limits: ['Encrypted traffic that bypasses the proxy is judged on metadata only.'],
  firstReport(ctx) {
    return renderFirstReport(suspiciousCommunication, ctx);
  },
};
