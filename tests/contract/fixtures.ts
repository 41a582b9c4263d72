/**
 * Builders for store contract tests: small but complete domain objects, so adapters
 * are exercised with what the pipeline really stores.
 */
import type Database from 'better-sqlite3';
import type { Case, KillChainPhase, Severity, TriageResult } from '../../shared/model/domain';
import type { CaseRecord, EntitySighting, NotificationRecord, ParkedItem } from '../../shared/store/port';
import type { SqliteStore } from '../../shared/store/sqlite';

/** A case record for (tenant, case) at `revision`; `detectedAt` defaults to a fixed instant. */
export function caseRecord(
  tenantId: string,
  caseId: string,
  options: { revision?: number; detectedAt?: string; fingerprint?: string; severity?: Severity; state?: CaseRecord['state'] } = {},
): CaseRecord {
  const revision = options.revision ?? 1;
  const detectedAt = options.detectedAt ?? '2024-05-01T10:00:00.000Z';
  const severity = options.severity ?? 'medium';
  const c: Case = {
    caseId,
    tenantId,
    source: 'alert',
    shape: 'generic',
    title: `Brute force against vpn01 (${caseId})`,
    providerSeverity: 'medium',
    alerts: [
      {
        id: `${caseId}-a1`,
        tenantId,
        name: 'Brute force',
        ruleIds: ['K4-1'],
        ruleNames: ['K4-1 brute force'],
        productName: 'Azure Sentinel',
        providerSeverity: 'medium',
        tactics: ['CredentialAccess'],
        techniques: ['T1110'],
        entities: [],
        startTime: detectedAt,
        endTime: detectedAt,
        detectedAt,
      },
    ],
    entities: [
      { kind: 'ip', key: 'ip:203.0.113.77', altKeys: [], label: '203.0.113.77', fields: { address: '203.0.113.77' } },
      { kind: 'host', key: 'host:vpn01.corp.contoso.example', altKeys: ['host:vpn01'], label: 'vpn01', fields: {} },
    ],
    detectedAt,
    receivedAt: detectedAt,
    revisionKey: `${detectedAt}#${revision}`,
    fingerprint: options.fingerprint ?? `fp-${caseId}-${revision}`,
  };
  const result: TriageResult = {
    caseId,
    tenantId,
    revision,
    title: c.title,
    source: 'alert',
    playbook: 'brute-force',
    classifiedBy: 'policy rule K4-1',
    severity,
    providerSeverity: 'medium',
    sentinelSeverity: 'Medium',
    reasons: [{ rule: 'playbook.base', effect: 'set', to: severity, detail: 'brute force base severity' }],
    killChain: { phases: ['exploitation'], stage: 'exploitation', relatedCaseIds: [], multiStage: false, ignoredEntities: [] },
    evidence: [{ source: 'indicators', finding: 'no match', status: 'clear' }],
    entities: c.entities.map((e) => ({ key: e.key, kind: e.kind, label: e.label })),
    sla: { detectedAt, notifyBy: '2024-05-01T10:15:00.000Z' },
    notifications: [],
    policy: { source: 'default' },
    steps: [{ step: 'parse', status: 'ok' }],
    triagedAt: '2024-05-01T10:00:05.000Z',
  };
  return {
    tenantId,
    caseId,
    revision,
    revisionKey: c.revisionKey,
    fingerprint: c.fingerprint,
    state: options.state ?? 'done',
    detectedAt,
    case: c,
    result,
  };
}

/** A sighting of `entityKey` by a case. */
export function sighting(
  tenantId: string,
  caseId: string,
  entityKey: string,
  detectedAt: string,
  phases: readonly KillChainPhase[] = ['exploitation'],
): EntitySighting {
  return { tenantId, caseId, entityKey, detectedAt, phases, playbook: 'brute-force', severity: 'medium' };
}

/** A queued outbox entry; the key follows the port's documented shape. */
export function notification(
  tenantId: string,
  caseId: string,
  recipient: string,
  options: { kind?: NotificationRecord['kind']; createdAt?: string; status?: NotificationRecord['status'] } = {},
): NotificationRecord {
  const kind = options.kind ?? 'first-report';
  return {
    key: `${tenantId}|${caseId}|${kind}|${recipient}|0`,
    tenantId,
    caseId,
    revision: 1,
    kind,
    channel: 'outbox',
    recipient,
    payload: `First report for ${caseId}`,
    createdAt: options.createdAt ?? '2024-05-01T10:00:06.000Z',
    status: options.status ?? 'queued',
    attempts: 0,
  };
}

/** A parked item. */
export function parked(id: string, parkedAt: string, tenantId?: string): ParkedItem {
  return {
    id,
    ...(tenantId ? { tenantId } : {}),
    source: 'http:/api/alerts',
    reason: '$.records[0].Entities: expected array',
    errorName: 'InputValidationError',
    issues: [{ path: '$.records[0].Entities', reason: 'expected array' }],
    body: '{"records":[{"Entities":"x"}]}',
    parkedAt,
  };
}

/**
 * Keys of a case revised across several Cosmos transactional batches (cosmosRevision*.test.ts):
 * revision 1 has the 150 `OLD` keys (two batches); revision 2 keeps `KEPT` (30), drops `GONE` (120)
 * and adds `NEW` (80): 120 deletes and 110 writes, three batches (99, 99, 32 index operations).
 */
export const MULTI_BATCH_REVISION = (() => {
  const OLD = Array.from({ length: 150 }, (_, i) => `ip:10.1.${i >> 8}.${i & 255}`);
  return {
    AT: '2024-05-01T10:00:00.000Z',
    WINDOW: { from: '2024-04-24T10:00:00.000Z', to: '2024-05-08T10:00:00.000Z' },
    OLD,
    KEPT: OLD.slice(0, 30),
    GONE: OLD.slice(30),
    NEW: Array.from({ length: 80 }, (_, i) => `host:h${i}.corp.contoso.example`),
  };
})();

/**
 * The SQLite store's own connection (a private field): tests set SQLite limits on it, as a full disk
 * or a read-only file would hit the store.
 */
export function connectionOf(store: SqliteStore): Database.Database {
  return (store as unknown as { db: Database.Database }).db;
}
