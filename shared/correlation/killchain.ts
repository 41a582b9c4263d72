/**
 * Kill-chain phases of alerts and cases: ATT&CK tactic → phase (ARCHITECTURE §4),
 * technique overrides, tenant overrides (`policy.killChain`). Phase sets are
 * carried as 8-bit masks internally (bit i = KILL_CHAIN_PHASES[i]) so the hot path
 * does no allocation for set operations.
 */
import { type Alert, type Case, KILL_CHAIN_PHASES, type KillChainPhase } from '../model/domain';
import { jsonPath } from '../model/zodIssues';

/** Default ATT&CK tactic → kill-chain phase mapping (tactics spelled as Sentinel does, PascalCase). */
export const DEFAULT_TACTIC_PHASES: Readonly<Record<string, KillChainPhase>> = {
  Reconnaissance: 'reconnaissance',
  // Sentinel's legacy pre-ATT&CK-v8 tactic name.
  PreAttack: 'reconnaissance',
  ResourceDevelopment: 'weaponization',
  InitialAccess: 'delivery',
  CredentialAccess: 'exploitation',
  Execution: 'installation',
  Persistence: 'installation',
  PrivilegeEscalation: 'installation',
  DefenseEvasion: 'installation',
  CommandAndControl: 'command-and-control',
  Discovery: 'command-and-control',
  Collection: 'command-and-control',
  LateralMovement: 'lateral-movement',
  Exfiltration: 'actions-on-objectives',
  Impact: 'actions-on-objectives',
};

/**
 * Default technique overrides: techniques whose kill-chain meaning differs from
 * their ATT&CK tactic (T1190 is tagged InitialAccess but is the exploitation of a
 * public service; T1078 valid accounts is the seed's "unauthorised access", an
 * attack on authentication). A sub-technique (`T1110.003`) uses its parent's entry
 * unless it has its own.
 */
export const DEFAULT_TECHNIQUE_PHASES: Readonly<Record<string, KillChainPhase>> = {
  T1595: 'reconnaissance', // active scanning
  T1046: 'reconnaissance', // network service discovery: the seed's "host discovery by scanning"
  T1583: 'weaponization',
  T1587: 'weaponization',
  T1588: 'weaponization',
  T1566: 'delivery', // phishing
  T1189: 'delivery', // drive-by compromise
  T1190: 'exploitation', // exploit public-facing application
  T1203: 'exploitation', // exploitation for client execution
  T1068: 'exploitation', // exploitation for privilege escalation
  T1110: 'exploitation', // brute force
  T1078: 'exploitation', // valid accounts
  T1210: 'lateral-movement', // exploitation of remote services
};

/** A compiled tactic/technique → phase mapping. */
export interface KillChainMapping {
  /** Normalised tactic (`credentialaccess`) → phase. */
  readonly tactics: ReadonlyMap<string, KillChainPhase>;
  /** Upper-cased technique id (`T1190`, `T1110.003`) → phase. */
  readonly techniques: ReadonlyMap<string, KillChainPhase>;
  /** Tenant overrides that name no known phase, with their JSON path in the policy (ignored; reported by `checkPolicy`). */
  readonly invalid: readonly { readonly path: string; readonly value: string }[];
  /**
   * Memo of this mapping: a tactic spelling as an alert carries it (`CredentialAccess`) → its
   * phase bit (0 = none). Normalising a spelling costs a regex replace and this runs for every
   * alert of every case, so each spelling is resolved once per mapping (bounded, see MEMO_LIMIT).
   */
  readonly tacticBits: Map<string, number>;
  /** The same for technique ids as alerts carry them (`T1110.003`, ` t1059 `). */
  readonly techniqueBits: Map<string, number>;
}

/** Bound of each spelling memo: real feeds use a few hundred spellings; a flood of odd ones just resets it. */
const MEMO_LIMIT = 10_000;

const PHASE_INDEX: ReadonlyMap<string, number> = new Map(KILL_CHAIN_PHASES.map((p, i) => [p, i]));

/** Whether a string is a kill-chain phase. */
export function isKillChainPhase(s: string): s is KillChainPhase {
  return PHASE_INDEX.has(s);
}

/** Normalises a tactic spelling so `CredentialAccess`, `credential-access` and `Credential Access` are equal. */
export function normalizeTactic(t: string): string {
  return t.toLowerCase().replace(/[^a-z]/g, '');
}

/**
 * Compiles the default mapping with a tenant's overrides (`policy.killChain`).
 * Overrides naming an unknown phase are ignored and listed in `invalid`.
 */
export function compileKillChain(overrides?: {
  readonly tactics?: Readonly<Record<string, string>>;
  readonly techniques?: Readonly<Record<string, string>>;
}): KillChainMapping {
  const tactics = new Map<string, KillChainPhase>();
  const techniques = new Map<string, KillChainPhase>();
  const invalid: { path: string; value: string }[] = [];
  for (const [t, p] of Object.entries(DEFAULT_TACTIC_PHASES)) tactics.set(normalizeTactic(t), p);
  for (const [t, p] of Object.entries(DEFAULT_TECHNIQUE_PHASES)) techniques.set(t.toUpperCase(), p);
  for (const [t, p] of Object.entries(overrides?.tactics ?? {})) {
    const phase = p.trim().toLowerCase();
    if (isKillChainPhase(phase)) tactics.set(normalizeTactic(t), phase);
    else invalid.push({ path: jsonPath(['killChain', 'tactics', t]), value: p });
  }
  for (const [t, p] of Object.entries(overrides?.techniques ?? {})) {
    const phase = p.trim().toLowerCase();
    if (isKillChainPhase(phase)) techniques.set(t.trim().toUpperCase(), phase);
    else invalid.push({ path: jsonPath(['killChain', 'techniques', t]), value: p });
  }
  return { tactics, techniques, invalid, tacticBits: new Map(), techniqueBits: new Map() };
}

/** The bit of a phase in a phase mask. */
export function phaseBit(p: KillChainPhase): number {
  return 1 << (PHASE_INDEX.get(p) ?? 0);
}

/**
 * Index of a phase name in KILL_CHAIN_PHASES, or -1. By length first (only exploitation and
 * installation share one) and then one comparison: correlation calls this for every store row,
 * and a map look-up would hash each row's freshly read string.
 */
function phaseIndex(p: string): number {
  switch (p.length) {
    case 14:
      return p === 'reconnaissance' ? 0 : -1;
    case 13:
      return p === 'weaponization' ? 1 : -1;
    case 8:
      return p === 'delivery' ? 2 : -1;
    case 12:
      return p === 'exploitation' ? 3 : p === 'installation' ? 4 : -1;
    case 19:
      return p === 'command-and-control' ? 5 : -1;
    case 16:
      return p === 'lateral-movement' ? 6 : -1;
    case 21:
      return p === 'actions-on-objectives' ? 7 : -1;
    default:
      return -1;
  }
}

/** Phase mask of a list of phases. */
export function maskOf(phases: readonly KillChainPhase[]): number {
  let m = 0;
  for (const p of phases) {
    const i = phaseIndex(p);
    if (i >= 0) m |= 1 << i;
  }
  return m;
}

/** Phases of a mask, in kill-chain order. */
export function phasesOfMask(mask: number): KillChainPhase[] {
  const out: KillChainPhase[] = [];
  for (let i = 0; i < KILL_CHAIN_PHASES.length; i++) if (mask & (1 << i)) out.push(KILL_CHAIN_PHASES[i] as KillChainPhase);
  return out;
}

/**
 * The phases of every mask, each one frozen array shared by all cases with that mask. A case's
 * phases go into each of its store rows (`EntitySighting.phases`), and correlation reads the rows
 * of some fifty other cases per case: with a fresh array per case each of those reads is a cache
 * miss on an array allocated long ago, with these it is one of a few hot arrays. Frozen, so a
 * caller that tried to change one would fail loudly instead of changing other cases' phases.
 */
const SHARED_PHASES: readonly (readonly KillChainPhase[])[] = Array.from({ length: 1 << KILL_CHAIN_PHASES.length }, (_, mask) =>
  Object.freeze(phasesOfMask(mask)),
);

/** Phases of a mask, in kill-chain order, as a shared frozen array (see SHARED_PHASES). */
export function sharedPhasesOfMask(mask: number): readonly KillChainPhase[] {
  return SHARED_PHASES[mask] ?? phasesOfMask(mask);
}

/** Number of phases in a mask. */
export function phaseCount(mask: number): number {
  let n = 0;
  for (let m = mask; m !== 0; m &= m - 1) n++;
  return n;
}

/** Index of the earliest phase of a non-empty mask (-1 when empty). */
export function lowestPhase(mask: number): number {
  return mask === 0 ? -1 : 31 - Math.clz32(mask & -mask);
}

/** Index of the latest phase of a non-empty mask (-1 when empty). */
export function highestPhase(mask: number): number {
  return mask === 0 ? -1 : 31 - Math.clz32(mask);
}

function techniquePhase(mapping: KillChainMapping, technique: string): KillChainPhase | undefined {
  const t = technique.trim().toUpperCase();
  const own = mapping.techniques.get(t);
  if (own) return own;
  const dot = t.indexOf('.');
  return dot > 0 ? mapping.techniques.get(t.slice(0, dot)) : undefined;
}

/**
 * Phase mask of one alert. A technique override is more specific than the
 * alert's tactics, so when any technique of the alert has an override the
 * alert's phases are the override phases only (an InitialAccess alert for T1190
 * is exploitation, not delivery + exploitation). Otherwise the tactics decide.
 * Unknown tactics and techniques are ignored.
 */
export function alertPhaseMask(a: Pick<Alert, 'tactics' | 'techniques'>, mapping: KillChainMapping): number {
  let byTechnique = 0;
  for (const t of a.techniques) {
    let bit = mapping.techniqueBits.get(t);
    if (bit === undefined) {
      const p = techniquePhase(mapping, t);
      bit = p ? phaseBit(p) : 0;
      remember(mapping.techniqueBits, t, bit);
    }
    byTechnique |= bit;
  }
  if (byTechnique !== 0) return byTechnique;
  let byTactic = 0;
  for (const t of a.tactics) {
    let bit = mapping.tacticBits.get(t);
    if (bit === undefined) {
      const p = mapping.tactics.get(normalizeTactic(t));
      bit = p ? phaseBit(p) : 0;
      remember(mapping.tacticBits, t, bit);
    }
    byTactic |= bit;
  }
  return byTactic;
}

function remember(memo: Map<string, number>, spelling: string, bit: number): void {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(spelling, bit);
}

/**
 * Phase mask of a case: the union of its alerts' phases; when no alert yields a
 * phase (no tactics/techniques, e.g. a generic source), the playbook's implied
 * phases (`implied`) stand in.
 */
export function casePhaseMask(c: Pick<Case, 'alerts'>, mapping: KillChainMapping, implied: readonly KillChainPhase[] = []): number {
  let m = 0;
  for (const a of c.alerts) m |= alertPhaseMask(a, mapping);
  return m !== 0 ? m : maskOf(implied);
}

/** Phases of a case in kill-chain order (see `casePhaseMask`), as a shared frozen array (see SHARED_PHASES). */
export function casePhases(
  c: Pick<Case, 'alerts'>,
  mapping: KillChainMapping,
  implied: readonly KillChainPhase[] = [],
): readonly KillChainPhase[] {
  return sharedPhasesOfMask(casePhaseMask(c, mapping, implied));
}
