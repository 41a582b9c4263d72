/**
 * Threat level of a risk scenario per NIST SP 800-30 Rev. 1 (seed-digest §3):
 * level = likelihood A × impact B.
 * - A (overall likelihood) from a1 (likelihood of threat event initiation or
 *   occurrence) and a2 (likelihood the event results in adverse impact): Appendix G,
 *   Table G-5.
 * - B (impact) from b1 (breadth) and b2 (difficulty of recovery): NIST has no table
 *   for combining impact factors; see `combineImpact` and `NIST.md`.
 * - Level of risk from A and B: Appendix I, Table I-2.
 */
import type { TenantPolicy } from '../config/policy';
import { NIST_LEVELS, type NistLevel } from '../model/domain';

/** A risk scenario's assessment inputs (the shape of `policy.scenarios.NAME`). */
export type Scenario = TenantPolicy['scenarios'][string];

/** Index of a level on the 5-level scale (very-low = 0 … very-high = 4). */
export function nistIndex(l: NistLevel): number {
  return NIST_LEVELS.indexOf(l);
}

function level(i: number): NistLevel {
  return NIST_LEVELS[Math.min(4, Math.max(0, i))] as NistLevel;
}

// Rows and columns are in NIST_LEVELS order (very-low … very-high). NIST prints the
// rows top-down from Very High; they are stored bottom-up here so row index = level index.

/**
 * Table G-5 (Assessment scale – overall likelihood): [initiation/occurrence][adverse impact].
 * The table is symmetric, so which of a1/a2 is the row does not change the result.
 */
export const TABLE_G5: readonly (readonly NistLevel[])[] = [
  /* very-low  */ ['very-low', 'very-low', 'low', 'low', 'low'],
  /* low       */ ['very-low', 'low', 'low', 'moderate', 'moderate'],
  /* moderate  */ ['low', 'low', 'moderate', 'moderate', 'high'],
  /* high      */ ['low', 'moderate', 'moderate', 'high', 'very-high'],
  /* very-high */ ['low', 'moderate', 'high', 'very-high', 'very-high'],
];

/** Table I-2 (Assessment scale – level of risk): [likelihood][impact]. */
export const TABLE_I2: readonly (readonly NistLevel[])[] = [
  /* very-low  */ ['very-low', 'very-low', 'very-low', 'low', 'low'],
  /* low       */ ['very-low', 'low', 'low', 'low', 'moderate'],
  /* moderate  */ ['very-low', 'low', 'moderate', 'moderate', 'high'],
  /* high      */ ['very-low', 'low', 'moderate', 'high', 'very-high'],
  /* very-high */ ['very-low', 'low', 'moderate', 'high', 'very-high'],
];

function cell(table: readonly (readonly NistLevel[])[], row: NistLevel, col: NistLevel): NistLevel {
  return table[nistIndex(row)]?.[nistIndex(col)] ?? 'very-low';
}

/** Overall likelihood (Table G-5) from likelihood of initiation/occurrence and likelihood of adverse impact. */
export function overallLikelihood(initiation: NistLevel, adverseImpact: NistLevel): NistLevel {
  return cell(TABLE_G5, initiation, adverseImpact);
}

/** Level of risk (Table I-2) from overall likelihood and impact. */
export function riskLevel(likelihood: NistLevel, impact: NistLevel): NistLevel {
  return cell(TABLE_I2, likelihood, impact);
}

/**
 * Impact B from breadth b1 and recovery difficulty b2 (our rule; NIST gives none):
 * each factor's distance from Moderate adds up, clamped to the scale:
 * `B = clamp(b1 + b2 − Moderate)` on indices 0–4. Two Moderates stay Moderate; a
 * narrow but hard-to-recover event (Low, High) is Moderate; two Lows are Very Low;
 * High + Very High is Very High. It is symmetric and monotone, and it reproduces
 * every row of the seed's table that is internally consistent (see NIST.md).
 */
export function combineImpact(breadth: NistLevel, recovery: NistLevel): NistLevel {
  return level(nistIndex(breadth) + nistIndex(recovery) - nistIndex('moderate'));
}

/** Every intermediate value of a threat-level assessment. */
export interface ThreatAssessment {
  /** A: overall likelihood. */
  readonly likelihood: NistLevel;
  /** B: impact. */
  readonly impact: NistLevel;
  /** Level of risk = the threat level. */
  readonly level: NistLevel;
}

/** Assesses a scenario: A from Table G-5, B from `combineImpact`, level from Table I-2. */
export function assessScenario(s: Scenario): ThreatAssessment {
  const likelihood = overallLikelihood(s.likelihood.frequency, s.likelihood.occurrence);
  const impact = combineImpact(s.impact.breadth, s.impact.recovery);
  return { likelihood, impact, level: riskLevel(likelihood, impact) };
}

/**
 * Built-in scenarios: the seed's four worked rows and one default per playbook.
 * A tenant's `scenarios` entry of the same name replaces the built-in one.
 */
export const DEFAULT_SCENARIOS: Readonly<Record<string, Scenario>> = {
  // Seed §3 rows.
  'lateral-movement-from-infected-terminal': {
    likelihood: { frequency: 'moderate', occurrence: 'high' },
    impact: { breadth: 'moderate', recovery: 'moderate' },
  },
  'rogue-wireless-ap': {
    likelihood: { frequency: 'low', occurrence: 'moderate' },
    impact: { breadth: 'low', recovery: 'low' },
  },
  'confidential-data-exfiltration': {
    likelihood: { frequency: 'moderate', occurrence: 'very-high' },
    impact: { breadth: 'moderate', recovery: 'moderate' },
  },
  'denial-of-service': {
    likelihood: { frequency: 'moderate', occurrence: 'very-high' },
    impact: { breadth: 'high', recovery: 'very-high' },
  },
  // Playbook defaults (our estimates, tenant-overridable).
  'brute-force-on-accounts': {
    likelihood: { frequency: 'high', occurrence: 'moderate' },
    impact: { breadth: 'moderate', recovery: 'moderate' },
  },
  'remote-control-of-terminal': {
    likelihood: { frequency: 'moderate', occurrence: 'high' },
    impact: { breadth: 'high', recovery: 'high' },
  },
  'c2-communication': {
    likelihood: { frequency: 'moderate', occurrence: 'moderate' },
    impact: { breadth: 'moderate', recovery: 'moderate' },
  },
  'abuse-of-remote-access': {
    likelihood: { frequency: 'moderate', occurrence: 'high' },
    impact: { breadth: 'moderate', recovery: 'high' },
  },
};

/** The scenario of that name: the tenant's own, else the built-in one, else undefined. */
export function findScenario(name: string, policy: TenantPolicy): Scenario | undefined {
  return Object.hasOwn(policy.scenarios, name)
    ? policy.scenarios[name]
    : Object.hasOwn(DEFAULT_SCENARIOS, name)
      ? DEFAULT_SCENARIOS[name]
      : undefined;
}
