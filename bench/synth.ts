/**
 * Synthetic SecurityAlert rows derived from the samples, with varied entities, for
 * benchmarks: a mix of the seed scenarios across a few hundred hosts/IPs/accounts so
 * correlation finds realistic neighbours.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root (found from here, whether running from source or from dist/). */
export const REPO_ROOT: string = (() => {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();

/** Where the team's samples live (beside the repository). */
export const SAMPLES = join(REPO_ROOT, '..', 'shared', 'samples');

const TEMPLATES = [
  { name: 'K4-1 Brute force against VPN gateway', tactics: 'CredentialAccess', techniques: '["T1110"]', severity: 'Medium' },
  {
    name: 'K2-3 Encoded PowerShell download cradle executed',
    tactics: 'Execution, CommandAndControl',
    techniques: '["T1059","T1105"]',
    severity: 'High',
  },
  { name: 'K7-2 Remote service creation (lateral movement)', tactics: 'LateralMovement', techniques: '["T1021"]', severity: 'Medium' },
  { name: 'K3-1 Connection to known botnet C&C address', tactics: 'CommandAndControl', techniques: '["T1071"]', severity: 'Medium' },
  { name: 'K1-1 Sign-in from unfamiliar location', tactics: 'InitialAccess', techniques: '["T1078"]', severity: 'Low' },
] as const;

/** A deterministic pseudo-random generator (mulberry32) so runs are comparable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Produces `n` SecurityAlert rows as JSON texts, `hosts` distinct hosts, spread over `spanMs` before `end`. */
export function synthAlerts(
  n: number,
  options: { seed?: number; hosts?: number; end?: number; spanMs?: number; tenantId?: string } = {},
): string[] {
  const base = (JSON.parse(readFileSync(join(SAMPLES, 'securityalert-records.json'), 'utf8')) as Record<string, unknown>[])[0] as Record<
    string,
    unknown
  >;
  const rand = rng(options.seed ?? 42);
  const hosts = options.hosts ?? 500;
  const end = options.end ?? Date.parse('2026-11-20T12:00:00Z');
  const span = options.spanMs ?? 6 * 24 * 3600 * 1000;
  const tenantId = options.tenantId ?? (base.TenantId as string);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = TEMPLATES[Math.floor(rand() * TEMPLATES.length)] ?? TEMPLATES[0];
    const h = Math.floor(rand() * hosts);
    const ext = `203.0.113.${Math.floor(rand() * 250) + 1}`;
    const at = new Date(end - Math.floor(rand() * span)).toISOString();
    const entities = [
      { $id: '2', HostName: `ws-${h}`, DnsDomain: 'corp.contoso.example', Type: 'host' },
      { $id: '3', Name: `user${h % 97}`, NTDomain: 'CONTOSO', UPNSuffix: 'contoso.example', Host: { $ref: '2' }, Type: 'account' },
      { $id: '4', Address: `10.${(h >> 8) & 255}.${h & 255}.${(i % 200) + 1}`, Type: 'ip' },
      { $id: '5', Address: ext, Type: 'ip' },
    ];
    const row = {
      ...base,
      SystemAlertId: `bench-${options.seed ?? 42}-${i}`,
      AlertName: t.name,
      DisplayName: t.name,
      AlertSeverity: t.severity,
      TimeGenerated: at,
      StartTime: at,
      EndTime: at,
      ProcessingEndTime: at,
      Tactics: t.tactics,
      Techniques: t.techniques,
      ExtendedProperties: JSON.stringify({ 'Analytic Rule Name': t.name }),
      Entities: JSON.stringify(entities),
      TenantId: tenantId,
    };
    out.push(JSON.stringify(row));
  }
  return out;
}
