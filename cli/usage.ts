/** What the command line itself got wrong: shared by every `triage` command so each maps it to exit code 2. */

/** The command line is wrong (a missing argument, a bad option value): exit code `usage` (2), never `error` (3). */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}
