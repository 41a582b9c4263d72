/** Builds an in-process runtime on an in-memory SQLite store for handler and pipeline tests. */
import { join } from 'node:path';
import { silentLogger } from '../../shared/log';
import { createRuntime, type Runtime, setRuntime } from '../../shared/runtime';
import { openSqliteStore } from '../../shared/store/sqlite';
import { ROOT, scratch } from './cli';

/** A runtime over the shipped policies and indicators, an in-memory store and a scratch outbox file. */
export async function testRuntime(env: NodeJS.ProcessEnv = {}): Promise<Runtime & { outboxFile: string }> {
  const outboxFile = join(scratch(), 'outbox.jsonl');
  const rt = await createRuntime(
    { POLICY_DIR: join(ROOT, 'policies'), INDICATOR_FILES: join(ROOT, 'indicators', 'soc-global.csv'), OUTBOX_FILE: outboxFile, ...env },
    { log: silentLogger, store: openSqliteStore({ file: ':memory:' }) },
  );
  setRuntime(rt);
  return Object.assign(rt, { outboxFile });
}
