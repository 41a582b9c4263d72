/** Read side: a case's latest result with the outbox's current delivery status folded in. */
import type { TriageResult } from '../model/domain';
import type { Store } from '../store/port';
import { mergeOutbox } from './pipeline';

/** The latest result of a case, or undefined when unknown. */
export async function caseView(store: Store, caseId: string, tenantId?: string): Promise<TriageResult | undefined> {
  const rec = tenantId ? await store.getCase(tenantId, caseId) : await store.findCase(caseId);
  if (!rec) return undefined;
  if (rec.result.notifications.length === 0) return rec.result;
  return mergeOutbox(rec.result, await store.listNotifications({ tenantId: rec.tenantId, caseId: rec.caseId }));
}
