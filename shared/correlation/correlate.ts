/**
 * Kill-chain correlation verdict of a case from the sightings the pipeline
 * fetched for its plan.
 *
 * Definitions (all evaluated per ENTITY, i.e. over an entity's key and alt keys
 * together, because the seed's question is "for the same host IP, has another
 * alert fired in another kill-chain phase?"):
 * - related case: another case with a sighting on a non-ignored key within
 *   detectedAt ± window (both directions, so arrival order does not matter);
 * - infrastructure: a key with more than `infrastructureThreshold` related cases;
 *   the whole entity is then ignored (its other spellings are the same machine);
 * - multi-stage on an entity: (a) this case's phases ∪ the related cases' phases on
 *   that entity count at least `distinctPhases`, or (b) with `progression`, this
 *   case and a related case on that entity are ordered by detectedAt (not arrival)
 *   and the later one has a phase strictly after a phase of the earlier one.
 *   A case on its own is multi-stage when its own alerts satisfy (a) or (b).
 *
 * Why this is order-independent: every criterion is a property of a PAIR (b) or of
 * the union of phases on one entity (a). Whatever the arrival order, the case of a
 * pair that arrives second sees the first (the window is symmetric and rows are
 * kept until the retention ends), and the last case of a chain on one entity to
 * arrive sees them all. Hence "some case of the chain was flagged multi-stage on
 * arrival" has the same value for every arrival order, and equals "some case is
 * flagged when all are re-evaluated". It holds while the chain has at most
 * `infrastructureThreshold` cases on the shared entity (beyond that the key is
 * infrastructure by definition) and for chains linked through ONE entity; chains
 * linked transitively (A–B through a host, B–C through an account) are judged pair
 * by pair, because the store returns direct neighbours only.
 *
 * `stage` is the furthest phase (kill-chain order) reached by the chain visible
 * from this case (this case + related cases on non-ignored entities): "how far
 * has the attacker got", not this alert's own phase.
 */
import { type Case, KILL_CHAIN_PHASES, type KillChainPhase, type KillChainVerdict } from '../model/domain';
import type { CorrelationPlan } from '../pipeline/brain';
import type { EntitySighting } from '../store/port';
import { alertPhaseMask, highestPhase, type KillChainMapping, lowestPhase, maskOf, phaseCount, phasesOfMask } from './killchain';
import type { CorrelationSettings } from './plan';

interface Related {
  readonly t: number;
  mask: number;
}

interface EntityGroup {
  readonly key: string;
  readonly related: Map<string, Related>;
  chainMask: number;
  distinct: boolean;
  progression?: { earlierCase: string; earlierMask: number; laterCase: string; laterMask: number };
}

const MAX_LISTED_CASES = 10;

/**
 * Whether two dated phase sets form a progression: the later one (by time) has a
 * phase strictly after some phase of the earlier one. Equal times never progress.
 */
export function isProgression(tA: number, maskA: number, tB: number, maskB: number): boolean {
  if (tA === tB || maskA === 0 || maskB === 0) return false;
  const [earlier, later] = tA < tB ? [maskA, maskB] : [maskB, maskA];
  return highestPhase(later) > lowestPhase(earlier);
}

/** Progression among the alerts of one case (an incident that already spans phases). */
function selfProgression(c: Case, mapping: KillChainMapping): boolean {
  if (c.alerts.length < 2) return false;
  const dated = c.alerts
    .map((a) => ({ t: Date.parse(a.detectedAt), m: alertPhaseMask(a, mapping) }))
    .filter((x) => x.m !== 0 && Number.isFinite(x.t))
    .sort((a, b) => a.t - b.t);
  // Running minimum of phases over alerts strictly earlier than the current one.
  let minBefore = Number.POSITIVE_INFINITY;
  let i = 0;
  while (i < dated.length) {
    const t = dated[i]?.t;
    let j = i;
    let groupMin = Number.POSITIVE_INFINITY;
    while (j < dated.length && dated[j]?.t === t) {
      const m = dated[j]?.m ?? 0;
      if (highestPhase(m) > minBefore) return true;
      groupMin = Math.min(groupMin, lowestPhase(m));
      j++;
    }
    minBefore = Math.min(minBefore, groupMin);
    i = j;
  }
  return false;
}

function listCases(ids: readonly string[]): string {
  const shown = ids.slice(0, MAX_LISTED_CASES).join(', ');
  return ids.length > MAX_LISTED_CASES ? `${shown}, +${ids.length - MAX_LISTED_CASES} more` : shown;
}

function phaseName(i: number): string {
  return KILL_CHAIN_PHASES[i] ?? '?';
}

/**
 * The kill-chain verdict of a case. `sightings` are the store rows for the plan's
 * keys within detectedAt ± window (rows of this case, rows outside the window and
 * rows for keys not in the plan are ignored defensively).
 */
export function correlateCase(
  c: Case,
  plan: CorrelationPlan,
  sightings: readonly EntitySighting[],
  settings: CorrelationSettings,
  mapping: KillChainMapping,
  saturated: readonly string[] = [],
): KillChainVerdict {
  const saturatedKeys = new Set(saturated);
  const t0 = Date.parse(c.detectedAt);
  const selfMask = maskOf(plan.phases);
  const planKeys = new Set(plan.keys);

  // key → caseId → related case (phases of one case merged across its rows).
  const byKey = new Map<string, Map<string, Related>>();
  for (const s of sightings) {
    if (s.caseId === c.caseId || !planKeys.has(s.entityKey)) continue;
    const t = Date.parse(s.detectedAt);
    if (!(Math.abs(t - t0) <= plan.windowMs)) continue;
    let cases = byKey.get(s.entityKey);
    if (!cases) {
      cases = new Map();
      byKey.set(s.entityKey, cases);
    }
    const prev = cases.get(s.caseId);
    if (prev) prev.mask |= maskOf(s.phases);
    else cases.set(s.caseId, { t, mask: maskOf(s.phases) });
  }

  const ignoredEntities: { key: string; why: string }[] = [...plan.ignored];
  const groups: EntityGroup[] = [];
  const seenEntityKeys = new Set<string>();
  for (const e of c.entities) {
    if (seenEntityKeys.has(e.key)) continue;
    seenEntityKeys.add(e.key);
    const keys = [e.key, ...e.altKeys].filter((k) => planKeys.has(k));
    if (keys.length === 0) continue;
    const infra = keys.find((k) => saturatedKeys.has(k) || (byKey.get(k)?.size ?? 0) > plan.infrastructureThreshold);
    if (infra !== undefined) {
      ignoredEntities.push({
        key: e.key,
        why: `seen in more than ${plan.infrastructureThreshold} other cases within ${settings.windowText}${infra === e.key ? '' : ` (as ${infra})`}: treated as infrastructure`,
      });
      continue;
    }
    const related = new Map<string, Related>();
    for (const k of keys) {
      for (const [id, r] of byKey.get(k) ?? []) {
        const prev = related.get(id);
        if (prev) prev.mask |= r.mask;
        else related.set(id, { t: r.t, mask: r.mask });
      }
    }
    if (related.size === 0) continue;
    groups.push({ key: e.key, related, chainMask: selfMask, distinct: false });
  }

  let chainMask = selfMask;
  const relatedIds = new Set<string>();
  for (const g of groups) {
    for (const [id, r] of g.related) {
      g.chainMask |= r.mask;
      relatedIds.add(id);
      if (settings.progression && g.progression === undefined && isProgression(t0, selfMask, r.t, r.mask)) {
        g.progression =
          t0 < r.t
            ? { earlierCase: c.caseId, earlierMask: selfMask, laterCase: id, laterMask: r.mask }
            : { earlierCase: id, earlierMask: r.mask, laterCase: c.caseId, laterMask: selfMask };
      }
    }
    g.distinct = phaseCount(g.chainMask) >= settings.distinctPhases;
    chainMask |= g.chainMask;
  }

  const selfDistinct = phaseCount(selfMask) >= settings.distinctPhases;
  const selfProgress = settings.progression && selfProgression(c, mapping);
  const flagged = groups.filter((g) => g.distinct || g.progression !== undefined);
  const multiStage = selfDistinct || selfProgress || flagged.length > 0;
  const relatedCaseIds = [...relatedIds].sort();
  const phases = phasesOfMask(chainMask);
  const stageIndex = highestPhase(chainMask);
  const stage: KillChainPhase | null = stageIndex < 0 ? null : (KILL_CHAIN_PHASES[stageIndex] ?? null);

  let detail: string | undefined;
  // Explain the strongest flagged entity: most phases, then most related cases, then entity order.
  const best = [...flagged].sort((a, b) => phaseCount(b.chainMask) - phaseCount(a.chainMask) || b.related.size - a.related.size)[0];
  if (best) {
    const ids = listCases([...best.related.keys()].sort());
    if (best.distinct) {
      detail = `multi-stage: phases ${phasesOfMask(best.chainMask).join(' → ')} on ${best.key} (cases ${ids})`;
    } else if (best.progression) {
      const p = best.progression;
      const name = (id: string): string => (id === c.caseId ? 'this case' : `case ${id}`);
      detail =
        `multi-stage: progression ${phaseName(lowestPhase(p.earlierMask))} (${name(p.earlierCase)}) → ` +
        `${phaseName(highestPhase(p.laterMask))} (${name(p.laterCase)}) on ${best.key} (cases ${ids})`;
    }
  } else if (selfDistinct || selfProgress) {
    detail = `multi-stage within the case: phases ${phasesOfMask(selfMask).join(' → ')}`;
  } else if (groups.length > 0) {
    detail = `related on ${groups.map((g) => g.key).join(', ')}: cases ${listCases(relatedCaseIds)}; phases ${phases.join(' → ')}`;
  }

  const verdict: { -readonly [K in keyof KillChainVerdict]: KillChainVerdict[K] } = {
    phases,
    stage,
    relatedCaseIds,
    multiStage,
    ignoredEntities,
  };
  if (detail !== undefined) verdict.detail = detail;
  return verdict;
}
