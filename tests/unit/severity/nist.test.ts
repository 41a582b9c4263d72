import { NIST_LEVELS, type NistLevel } from '../../../shared/model/domain';
import {
  assessScenario,
  combineImpact,
  DEFAULT_SCENARIOS,
  findScenario,
  nistIndex,
  overallLikelihood,
  riskLevel,
  TABLE_G5,
  TABLE_I2,
} from '../../../shared/severity/nist';
import { contosoPolicy } from '../../fixtures/brain/factory';

describe('NIST SP 800-30 tables', () => {
  it('reproduces Table G-5 corner and centre cells', () => {
    expect(overallLikelihood('very-high', 'very-low')).toBe('low');
    expect(overallLikelihood('very-high', 'very-high')).toBe('very-high');
    expect(overallLikelihood('very-low', 'very-low')).toBe('very-low');
    expect(overallLikelihood('moderate', 'moderate')).toBe('moderate');
    expect(overallLikelihood('high', 'moderate')).toBe('moderate');
    expect(overallLikelihood('low', 'high')).toBe('moderate');
  });

  it('reproduces Table I-2 (very-high and high likelihood rows are equal; very-low impact is always very-low risk)', () => {
    expect(TABLE_I2[4]).toEqual(TABLE_I2[3]);
    for (const l of NIST_LEVELS) expect(riskLevel(l, 'very-low')).toBe('very-low');
    expect(riskLevel('moderate', 'very-high')).toBe('high');
    expect(riskLevel('low', 'very-high')).toBe('moderate');
    expect(riskLevel('very-low', 'high')).toBe('low');
    expect(riskLevel('high', 'high')).toBe('high');
  });

  it('has a symmetric Table G-5, so which of a1/a2 is the row does not matter', () => {
    for (const a of NIST_LEVELS) for (const b of NIST_LEVELS) expect(overallLikelihood(a, b)).toBe(overallLikelihood(b, a));
    expect(TABLE_G5).toHaveLength(5);
  });

  it('combines impact symmetrically and monotonically', () => {
    for (const a of NIST_LEVELS) {
      for (const b of NIST_LEVELS) {
        expect(combineImpact(a, b)).toBe(combineImpact(b, a));
        const up = NIST_LEVELS[nistIndex(b) + 1] as NistLevel | undefined;
        if (up) expect(nistIndex(combineImpact(a, up))).toBeGreaterThanOrEqual(nistIndex(combineImpact(a, b)));
      }
    }
    expect(combineImpact('low', 'high')).toBe('moderate');
  });
});

describe("the seed's worked rows (seed-digest §3)", () => {
  it('row 1, lateral movement from an infected terminal: A moderate, B moderate, level moderate (reproduced)', () => {
    expect(assessScenario(DEFAULT_SCENARIOS['lateral-movement-from-infected-terminal']!)).toEqual({
      likelihood: 'moderate',
      impact: 'moderate',
      level: 'moderate',
    });
  });

  it('row 2, rogue wireless AP: A low, B very low, level very low (reproduced)', () => {
    expect(assessScenario(DEFAULT_SCENARIOS['rogue-wireless-ap']!)).toEqual({ likelihood: 'low', impact: 'very-low', level: 'very-low' });
  });

  it('row 3, confidential data leaked: the seed says B low / level low, the standard gives B moderate / level moderate', () => {
    // Not reproducible: the seed gives b1 = b2 = Moderate here but B = Low, while row 1 gives the
    // same b1 = b2 = Moderate and B = Moderate. No function of (b1, b2) yields both. The seed's
    // level (Low) IS Table I-2 of its own A and B, which we check separately. See NIST.md.
    const s = DEFAULT_SCENARIOS['confidential-data-exfiltration']!;

    expect(assessScenario(s)).toEqual({ likelihood: 'high', impact: 'moderate', level: 'moderate' });
    expect(riskLevel('high', 'low')).toBe('low');
  });

  it('row 4, denial of service: A high, B very high, level very high (reproduced)', () => {
    expect(assessScenario(DEFAULT_SCENARIOS['denial-of-service']!)).toEqual({
      likelihood: 'high',
      impact: 'very-high',
      level: 'very-high',
    });
  });
});

describe('scenario lookup', () => {
  it("prefers the tenant's scenario over the built-in one of the same name", () => {
    const policy = contosoPolicy({
      scenarios: {
        'c2-communication': {
          likelihood: { frequency: 'very-high', occurrence: 'very-high' },
          impact: { breadth: 'high', recovery: 'high' },
        },
      },
    });

    expect(assessScenario(findScenario('c2-communication', policy)!).level).toBe('very-high');
    expect(assessScenario(findScenario('c2-communication', contosoPolicy())!).level).toBe('moderate');
    expect(findScenario('no-such-scenario', policy)).toBeUndefined();
  });
});
