/**
 * The playbook registry. Order is classification priority (see `PLAYBOOK_IDS`).
 */
import { bruteForce } from './brute-force';
import { commandExecution } from './command-execution';
import { generic } from './generic';
import { lateralMovement } from './lateral-movement';
import { reputation } from './reputation';
import { suspiciousCommunication } from './suspicious-communication';
import { PLAYBOOK_IDS, type Playbook, type PlaybookId } from './types';
import { unauthorizedAccess } from './unauthorized-access';

/** Re-exports: the registry module is the one entry point other layers import. */
export type { EvidenceQuery, EvidenceQueryId } from './evidence';
export { EVIDENCE_QUERIES, EVIDENCE_QUERY_IDS } from './evidence';
export { clean, cleanJoin, localTime, renderFirstReport, selectEvidence } from './report';
export type {
  BaseSeverity,
  EvidenceCondition,
  EvidenceStep,
  Playbook,
  PlaybookContext,
  PlaybookId,
  Recognition,
  ReportContext,
} from './types';
export { PLAYBOOK_IDS } from './types';

const byId: Readonly<Record<PlaybookId, Playbook>> = {
  'command-execution': commandExecution,
  'brute-force': bruteForce,
  'lateral-movement': lateralMovement,
  'unauthorized-access': unauthorizedAccess,
  reputation,
  'suspicious-communication': suspiciousCommunication,
  generic,
};

/** All playbooks in classification priority order (generic last). */
export const PLAYBOOKS: readonly Playbook[] = PLAYBOOK_IDS.map((id) => byId[id]);

/** Whether a string names a playbook. */
export function isPlaybookId(id: string): id is PlaybookId {
  return Object.hasOwn(byId, id);
}

/** The playbook with this id, or undefined. */
export function findPlaybook(id: string): Playbook | undefined {
  return isPlaybookId(id) ? byId[id] : undefined;
}

/** The playbook with this id, or the generic fallback for an unknown id. */
export function getPlaybook(id: string): Playbook {
  return findPlaybook(id) ?? generic;
}
