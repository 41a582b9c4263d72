/**
 * The triage brain: classification, correlation plan, kill-chain verdict and
 * explainable severity, all pure. The pipeline calls, per case:
 * `classify` → `planCorrelation` → (store.findRelated with the plan) → `correlate`
 * → `score`. Policies are compiled once per policy object and per-case facts once
 * per case object, so the four calls together stay in the low microseconds.
 */
import { getPlaybook } from '../../playbooks';
import type { PlaybookContext, ReportContext } from '../../playbooks/types';
import type { ResolvedPolicy } from '../config/policy';
import { correlateCase } from '../correlation/correlate';
import { casePhases } from '../correlation/killchain';
import { buildCorrelationPlan, noteDirectoryAliases, withAccountAliases } from '../correlation/plan';
import type { Case, Evidence, KillChainVerdict } from '../model/domain';
import { isoString, parseInstant } from '../model/instant';
import type { Brain, Classification, CorrelationPlan, Scored } from '../pipeline/brain';
import { scoreSeverity } from '../severity/score';
import type { EntitySighting } from '../store/port';
import { classifyCase } from './classify';
import { compilePolicy, threatLevelOf } from './compiled';
import { factsOf } from './facts';
import type { IndicatorSet } from './indicators';

/** Options of `createBrain`. */
export interface BrainOptions {
  /** Global indicator set (the SOC's blacklist, TI feed); the tenant's own blacklists come from its policy. */
  readonly indicators?: IndicatorSet;
  /**
   * Clock, used only to say in the first report that it is late (built after the
   * first-report deadline). Without it reports never carry a "late" line, which keeps
   * replays byte-for-byte reproducible.
   */
  readonly now?: () => Date;
}

/** Creates the triage brain. */
export function createBrain(options: BrainOptions = {}): Brain {
  const { indicators, now } = options;
  return {
    classify(c: Case, rp: ResolvedPolicy): Classification {
      const p = compilePolicy(rp.policy);
      return classifyCase(c, p, factsOf(c, p, indicators));
    },

    planCorrelation(c: Case, cls: Classification, rp: ResolvedPolicy): CorrelationPlan {
      const p = compilePolicy(rp.policy);
      const phases = casePhases(c, p.killChain, getPlaybook(cls.playbook).impliedPhases);
      return buildCorrelationPlan(c, phases, p.correlation);
    },

    correlate(
      c: Case,
      plan: CorrelationPlan,
      sightings: readonly EntitySighting[],
      rp: ResolvedPolicy,
      saturated?: readonly string[],
    ): KillChainVerdict {
      const p = compilePolicy(rp.policy);
      const dir = p.correlation.directory;
      // Most tenants have no directory: the case is correlated as is, nothing allocated.
      if (dir === undefined) return correlateCase(c, plan, sightings, p.correlation, p.killChain, saturated);
      // The plan looks the accounts' alias keys up: the entities must carry them too for their rows to count (as links
      // and towards the entity's infrastructure threshold). Only correlation sees them: the case is stored as it is.
      const verdict = correlateCase(withAccountAliases(c, dir), plan, sightings, p.correlation, p.killChain, saturated);
      return noteDirectoryAliases(verdict, c, plan, sightings, dir);
    },

    score(c: Case, cls: Classification, verdict: KillChainVerdict, evidence: readonly Evidence[], rp: ResolvedPolicy): Scored {
      const p = compilePolicy(rp.policy);
      const facts = factsOf(c, p, indicators);
      const pb = getPlaybook(cls.playbook);
      const ctx: PlaybookContext = { case: c, classification: cls, facts, policy: rp.policy };
      const outcome = scoreSeverity({
        playbook: pb.id,
        base: pb.baseSeverity(ctx),
        rule: cls.ruleCode !== undefined && cls.ruleSeverity !== undefined ? { code: cls.ruleCode, severity: cls.ruleSeverity } : undefined,
        indicatorHits: facts.indicatorHits,
        evidence,
        verdict,
      });
      const scenarioName = cls.scenario ?? pb.defaultScenario;
      const threatLevel = scenarioName !== undefined ? threatLevelOf(p, scenarioName) : undefined;
      const deadline = parseInstant(c.detectedAt) + p.notifyWithinMs;
      const notifyBy = Number.isFinite(deadline) ? isoString(deadline) : c.detectedAt;
      const late = now ? now().getTime() - deadline : undefined;
      // Built field by field: conditional object spreads cost about a microsecond each on this path.
      const reportCtx: ReportContext = {
        case: c,
        classification: cls,
        facts,
        policy: rp.policy,
        severity: outcome.severity,
        reasons: outcome.reasons,
        verdict,
        notifyBy,
        threatLevel,
        scenario: threatLevel !== undefined ? scenarioName : undefined,
        lateByMs: late !== undefined && late > 0 ? late : undefined,
      };
      const scored: { -readonly [K in keyof Scored]: Scored[K] } = {
        severity: outcome.severity,
        reasons: outcome.reasons,
        firstReport: pb.firstReport(reportCtx),
      };
      if (threatLevel) scored.threatLevel = threatLevel;
      return scored;
    },
  };
}
