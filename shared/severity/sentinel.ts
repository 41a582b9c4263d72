/**
 * Mapping of triage severity onto Microsoft Sentinel's incident severity for
 * write-back. Sentinel has no Critical: critical is written as High plus the tag
 * `triage:critical`, so the distinction survives in the portal and in queries.
 */
import type { Severity } from '../model/domain';

/** Sentinel incident severities. */
export const SENTINEL_SEVERITIES = ['Informational', 'Low', 'Medium', 'High'] as const;
/** A Sentinel incident severity. */
export type SentinelSeverity = (typeof SENTINEL_SEVERITIES)[number];

/** The tag written with High when the triage severity is critical. */
export const CRITICAL_TAG = 'triage:critical';

/** Sentinel severity and extra tags for a triage severity. */
export function toSentinelSeverity(sev: Severity): { severity: SentinelSeverity; tags: string[] } {
  switch (sev) {
    case 'informational':
      return { severity: 'Informational', tags: [] };
    case 'low':
      return { severity: 'Low', tags: [] };
    case 'medium':
      return { severity: 'Medium', tags: [] };
    case 'high':
      return { severity: 'High', tags: [] };
    case 'critical':
      return { severity: 'High', tags: [CRITICAL_TAG] };
    default: {
      const never: never = sev;
      return never;
    }
  }
}
