/**
 * Threat-indicator look-ups used by classification (reputation playbook) and
 * scoring (an indicator hit raises severity). Two sources:
 * - the tenant's own blacklists from the policy (`blacklists.ip|domain|filehash`), matched here;
 * - an optional global indicator set (the SOC's global blacklist, a TI feed) injected into
 *   `createBrain`; loading it (CSV/STIX, Sentinel TI table) is the enrichment issue's job.
 */
import type { Entity } from '../model/domain';

/** One known-bad match for an entity. */
export interface IndicatorHit {
  /** The entity key that matched (`ip:192.0.2.200`). */
  readonly key: string;
  /** Where the indicator comes from (`soc-global-blacklist`, `policy:blacklists.ip`, …). */
  readonly source: string;
  /** Threat category when known (`botnet-c2`, `brute-force`, …). */
  readonly category?: string;
  /** Confidence 0–100 when known. */
  readonly confidence?: number;
  /** Short description (indicator-feed text: treat as untrusted when rendering). */
  readonly description?: string;
}

/**
 * A global set of indicators keyed by canonical entity key (`ip:…`, `domain:…`,
 * `filehash:sha256:…`). Implementations must be in-memory and fast (called on the
 * hot path for every key and alt key of every entity).
 */
export interface IndicatorSet {
  /** The hit for an entity key, or undefined when the key is not listed. */
  lookup(entityKey: string): IndicatorHit | undefined;
}

/** Evidence sources whose `found` findings count as indicator hits in scoring (enrichment names its evidence so). */
export const INDICATOR_EVIDENCE_SOURCES = ['indicators', 'blacklist', 'threat-intel', 'reputation'] as const;

/**
 * A simple in-memory IndicatorSet over a list of hits (tests, small local lists).
 * Keys are compared lower-cased.
 */
export function indicatorSetOf(hits: readonly IndicatorHit[]): IndicatorSet {
  const byKey = new Map<string, IndicatorHit>();
  for (const h of hits) byKey.set(h.key.toLowerCase(), h);
  return { lookup: (k) => byKey.get(k.toLowerCase()) };
}

/** Looks an entity up in a global set by its key, then its alt keys. */
export function lookupEntity(set: IndicatorSet | undefined, e: Entity): IndicatorHit | undefined {
  if (!set) return undefined;
  const direct = set.lookup(e.key);
  if (direct) return direct;
  for (const k of e.altKeys) {
    const hit = set.lookup(k);
    if (hit) return hit;
  }
  return undefined;
}
