/**
 * Kill-chain correlation verdict of a case from the sightings the pipeline
 * fetched for its plan.
 *
 * Definitions (all evaluated per ENTITY, i.e. over an entity's key and alt keys
 * together, because the seed's question is "for the same host IP, has another
 * alert fired in another kill-chain phase?"):
 * - related case: another case with a sighting on a non-ignored key within
 *   detectedAt ± window (both directions, so arrival order does not matter);
 * - infrastructure: an entity with more than `infrastructureThreshold` related cases,
 *   counted over all its keys together (an account's UPN and object id, its spellings
 *   under a tenant directory), or one of whose keys the store reported saturated; the
 *   whole entity is then ignored (its other spellings are the same machine or account);
 * - multi-stage on an entity: (a) this case's phases ∪ the phases of the related cases
 *   on that entity detected within ONE window-long span that includes this case
 *   (latest − earliest detectedAt ≤ window) count at least `distinctPhases`, or
 *   (b) with `progression`, this case and a related case on that entity are ordered
 *   by detectedAt (not arrival) and the later one has a phase strictly after a
 *   phase of the earlier one.
 *   A case on its own is multi-stage when its own alerts satisfy (a) or (b).
 *
 * Why this is order-independent: every criterion is a property of a PAIR (b) or of
 * a SET of cases on one entity at most a window apart from each other (a). Whatever
 * the arrival order, the case of a pair that arrives second sees the first (the
 * window is symmetric and rows are kept until the retention ends), and the last case
 * of such a set to arrive sees all the others, since each is within the window of it.
 * (a) is bounded to one window-long span for that reason: with the plain union over
 * ± window, a case in the middle of cases two windows apart was flagged only when it
 * arrived last, as neither outer case ever sees the other. Hence "some case of the
 * chain was flagged multi-stage on arrival" has the same value for every arrival
 * order, and equals "some case is flagged when all are re-evaluated". It holds while
 * the chain has at most `infrastructureThreshold` cases on the shared entity (beyond
 * that the entity is infrastructure by definition) and for chains whose cases all share
 * one key of ONE entity (or one spelling class under a tenant directory); chains linked
 * transitively (A–B through a host, B–C through an account, or A–B through an account's
 * UPN and B–C through its object id) are judged pair by pair, because the store returns
 * direct neighbours only: which pairs are related never depends on the order.
 *
 * `stage` is the furthest phase (kill-chain order) reached by the chain visible
 * from this case (this case + related cases on non-ignored entities): "how far
 * has the attacker got", not this alert's own phase.
 */
import { type Case, KILL_CHAIN_PHASES, type KillChainPhase, type KillChainVerdict } from '../model/domain';
import { parseInstant } from '../model/instant';
import type { CorrelationPlan } from '../pipeline/brain';
import type { EntitySighting } from '../store/port';
import { alertPhaseMask, highestPhase, type KillChainMapping, lowestPhase, maskOf, phaseCount, sharedPhasesOfMask } from './killchain';
import type { CorrelationSettings } from './plan';

/**
 * Related cases are "slots": an index into two arrays (detectedAt, phase mask) rather than
 * one small object (and a boxed detectedAt) per store row, so the row loop allocates only
 * map entries and array growth.
 */
interface Slots {
  /** detectedAt in ms (a plain array of numbers: V8 keeps it unboxed). */
  readonly t: number[];
  readonly mask: number[];
}

interface EntityGroup {
  readonly key: string;
  /** Related case id → slot. May be the per-key index itself (one linking key), so read only. */
  readonly related: ReadonlyMap<string, number>;
  chainMask: number;
  distinct: boolean;
  /** With `distinct`: the phases that made it (all of chainMask, or those of the one window-long span that did). */
  distinctMask?: number;
  progression?: { earlierCase: string; earlierMask: number; laterCase: string; laterMask: number };
}

const MAX_LISTED_CASES = 10;

/**
 * Whether two dated phase sets form a progression: the later one (by time) has a
 * phase strictly after some phase of the earlier one. Equal times never progress.
 */
export function isProgression(tA: number, maskA: number, tB: number, maskB: number): boolean {
  if (tA === tB || maskA === 0 || maskB === 0) return false;
  return tA < tB ? highestPhase(maskB) > lowestPhase(maskA) : highestPhase(maskA) > lowestPhase(maskB);
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

/** The first MAX_LISTED_CASES of `total` ids (`shown`, at most that many), then how many more. */
function listCases(shown: readonly string[], total: number): string {
  const text = (shown.length > MAX_LISTED_CASES ? shown.slice(0, MAX_LISTED_CASES) : shown).join(', ');
  return total > MAX_LISTED_CASES ? `${text}, +${total - MAX_LISTED_CASES} more` : text;
}

function phaseName(i: number): string {
  return KILL_CHAIN_PHASES[i] ?? '?';
}

/**
 * The kill-chain verdict of a case. `sightings` are the store rows for the plan's
 * look-up keys within detectedAt ± window (rows of this case, rows outside the window and
 * rows for keys not in the plan are ignored defensively).
 *
 * Runs once per case over every returned row (≈ 50–150), so the row loop does the
 * least per row: the store's precomputed time and phase mask when the row carries them
 * (`detectedAtMs`, `phaseMask`), else `parseInstant` and `maskOf`, the key's map looked up only when
 * the key changes (the store returns rows grouped by key), related cases kept as slots
 * (see `Slots`), and an entity with one linking key reuses that key's map instead of
 * copying it.
 */
export function correlateCase(
  c: Case,
  plan: CorrelationPlan,
  sightings: readonly EntitySighting[],
  settings: CorrelationSettings,
  mapping: KillChainMapping,
  saturated: readonly string[] = [],
): KillChainVerdict {
  const t0 = parseInstant(c.detectedAt);
  const selfMask = maskOf(plan.phases);
  // A plan has a handful of keys: a linear search beats building a set for them.
  const planKeys = new Set(plan.keys);
  // Under a directory the plan also looks up the accounts' alias keys, which are not among the stored `keys`; without
  // one `lookup` is a subset of `keys`, so the usual tenant pays this check only.
  if (settings.directory !== undefined) for (const k of plan.lookup) planKeys.add(k);
  const caseId = c.caseId;
  const windowMs = plan.windowMs;
  const slots: Slots = { t: [], mask: [] };

  // key → caseId → slot of that related case on that key (phases merged across its rows).
  const byKey = new Map<string, Map<string, number>>();
  let lastKey: string | undefined;
  let cases: Map<string, number> | undefined;
  for (const s of sightings) {
    if (s.caseId === caseId) continue;
    const key = s.entityKey;
    if (key !== lastKey) {
      lastKey = key;
      cases = undefined;
      if (planKeys.has(key)) {
        cases = byKey.get(key);
        if (cases === undefined) {
          cases = new Map();
          byKey.set(key, cases);
        }
      }
    }
    if (cases === undefined) continue; // a key not in the plan
    // The store's precomputed numbers when it gave them (they equal what parsing gives, see the port).
    const t = s.detectedAtMs ?? parseInstant(s.detectedAt);
    if (!(Math.abs(t - t0) <= windowMs)) continue;
    const mask = s.phaseMask ?? maskOf(s.phases);
    const slot = cases.get(s.caseId);
    if (slot !== undefined) {
      slots.mask[slot] = (slots.mask[slot] ?? 0) | mask;
    } else {
      cases.set(s.caseId, slots.t.length);
      slots.t.push(t);
      slots.mask.push(mask);
    }
  }

  // The plan's list is the verdict's unless an entity turns out to be infrastructure (rare): only then a copy to add to.
  let ignoredEntities: { key: string; why: string }[] | undefined;
  const groups: EntityGroup[] = [];
  const seenKeys = new Set<string>();
  for (const e of c.entities) {
    // Each entity key is judged once.
    if (seenKeys.has(e.key)) continue;
    seenKeys.add(e.key);
    // An entity the plan left out (policy, built-in) links nothing, yet one of its spellings can be another entity's
    // own key or directory alias and so in the plan: those rows are that entity's, not the one the policy excludes.
    if (plan.ignored.length > 0 && plan.ignored.some((i) => i.key === e.key)) continue;
    const keys = planKeys.has(e.key) ? [e.key] : [];
    for (const k of e.altKeys) if (planKeys.has(k)) keys.push(k);
    if (keys.length === 0) continue;
    const infra = keys.find(
      (k) => (saturated.length > 0 && saturated.includes(k)) || (byKey.get(k)?.size ?? 0) > plan.infrastructureThreshold,
    );
    // The entity's keys are one machine or one account (a UPN and its object id, its spellings under a directory):
    // the other cases found under any of them count together, or spreading them over spellings would keep each key
    // under the threshold. With one key holding rows (the usual case) `related` is that key's map, already judged.
    const related = infra === undefined ? relatedOf(keys, byKey, slots) : undefined;
    if (related === undefined || related.size > plan.infrastructureThreshold) {
      ignoredEntities ??= plan.ignored.slice();
      const as =
        infra === undefined
          ? ` (as ${keys.filter((k) => (byKey.get(k)?.size ?? 0) > 0).join(' and ')} together)`
          : infra === e.key
            ? ''
            : ` (as ${infra})`;
      ignoredEntities.push({
        key: e.key,
        why: `seen in more than ${plan.infrastructureThreshold} other cases within ${settings.windowText}${as}: treated as infrastructure`,
      });
      continue;
    }
    if (related.size === 0) continue;
    groups.push({ key: e.key, related, chainMask: selfMask, distinct: false });
  }

  let chainMask = selfMask;
  for (const g of groups) {
    // Earliest and latest detection of this case and the entity's related cases: two comparisons per
    // related case, so that the usual set (all within one window) needs no sort for criterion (a).
    let earliest = t0;
    let latest = t0;
    for (const [id, slot] of g.related) {
      const t = slots.t[slot] ?? Number.NaN;
      const mask = slots.mask[slot] ?? 0;
      g.chainMask |= mask;
      if (t < earliest) earliest = t;
      if (t > latest) latest = t;
      if (settings.progression && g.progression === undefined && isProgression(t0, selfMask, t, mask)) {
        g.progression =
          t0 < t
            ? { earlierCase: caseId, earlierMask: selfMask, laterCase: id, laterMask: mask }
            : { earlierCase: id, earlierMask: mask, laterCase: caseId, laterMask: selfMask };
      }
    }
    if (phaseCount(g.chainMask) >= settings.distinctPhases) {
      const span = latest - earliest <= windowMs ? g.chainMask : phasesWithinOneWindow(t0, selfMask, g.related, slots, windowMs);
      if (phaseCount(span) >= settings.distinctPhases) g.distinctMask = span;
    }
    g.distinct = g.distinctMask !== undefined;
    chainMask |= g.chainMask;
  }
  const selfDistinct = phaseCount(selfMask) >= settings.distinctPhases;
  const selfProgress = settings.progression && selfProgression(c, mapping);
  // The strongest flagged entity: most phases, then most related cases, then entity order (first wins ties).
  let best: EntityGroup | undefined;
  for (const g of groups) {
    if (!g.distinct && g.progression === undefined) continue;
    if (
      best === undefined ||
      phaseCount(g.chainMask) > phaseCount(best.chainMask) ||
      (phaseCount(g.chainMask) === phaseCount(best.chainMask) && g.related.size > best.related.size)
    ) {
      best = g;
    }
  }
  const multiStage = selfDistinct || selfProgress || best !== undefined;
  // Default sort (UTF-16 code unit order) is the fastest string sort V8 has.
  const relatedCaseIds = unionOfRelated(groups).sort();
  // Shared frozen arrays: the verdict is never changed, and the phase sets are few.
  const phases = sharedPhasesOfMask(chainMask);
  const stageIndex = highestPhase(chainMask);
  const stage: KillChainPhase | null = stageIndex < 0 ? null : (KILL_CHAIN_PHASES[stageIndex] ?? null);

  let detail: string | undefined;
  if (best) {
    const ids = listCases(firstSorted(relatedCaseIds, best.related, MAX_LISTED_CASES), best.related.size);
    if (best.distinct) {
      // The phases that made it multi-stage: with cases more than a window apart, those of the deciding span only.
      detail = `multi-stage: phases ${sharedPhasesOfMask(best.distinctMask ?? best.chainMask).join(' → ')} on ${best.key} (cases ${ids})`;
    } else if (best.progression) {
      const p = best.progression;
      const name = (id: string): string => (id === caseId ? 'this case' : `case ${id}`);
      detail =
        `multi-stage: progression ${phaseName(lowestPhase(p.earlierMask))} (${name(p.earlierCase)}) → ` +
        `${phaseName(highestPhase(p.laterMask))} (${name(p.laterCase)}) on ${best.key} (cases ${ids})`;
    }
  } else if (selfDistinct || selfProgress) {
    detail = `multi-stage within the case: phases ${sharedPhasesOfMask(selfMask).join(' → ')}`;
  } else if (groups.length > 0) {
    detail = `related on ${groups.map((g) => g.key).join(', ')}: cases ${listCases(relatedCaseIds, relatedCaseIds.length)}; phases ${phases.join(' → ')}`;
  }

  const verdict: { -readonly [K in keyof KillChainVerdict]: KillChainVerdict[K] } = {
    phases,
    stage,
    relatedCaseIds,
    multiStage,
    ignoredEntities: ignoredEntities ?? plan.ignored,
  };
  if (detail !== undefined) verdict.detail = detail;
  return verdict;
}

/**
 * The ids related through any group, each once (unsorted). Built on the largest group's map
 * (a membership test there is cheaper than inserting every id into a new set): groups
 * usually overlap heavily (a host and its address see the same cases).
 */
function unionOfRelated(groups: readonly EntityGroup[]): string[] {
  let base: EntityGroup | undefined;
  for (const g of groups) if (base === undefined || g.related.size > base.related.size) base = g;
  if (base === undefined) return [];
  const ids = [...base.related.keys()];
  const others = groups.length - 1;
  // With several other groups, an id outside the base may be in more than one of them.
  const added = others > 1 ? new Set<string>() : undefined;
  for (const g of groups) {
    if (g === base) continue;
    for (const id of g.related.keys()) {
      if (base.related.has(id) || added?.has(id)) continue;
      added?.add(id);
      ids.push(id);
    }
  }
  return ids;
}

/**
 * The related cases of one entity over its linking keys, phases merged per case. With one
 * key holding rows (the usual case) that key's map is returned as is: groups only read it.
 * Otherwise each case gets a new slot: detectedAt of the first key (in key order) that has
 * it, phases of all of them.
 */
function relatedOf(
  keys: readonly string[],
  byKey: ReadonlyMap<string, ReadonlyMap<string, number>>,
  slots: Slots,
): ReadonlyMap<string, number> {
  let only: ReadonlyMap<string, number> | undefined;
  let several = false;
  for (const k of keys) {
    const m = byKey.get(k);
    if (m === undefined || m.size === 0) continue;
    if (only === undefined) only = m;
    else several = true;
  }
  if (only === undefined) return new Map();
  if (!several) return only;
  const related = new Map<string, number>();
  for (const k of keys) {
    for (const [id, slot] of byKey.get(k) ?? []) {
      const mask = slots.mask[slot] ?? 0;
      const mine = related.get(id);
      if (mine !== undefined) {
        slots.mask[mine] = (slots.mask[mine] ?? 0) | mask;
      } else {
        related.set(id, slots.t.length);
        slots.t.push(slots.t[slot] ?? Number.NaN);
        slots.mask.push(mask);
      }
    }
  }
  return related;
}

/**
 * Criterion (a) when the related cases span more than a window: the phases (as a mask) of the
 * window-long span including this case that shows the most of them together (the earliest such span
 * on a tie). Such a
 * span can start at the earliest case it holds (moving its start right up to that case loses none
 * and may gain some at the other end), so the starts worth trying are the detection times in
 * [t0 − window, t0]; a two-pointer sweep over the cases sorted by time, with a count per phase, tries
 * them all. Runs only for an entity whose related cases are more than a window apart and together
 * show enough phases: a sort of those cases, O(n log n), is its whole cost.
 */
function phasesWithinOneWindow(t0: number, selfMask: number, related: ReadonlyMap<string, number>, slots: Slots, windowMs: number): number {
  const dated: { t: number; m: number }[] = [];
  for (const slot of related.values()) dated.push({ t: slots.t[slot] ?? Number.NaN, m: slots.mask[slot] ?? 0 });
  dated.sort((a, b) => a.t - b.t);
  const counts = new Array<number>(KILL_CHAIN_PHASES.length).fill(0);
  const count = (m: number, by: number): void => {
    for (let i = 0; i < counts.length; i++) if (m & (1 << i)) counts[i] = (counts[i] ?? 0) + by;
  };
  let best = selfMask;
  let hi = 0;
  let lo = 0;
  const tryStart = (start: number): void => {
    while (hi < dated.length && (dated[hi]?.t ?? Number.NaN) <= start + windowMs) count(dated[hi++]?.m ?? 0, 1);
    while (lo < hi && (dated[lo]?.t ?? Number.NaN) < start) count(dated[lo++]?.m ?? 0, -1);
    let mask = selfMask;
    for (let i = 0; i < counts.length; i++) if ((counts[i] ?? 0) > 0) mask |= 1 << i;
    if (phaseCount(mask) > phaseCount(best)) best = mask;
  };
  // Starts in ascending order, so both pointers only move forward: the related times in [t0 − window, t0], then t0.
  for (const d of dated) if (d.t >= t0 - windowMs && d.t <= t0) tryStart(d.t);
  tryStart(t0);
  return best;
}

/**
 * The first `limit` ids of `sorted` that `subset` holds, in order. `subset`'s keys are all in
 * `sorted`, so this equals sorting them and keeping the first `limit`, without a second sort;
 * only the listed ones are looked for (the report names ten, an entity may relate hundreds).
 */
function firstSorted(sorted: readonly string[], subset: ReadonlyMap<string, unknown>, limit: number): readonly string[] {
  if (subset.size === sorted.length) return sorted;
  const want = Math.min(limit, subset.size);
  const out: string[] = [];
  for (const id of sorted) {
    if (out.length === want) break;
    if (subset.has(id)) out.push(id);
  }
  return out;
}
