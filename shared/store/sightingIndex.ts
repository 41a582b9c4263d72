/**
 * The in-memory correlation index of the SQLite store: for every (tenant, entity key), the
 * sightings of that key ordered by (detected instant, case id). Pure data structure, no I/O.
 *
 * Why in memory: answering "sightings of these keys within ±window" from a SQLite B-tree cost
 * ≈ 190 µs per alert (one range scan per key, ≈ 150 rows turned into objects), and keeping that
 * B-tree ordered by key cost another ≈ 190 µs per alert at commit time (six random leaf pages
 * per alert written to the WAL). Here a query is a binary search per key, and the durable side
 * is an append-only log (see sqlite.ts), read back into this structure when the store opens.
 *
 * Memory: one small object per (case, instant) shared by all its keys, plus per key one array slot
 * and one number (its time, see KeyList). Entity key strings are interned, so a key seen in many
 * cases is stored once.
 *
 * Rows carry what correlation needs as numbers (detection time in ms, phase mask), computed once at
 * insert: a look-up's cost is mostly reading old entries out of cache, and parsing their old strings
 * again on every look-up read even more of them.
 */

import { maskOf } from '../correlation/killchain';
import type { KillChainPhase, Severity } from '../model/domain';
import { canonicalInstant, parseInstant } from '../model/instant';
import type { EntitySighting, RelatedQuery, RelatedResult } from './port';

/** A case's sightings at one instant: the same verdict under several entity keys. */
export interface SightingGroup {
  /** Canonical instant (`YYYY-MM-DDTHH:mm:ss.sssZ`), so string order is time order. */
  readonly at: string;
  readonly phases: readonly KillChainPhase[];
  readonly playbook: string;
  readonly severity: Severity;
  /** Entity keys, distinct within the group. */
  readonly keys: readonly string[];
}

/**
 * One indexed (case, instant): what every key's array points at (its keys interned), with the
 * numbers correlation needs computed once here rather than parsed from `at` / `phases` on every
 * look-up that returns it (see EntitySighting's `detectedAtMs` / `phaseMask`).
 */
interface Entry extends SightingGroup {
  readonly tenantId: string;
  readonly caseId: string;
  /** parseInstant(at). */
  readonly t: number;
  /** maskOf(phases). */
  readonly mask: number;
}

/**
 * One (tenant, key)'s entries, with the key's interned string: a look-up by a freshly parsed key
 * finds both in one map probe (reading the log would otherwise probe the intern map too, once per
 * key of every row).
 */
interface KeyList {
  readonly key: string;
  readonly entries: Entry[];
  /**
   * entries[i].t, side by side: a look-up finds its window's bounds in this array of unboxed
   * numbers (eight to a cache line) instead of reading an old entry and its old time string per probe.
   */
  readonly times: number[];
}

/**
 * A row of a look-up. The precomputed numbers come from the entry, held in a private field: a row
 * still compares (`toEqual`) and serialises as the seven fields of the sighting, as the port's rows
 * of every store do, while correlation reads `detectedAtMs` / `phaseMask` without parsing.
 */
class IndexedSighting implements EntitySighting {
  readonly #entry: Entry;
  readonly tenantId: string;
  readonly entityKey: string;
  readonly caseId: string;
  readonly detectedAt: string;
  readonly phases: readonly KillChainPhase[];
  readonly playbook: string;
  readonly severity: Severity;

  constructor(entry: Entry, entityKey: string) {
    this.#entry = entry;
    this.tenantId = entry.tenantId;
    this.entityKey = entityKey;
    this.caseId = entry.caseId;
    this.detectedAt = entry.at;
    this.phases = entry.phases;
    this.playbook = entry.playbook;
    this.severity = entry.severity;
  }

  /** parseInstant(detectedAt), computed when the entry was indexed. */
  get detectedAtMs(): number {
    return this.#entry.t;
  }

  /** maskOf(phases), computed when the entry was indexed. */
  get phaseMask(): number {
    return this.#entry.mask;
  }
}

/** The store's RelatedQuery with `from` / `to` as canonical instants (the caller canonicalises them). */
export type IndexQuery = RelatedQuery;

/** (at, caseId) order, the order of the former SQLite primary key (binary collation). */
function before(a: Entry, at: string, caseId: string): boolean {
  return a.at < at || (a.at === at && a.caseId < caseId);
}

/** First index whose entry is not before (at, caseId). */
function lowerBound(arr: readonly Entry[], at: string, caseId: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(arr[mid] as Entry, at, caseId)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The first index i ≤ `end` from which the entries before `end` are all at or after `at` (`inclusive`:
 * all after it): lowerBound(arr, at, '') (upperBoundAt when inclusive) over arr[0, end), searched from
 * `end` backwards, by doubling steps, then halving. Why: look-ups are for recent windows, at the end
 * of the arrays, so this reads about 2·log2 of the rows found rather than log2 of all a key holds,
 * and it reads entries the row loop reads next anyway (a binary search reads old ones, out of cache).
 */
function boundFromEnd(arr: readonly Entry[], end: number, at: string, inclusive: boolean): number {
  let hi = end; // arr[hi, end) are known not to be below
  let step = 1;
  let probe = end - 1;
  while (probe >= 0) {
    const a = (arr[probe] as Entry).at;
    if (inclusive ? a <= at : a < at) break;
    hi = probe;
    probe = hi - step;
    step *= 2;
  }
  let lo = probe + 1; // arr[probe] is below (or probe < 0)
  if (lo < 0) lo = 0;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const a = (arr[mid] as Entry).at;
    if (inclusive ? a <= at : a < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts keeping (at, caseId) order; an entry with the same (at, caseId) is replaced (one row per key, instant and case). */
function insert(list: KeyList, entry: Entry): void {
  const arr = list.entries;
  // Live alerts mostly arrive in time order: appending is the common case.
  const last = arr[arr.length - 1];
  if (!last || before(last, entry.at, entry.caseId)) {
    arr.push(entry);
    list.times.push(entry.t);
    return;
  }
  const i = lowerBound(arr, entry.at, entry.caseId);
  const at = arr[i];
  if (at && at.at === entry.at && at.caseId === entry.caseId) {
    arr[i] = entry;
    list.times[i] = entry.t;
  } else {
    arr.splice(i, 0, entry);
    list.times.splice(i, 0, entry.t);
  }
}

/** Whether `e` is below the bound: before `at`, or (`inclusive`) at it or before. */
function below(e: Entry, at: string, inclusive: boolean): boolean {
  return inclusive ? e.at <= at : e.at < at;
}

/**
 * boundFromEnd, guided by the numbers: the same gallop over `times` against `ms` (parseInstant(at)),
 * then the index found is checked on its two neighbours with the strings, which decide. The entries
 * are ordered by their strings, so "below" holds for a prefix of them: an index whose left
 * neighbour is below and whose own entry is not is THE bound. Times agree with the strings for
 * canonical instants (all the pipeline writes); for any other (unparsable: NaN) the check fails and
 * the strings are searched, so the answer never depends on the numbers.
 */
function boundFromEndByTime(list: KeyList, end: number, at: string, ms: number, inclusive: boolean): number {
  const times = list.times;
  let hi = end;
  let step = 1;
  let probe = end - 1;
  while (probe >= 0) {
    const t = times[probe] as number;
    if (inclusive ? t <= ms : t < ms) break;
    hi = probe;
    probe = hi - step;
    step *= 2;
  }
  let lo = probe + 1;
  if (lo < 0) lo = 0;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const t = times[mid] as number;
    if (inclusive ? t <= ms : t < ms) lo = mid + 1;
    else hi = mid;
  }
  const arr = list.entries;
  if ((lo === 0 || below(arr[lo - 1] as Entry, at, inclusive)) && (lo === end || !below(arr[lo] as Entry, at, inclusive))) return lo;
  return boundFromEnd(arr, end, at, inclusive);
}

/**
 * The index. `replace` sets all of a case's sightings at once (a case is always written whole),
 * `query` answers the store's findRelated with the same semantics as the former SQL: rows with
 * from ≤ at ≤ to, the excluded case left out, newest first (ties: case id descending), and a key
 * with limitPerKey rows or more reported as saturated without its rows.
 */
export class SightingIndex {
  /**
   * tenant → entity key → entries ordered by (at, caseId). Two levels rather than one map over
   * concatenated strings: a fresh concatenation must be hashed on every lookup, an interned key once.
   */
  private readonly byKey = new Map<string, Map<string, KeyList>>();
  private keyCount = 0;
  /** caseId → its entry, or entries when it has several (rare); tenants are told apart by the entry. */
  private readonly byCase = new Map<string, Entry | Entry[]>();
  /** Interned entity keys: a key seen in thousands of cases is held once. */
  private readonly interned = new Map<string, string>();
  private entryCount = 0;
  private rowCount = 0;

  /** Number of (case, instant) entries held. */
  get entries(): number {
    return this.entryCount;
  }

  /** Number of (key, case, instant) rows held: what the former table held. */
  get rows(): number {
    return this.rowCount;
  }

  /** Number of distinct (tenant, key) held. */
  get keys(): number {
    return this.keyCount;
  }

  /**
   * Sets the sightings of a case to `groups` (an empty list removes the case). Returns the groups
   * it had before, so a rolled-back transaction can put them back.
   */
  replace(tenantId: string, caseId: string, groups: readonly SightingGroup[]): SightingGroup[] {
    const previous = this.byCase.has(caseId) ? this.remove(tenantId, caseId) : [];
    this.add(tenantId, caseId, groups);
    return previous;
  }

  private add(tenantId: string, caseId: string, groups: readonly SightingGroup[]): void {
    const tenant = this.intern(tenantId);
    for (const g of groups) {
      if (g.keys.length === 0) continue;
      let tenantKeys = this.byKey.get(tenant);
      if (!tenantKeys) {
        tenantKeys = new Map();
        this.byKey.set(tenant, tenantKeys);
      }
      const n = g.keys.length;
      // Sized up front, not grown by push: an entry's key list lives as long as the entry (a million of them
      // per million stored alerts), and a pushed-to array keeps room for 17 elements (≈ 100 B more per entry).
      const lists = new Array<KeyList>(n);
      const keys = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const k = g.keys[i] as string;
        let list = tenantKeys.get(k);
        if (!list) {
          list = { key: this.intern(k), entries: [], times: [] };
          tenantKeys.set(list.key, list);
          this.keyCount++;
        }
        lists[i] = list;
        keys[i] = list.key;
      }
      const entry: Entry = {
        tenantId: tenant,
        caseId,
        at: g.at,
        phases: g.phases,
        playbook: g.playbook,
        severity: g.severity,
        keys,
        t: parseInstant(g.at),
        mask: maskOf(g.phases),
      };
      for (const list of lists) insert(list, entry);
      this.entryCount++;
      this.rowCount += keys.length;
      const others = this.byCase.get(caseId);
      if (others === undefined) this.byCase.set(caseId, entry);
      else if (Array.isArray(others)) others.push(entry);
      else this.byCase.set(caseId, [others, entry]);
    }
  }

  /**
   * Bulk load: `fn` gets `add`, which adds a case's groups without looking for what the case held
   * before (the index is empty when loading starts, and a case with rows at several instants comes
   * once per instant). Rows given in time order make every insert an append.
   */
  load(fn: (add: (tenantId: string, caseId: string, groups: readonly SightingGroup[]) => void) => void): void {
    this.clear();
    fn((tenantId, caseId, groups) => {
      this.add(tenantId, caseId, groups);
    });
  }

  /**
   * Drops every entry older than `at` (canonical instant). Returns how many rows went. Walks each
   * key's array only up to `at` (the arrays are time-ordered), so it costs the rows dropped plus one
   * binary search per key, not a pass over every case.
   */
  evictBefore(at: string): number {
    let dropped = 0;
    const released: string[] = [];
    for (const [tenant, tenantKeys] of this.byKey) {
      for (const [key, { entries: arr, times }] of tenantKeys) {
        const n = lowerBound(arr, at, '');
        if (n === 0) continue;
        for (let i = 0; i < n; i++) if (this.forgetEntry(arr[i] as Entry)) this.entryCount--;
        arr.splice(0, n);
        times.splice(0, n);
        this.rowCount -= n;
        dropped += n;
        if (arr.length === 0) {
          tenantKeys.delete(key);
          this.keyCount--;
          released.push(key);
        }
      }
      if (tenantKeys.size === 0) {
        this.byKey.delete(tenant);
        released.push(tenant);
      }
    }
    // An interned string no tenant uses any more (as a key, or as the tenant itself) is let go.
    for (const k of released) {
      let used = this.byKey.has(k);
      for (const tenantKeys of this.byKey.values()) used ||= tenantKeys.has(k);
      if (!used) this.interned.delete(k);
    }
    return dropped;
  }

  /** Removes an entry from its case's list; false when it was already gone (an entry sits under several keys). */
  private forgetEntry(e: Entry): boolean {
    const held = this.byCase.get(e.caseId);
    if (held === e) {
      this.byCase.delete(e.caseId);
      return true;
    }
    if (!Array.isArray(held)) return false;
    const i = held.indexOf(e);
    if (i < 0) return false;
    held.splice(i, 1);
    if (held.length === 1) this.byCase.set(e.caseId, held[0] as Entry);
    return true;
  }

  /** Empties the index. */
  clear(): void {
    this.byKey.clear();
    this.keyCount = 0;
    this.byCase.clear();
    this.interned.clear();
    this.entryCount = 0;
    this.rowCount = 0;
  }

  /** findRelated over the index (see the class comment for the semantics). */
  query(q: IndexQuery): RelatedResult {
    const sightings: EntitySighting[] = [];
    const saturated: string[] = [];
    if (q.limitPerKey <= 0) return { sightings, saturated };
    const tenantKeys = this.byKey.get(q.tenantId);
    if (!tenantKeys) return { sightings, saturated };
    // The excluded case's entries in this tenant: its rows are told by identity, without reading
    // each row's case id (an old string, mostly out of cache, compared on every row).
    const held = q.excludeCaseId === undefined ? undefined : this.byCase.get(q.excludeCaseId);
    const excluded =
      held === undefined
        ? undefined
        : Array.isArray(held)
          ? held.filter((e) => e.tenantId === q.tenantId)
          : held.tenantId === q.tenantId
            ? [held]
            : undefined;
    const fromMs = parseInstant(q.from);
    const toMs = parseInstant(q.to);
    const seen = new Set<string>();
    for (const key of q.keys) {
      if (seen.has(key)) continue;
      seen.add(key);
      const list = tenantKeys.get(key);
      if (!list) continue;
      const arr = list.entries;
      const hi = boundFromEndByTime(list, arr.length, q.to, toMs, true);
      const lo = boundFromEndByTime(list, hi, q.from, fromMs, false);
      if (hi <= lo) continue;
      let n = hi - lo;
      if (excluded) for (const e of excluded) if (e.at >= q.from && e.at <= q.to && e.keys.includes(key)) n--;
      if (n >= q.limitPerKey) {
        saturated.push(key);
        continue;
      }
      for (let i = hi - 1; i >= lo; i--) {
        const e = arr[i] as Entry;
        if (excluded?.includes(e)) continue;
        sightings.push(new IndexedSighting(e, key));
      }
    }
    return { sightings, saturated };
  }

  private intern(k: string): string {
    const known = this.interned.get(k);
    if (known !== undefined) return known;
    this.interned.set(k, k);
    return k;
  }

  private delete(tenantId: string, key: string, entry: Entry): void {
    const tenantKeys = this.byKey.get(tenantId);
    const list = tenantKeys?.get(key);
    if (!tenantKeys || !list) return;
    const arr = list.entries;
    const i = lowerBound(arr, entry.at, entry.caseId);
    if (arr[i] === entry) {
      arr.splice(i, 1);
      list.times.splice(i, 1);
    }
    if (arr.length === 0) {
      tenantKeys.delete(key);
      this.keyCount--;
      if (tenantKeys.size === 0) this.byKey.delete(tenantId);
    }
  }

  private remove(tenantId: string, caseId: string): SightingGroup[] {
    const held = this.byCase.get(caseId);
    if (!held) return [];
    const entries = Array.isArray(held) ? held : [held];
    const mine = entries.filter((e) => e.tenantId === tenantId);
    if (mine.length === 0) return [];
    for (const e of mine) {
      for (const k of e.keys) this.delete(tenantId, k, e);
      this.entryCount--;
      this.rowCount -= e.keys.length;
    }
    const rest = entries.filter((e) => e.tenantId !== tenantId);
    if (rest.length === 0) this.byCase.delete(caseId);
    else this.byCase.set(caseId, rest.length === 1 ? (rest[0] as Entry) : rest);
    return mine.map((e) => ({ at: e.at, phases: e.phases, playbook: e.playbook, severity: e.severity, keys: e.keys }));
  }
}

/**
 * Groups a case's sightings by instant and verdict (in the pipeline: one group per case), one
 * row per (key, instant): a repeated (key, instant) keeps its last verdict, as the former
 * primary key did. Instants are canonicalised (canonicalInstant).
 */
export function groupSightings(sightings: readonly EntitySighting[]): SightingGroup[] {
  const one = oneGroup(sightings);
  if (one !== undefined) return one;
  const last = new Map<string, { readonly s: EntitySighting; readonly at: string }>();
  for (const s of sightings) {
    // The instant is kept as its own (flat) string: slicing it back out of the map key would give
    // a sliced string, measurably slower to compare in every later lookup.
    const at = canonicalInstant(s.detectedAt);
    const id = `${s.entityKey}\u0000${at}`;
    last.delete(id); // re-inserting keeps the last writer's position too
    last.set(id, { s, at });
  }
  const groups = new Map<string, { at: string; phases: readonly KillChainPhase[]; playbook: string; severity: Severity; keys: string[] }>();
  for (const { s, at } of last.values()) {
    const g = `${at}\u0000${s.phases.join(',')}\u0000${s.playbook}\u0000${s.severity}`;
    const group = groups.get(g);
    if (group) group.keys.push(s.entityKey);
    else groups.set(g, { at, phases: s.phases, playbook: s.playbook, severity: s.severity, keys: [s.entityKey] });
  }
  return [...groups.values()];
}

/** Up to this many keys, distinctness is checked pairwise (no Set allocated): the pipeline's cases have a handful. */
const PAIRWISE_MAX = 16;

/**
 * groupSightings' answer when every sighting has the same instant spelling and the same verdict (the same
 * phases array, playbook and severity) and no key repeats, else undefined: what the pipeline writes (one
 * verdict per case, its distinct keys). One group, its keys in the given order, and the instant canonicalised
 * once, without the per-sighting ids and maps of the general path, which gives the same answer here.
 */
function oneGroup(sightings: readonly EntitySighting[]): SightingGroup[] | undefined {
  const first = sightings[0];
  if (first === undefined) return [];
  const n = sightings.length;
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = sightings[i] as EntitySighting;
    if (s.detectedAt !== first.detectedAt || s.phases !== first.phases || s.playbook !== first.playbook || s.severity !== first.severity)
      return undefined;
    keys.push(s.entityKey);
  }
  if (n <= PAIRWISE_MAX) {
    for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) if (keys[i] === keys[j]) return undefined;
  } else if (new Set(keys).size !== n) return undefined;
  return [{ at: canonicalInstant(first.detectedAt), phases: first.phases, playbook: first.playbook, severity: first.severity, keys }];
}
