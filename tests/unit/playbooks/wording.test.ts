import { createBrain } from '../../../shared/triage/brain';
import { host, ip, makeCase, SimulatedStore, triage } from '../../fixtures/brain/factory';

// Contoso: DMZ 172.16.10.0/24; mailrelay-01 is a DMZ management device.
const brain = createBrain();

describe('first-report wording says only what the alert shows', () => {
  it('calls a DMZ source a DMZ source, not an internal one, in an unauthorised-access report', () => {
    const c = makeCase({ caseId: 'ua-dmz', name: 'K1-1 Sign-in', ruleIds: ['K1-1'], entities: [ip('172.16.10.9')] });

    const report = triage(brain, new SimulatedStore(), c).scored.firstReport;

    expect(report).toContain('Source: dmz (172.16.10.9 (dmz))');
    expect(report).not.toContain('internal (172.16.10.9');
  });

  it('asks about the connection between the hosts without claiming which side started it (lateral movement)', () => {
    const c = makeCase({
      caseId: 'lm-dmz',
      name: 'K7-2 Remote service creation from ws-fin-023 on mailrelay-01',
      ruleIds: ['K7-2'],
      entities: [host('ws-fin-023'), ip('10.20.5.23'), host('mailrelay-01'), ip('172.16.10.25')],
    });

    const report = triage(brain, new SimulatedStore(), c).scored.firstReport;

    expect(report).toMatch(/Is the connection between mailrelay-01 and 10\.20\.5\.23 \(internal\), 172\.16\.10\.25 \(dmz\) expected\?/);
    expect(report).not.toContain('expected to connect to');
  });
});
