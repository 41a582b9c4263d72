/**
 * The stored form of a case revision's document (`{ case, result }`), shared by the stores.
 * Pure, no I/O.
 *
 * Why: a stand-alone alert's entity list is both `case.entities` and `case.alerts[0].entities`
 * (the same array, from the parser), and `result.entities` is `(key, kind, label)` of
 * `case.entities`. Written out, that is ≈ 1 KB of a ≈ 5.8 KB document said two or three times.
 * The stored form names the repeat instead of writing it; reading puts it back, so a read gives
 * the same record that was written (same values, same key order, and the shared array shared
 * again). Documents written before this form, or where the lists differ, are kept whole.
 */
import type { Case, Entity, TriageResult } from '../model/domain';

/** Stands for `case.alerts[0].entities` in a stored `case.entities`. */
export const SAME_AS_FIRST_ALERT = '=alerts[0].entities';
/** Stands for `(key, kind, label)` of `case.entities` in a stored `result.entities`. */
export const DERIVED_FROM_CASE = '=case.entities';

/** A case revision's document as the pipeline has it. */
export interface CaseDocument {
  readonly case: Case;
  readonly result: TriageResult;
}

/** A stored case document: as CaseDocument, except the entity lists may be markers. */
export interface StoredCaseDocument {
  readonly case: Omit<Case, 'entities'> & { readonly entities: Case['entities'] | typeof SAME_AS_FIRST_ALERT };
  readonly result: Omit<TriageResult, 'entities'> & { readonly entities: TriageResult['entities'] | typeof DERIVED_FROM_CASE };
}

function derivedFrom(entities: readonly Entity[], listed: TriageResult['entities']): boolean {
  if (entities.length !== listed.length) return false;
  for (let i = 0; i < entities.length; i++) {
    const e = entities[i] as Entity;
    const l = listed[i] as TriageResult['entities'][number];
    if (e.key !== l.key || e.kind !== l.kind || e.label !== l.label) return false;
    // Exactly these three fields in this order: anything else would not come back as it was.
    const fields = Object.keys(l);
    if (fields.length !== 3 || fields[0] !== 'key' || fields[1] !== 'kind' || fields[2] !== 'label') return false;
  }
  return true;
}

/**
 * The stored form of `doc`. Only an identical array counts as "the first alert's list" (what the
 * parser gives a stand-alone alert); anything else is written out, which is always correct.
 * Spreading keeps every key in its place, so the stored JSON keeps the record's key order.
 */
export function compactCaseDocument(doc: CaseDocument): StoredCaseDocument {
  const c = doc.case;
  const r = doc.result;
  return {
    case: c.alerts.length > 0 && c.alerts[0]?.entities === c.entities ? { ...c, entities: SAME_AS_FIRST_ALERT } : c,
    result: derivedFrom(c.entities, r.entities) ? { ...r, entities: DERIVED_FROM_CASE } : r,
  };
}

/**
 * Puts the repeats named by compactCaseDocument back, in place (the argument is a freshly parsed
 * document owned by the caller). A document without markers is returned as it is.
 */
export function expandCaseDocument(stored: StoredCaseDocument): CaseDocument {
  const c = stored.case as { entities: unknown; alerts: readonly { entities: readonly Entity[] }[] };
  if (c.entities === SAME_AS_FIRST_ALERT) c.entities = c.alerts[0]?.entities ?? [];
  const entities = c.entities as readonly Entity[];
  const r = stored.result as { entities: unknown };
  if (r.entities === DERIVED_FROM_CASE) r.entities = entities.map((e) => ({ key: e.key, kind: e.kind, label: e.label }));
  return stored as CaseDocument;
}
