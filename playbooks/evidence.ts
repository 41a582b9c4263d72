/**
 * The catalogue of evidence queries the seed's first-line analysis names
 * (seed-digest §6). Playbooks refer to them by id; the investigation issue
 * implements each id as a KQL query (or external look-up) against `source`.
 */

/** One evidence query: what it answers and where the data lives. */
export interface EvidenceQuery {
  readonly id: string;
  /** The question the query answers, as shown in the first report. */
  readonly description: string;
  /** Log Analytics table, or `external:…` for a third-party look-up, or `indicators` for the local lists. */
  readonly source: string;
}

const catalogue = {
  'fw-outbound-success': {
    description: "Firewall: did the host's outbound connection to the suspected C&C address succeed?",
    source: 'CommonSecurityLog',
  },
  'fw-src-dst-port': {
    description: 'Firewall: traffic between the source and destination IP and port (allowed or denied, volume, duration)',
    source: 'CommonSecurityLog',
  },
  'proxy-post-out': {
    description: 'Proxy: is the host sending HTTP POST requests to external destinations (possible data leak)?',
    source: 'CommonSecurityLog',
  },
  'proxy-fanout-internal': {
    description: 'Proxy/firewall: is the address talking to several internal IPs (internal reconnaissance, spread)?',
    source: 'CommonSecurityLog',
  },
  'proxy-domain-success': {
    description: 'Proxy: did traffic to the listed domain or IP succeed?',
    source: 'CommonSecurityLog',
  },
  'beacon-periodic': {
    description: 'Proxy: periodic, regular connections from the host (malware-like beaconing)?',
    source: 'CommonSecurityLog',
  },
  'signin-success-after-failures': {
    description: 'Sign-in logs: a successful sign-in for the same account or from the same source after the failures?',
    source: 'SigninLogs',
  },
  'ip-reputation': {
    description: 'Third-party reputation of the external address (VirusTotal, IBM X-Force) to rule out a false positive',
    source: 'external:reputation',
  },
  whois: {
    description: 'WHOIS/RDAP: who owns the external address',
    source: 'external:rdap',
  },
  'dmz-inbound': {
    description: 'Firewall: traffic from the DMZ towards the internal network around the alert',
    source: 'CommonSecurityLog',
  },
  'stepping-stone-burst': {
    description:
      'Firewall: bursts of malformed-flag packets from the host to one destination in a short time (stepping stone, DoS on others)?',
    source: 'CommonSecurityLog',
  },
  'blacklist-check': {
    description: "Is the destination on the SOC's global blacklist or the customer's own IP blacklist?",
    source: 'indicators',
  },
} as const satisfies Record<string, Omit<EvidenceQuery, 'id'>>;

/** An evidence query id. */
export type EvidenceQueryId = keyof typeof catalogue;

/** All evidence queries by id. */
export const EVIDENCE_QUERIES: Readonly<Record<EvidenceQueryId, EvidenceQuery>> = Object.fromEntries(
  Object.entries(catalogue).map(([id, q]) => [id, { id, ...q }]),
) as Record<EvidenceQueryId, EvidenceQuery>;

/** All evidence query ids. */
export const EVIDENCE_QUERY_IDS = Object.keys(catalogue) as EvidenceQueryId[];
