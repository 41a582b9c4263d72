/**
 * Environment → typed settings. Every setting the product reads is listed here
 * (and in README "Configuration" and local.settings.sample.json).
 */
import { z } from 'zod';
import { ConfigError } from '../errors';
import { LOG_LEVELS } from '../log';

const settingsSchema = z.object({
  POLICY_DIR: z.string().min(1).default('./policies'),
  INDICATOR_FILES: z.string().default('./indicators/soc-global.csv'),
  OUTBOX_FILE: z.string().default('./data/outbox.jsonl'),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(100 * 1024 * 1024)
    .default(1_048_576),
  EVENTHUB_NAME: z.string().default('am-securityalert'),
  CORRELATION_RECHECK: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  // The logger reads LOG_LEVEL itself (it exists before the settings); checked here so a typo stops the
  // app at start instead of silently logging at `info`.
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).optional(),
});

/** Settings shared by every runtime (stores and auth read their own). */
export interface Settings {
  readonly policyDir: string;
  /** Indicator files (CSV/JSON/STIX), comma-separated in the environment; empty = none. */
  readonly indicatorFiles: readonly string[];
  /** Where the embedded outbox channel appends notifications; empty disables it. */
  readonly outboxFile: string;
  readonly maxBodyBytes: number;
  readonly eventHubName: string;
  /**
   * Look a case's related cases up again after its commit when the store does not order look-ups
   * and writes itself (Cosmos with several instances), so related alerts triaged at the same moment
   * on two instances still correlate (see pipeline.ts), for one more single-partition query per alert.
   */
  readonly correlationRecheck: boolean;
}

/** Reads settings from the environment; an invalid value throws ConfigError naming it. */
export function settingsFromEnv(env: NodeJS.ProcessEnv): Settings {
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue?.path[0] ?? '?'), issue?.message ?? 'invalid');
  }
  const s = parsed.data;
  return {
    policyDir: s.POLICY_DIR,
    indicatorFiles: s.INDICATOR_FILES.split(',')
      .map((f) => f.trim())
      .filter(Boolean),
    outboxFile: s.OUTBOX_FILE,
    maxBodyBytes: s.MAX_BODY_BYTES,
    eventHubName: s.EVENTHUB_NAME,
    correlationRecheck: s.CORRELATION_RECHECK === 'true',
  };
}
