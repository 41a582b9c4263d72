import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyRegistry } from '../../../shared/config/policy';
import { silentLogger } from '../../../shared/log';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import {
  type CaseDocument,
  compactCaseDocument,
  DERIVED_FROM_CASE,
  expandCaseDocument,
  SAME_AS_FIRST_ALERT,
  type StoredCaseDocument,
} from '../../../shared/store/caseDoc';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT, SAMPLES } from '../../helpers/cli';

/** Every case the samples give, as the pipeline builds them (documents as putCase receives them). */
async function sampleDocuments(): Promise<CaseDocument[]> {
  const store = openSqliteStore({ file: ':memory:' });
  const docs: CaseDocument[] = [];
  const recording = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'putCase')
        return (...args: Parameters<typeof store.putCase>) => {
          docs.push({ case: args[0].case, result: args[0].result });
          return target.putCase(...args);
        };
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const pipeline = new Pipeline({
    store: recording,
    policies: PolicyRegistry.fromDirectory(join(ROOT, 'policies')),
    brain: createBrain(),
    log: silentLogger,
  });
  await pipeline.ingestText(readFileSync(join(SAMPLES, 'incident-create-bruteforce.json')), { kind: 'incident', source: 'test' });
  for (const f of ['securityalert-records.json', 'generic-alert.json'])
    await pipeline.ingestText(readFileSync(join(SAMPLES, f)), { kind: 'alerts', source: 'test' });
  await store.close();
  return docs;
}

/** What a store does: serialise the stored form, parse it back, expand. */
const roundTrip = (doc: CaseDocument): CaseDocument =>
  expandCaseDocument(JSON.parse(JSON.stringify(compactCaseDocument(doc))) as StoredCaseDocument);

describe('stored case documents', () => {
  let docs: CaseDocument[];
  beforeAll(async () => {
    docs = await sampleDocuments();
  });

  it('gives back every sample case exactly: same values and same key order', () => {
    expect(docs.length).toBeGreaterThanOrEqual(4);
    for (const doc of docs) {
      const back = roundTrip(doc);
      expect(back).toEqual(doc);
      expect(JSON.stringify(back)).toBe(JSON.stringify(doc));
    }
  });

  it("writes a stand-alone alert's entity lists once and shares the list again when read", () => {
    const alone = docs.filter((d) => d.case.source === 'alert');
    expect(alone.length).toBeGreaterThan(0);
    for (const doc of alone) {
      const stored = compactCaseDocument(doc);
      expect(stored.case.entities).toBe(SAME_AS_FIRST_ALERT);
      expect(stored.result.entities).toBe(DERIVED_FROM_CASE);
      const saved = JSON.stringify(doc).length - JSON.stringify(stored).length;
      const lists = JSON.stringify(doc.case.entities).length + JSON.stringify(doc.result.entities).length;
      expect(saved).toBe(lists - JSON.stringify(SAME_AS_FIRST_ALERT).length - JSON.stringify(DERIVED_FROM_CASE).length);
      const back = roundTrip(doc);
      expect(back.case.entities).toBe(back.case.alerts[0]?.entities);
    }
  });

  it("keeps an incident's merged entity list whole (it is not its first alert's list)", () => {
    const incident = docs.find((d) => d.case.source === 'incident') as CaseDocument;

    const stored = compactCaseDocument(incident);

    expect(stored.case.entities).toBe(incident.case.entities);
    expect(stored.result.entities).toBe(DERIVED_FROM_CASE);
    expect(roundTrip(incident)).toEqual(incident);
  });

  it('keeps a result entity list whole when it is not exactly (key, kind, label) of the case entities, in that order', () => {
    const doc = docs.find((d) => d.case.source === 'alert') as CaseDocument;
    const [first, ...rest] = doc.result.entities;
    const relabelled = { ...doc, result: { ...doc.result, entities: [{ ...first!, label: 'other' }, ...rest] } };
    const extra = { ...doc, result: { ...doc.result, entities: [{ ...first!, note: 'x' }, ...rest] } };
    const reordered = {
      ...doc,
      result: { ...doc.result, entities: [{ label: first!.label, key: first!.key, kind: first!.kind }, ...rest] },
    };

    expect(compactCaseDocument(relabelled).result.entities).toEqual(relabelled.result.entities);
    expect(compactCaseDocument(extra).result.entities).toEqual(extra.result.entities);
    expect(compactCaseDocument(reordered).result.entities).toBe(reordered.result.entities);
    expect(JSON.stringify(roundTrip(reordered))).toBe(JSON.stringify(reordered));
    expect(roundTrip(extra)).toEqual(extra);
  });

  it('reads a document stored whole (before this form) as it is', () => {
    const doc = docs.find((d) => d.case.source === 'alert') as CaseDocument;
    const whole = JSON.parse(JSON.stringify(doc)) as StoredCaseDocument;

    expect(expandCaseDocument(whole)).toEqual(doc);
  });
});
