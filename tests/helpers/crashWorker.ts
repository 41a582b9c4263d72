/**
 * Child process for the crash-consistency test: runs the registered `alertStream`
 * function over an event file in batches (as the Event Hub trigger would), on the
 * SQLite file named by SQLITE_FILE, and SIGKILLs itself at the CRASH_AT-th side-effect
 * operation (a store write or a channel send), either just before it or just after it
 * (CRASH_WHEN=before|after). Without CRASH_AT it runs to completion and prints the
 * number of side-effect operations it performed.
 */
import { readFileSync } from 'node:fs';
import { InvocationContext } from '@azure/functions';
import { registered } from '../../cli/host/functionsCore';
import { installFunctionsCore } from '../../cli/host/install';
import { silentLogger } from '../../shared/log';
import { FileChannel, OutboxDispatcher } from '../../shared/notify/outbox';
import { createRuntime, setRuntime } from '../../shared/runtime';
import type { Store } from '../../shared/store/port';
import { openSqliteStore } from '../../shared/store/sqlite';

const crashAt = process.env.CRASH_AT ? Number(process.env.CRASH_AT) : Number.POSITIVE_INFINITY;
const when = process.env.CRASH_WHEN === 'after' ? 'after' : 'before';
let ops = 0;

async function effect<T>(fn: () => Promise<T>): Promise<T> {
  ops++;
  if (ops === crashAt && when === 'before') process.kill(process.pid, 'SIGKILL');
  const r = await fn();
  if (ops === crashAt && when === 'after') process.kill(process.pid, 'SIGKILL');
  return r;
}

function crashing(store: Store): Store {
  return {
    getCase: (t, c) => store.getCase(t, c),
    findCase: (c) => store.findCase(c),
    findRelated: (q) => store.findRelated(q),
    listNotifications: (f) => store.listNotifications(f),
    listParked: (f) => store.listParked(f),
    putCase: (r, s, e, o) => effect(() => store.putCase(r, s, e, o)),
    acquireLease: (l, n) => effect(() => store.acquireLease(l, n)),
    releaseLease: (t, c, o) => effect(() => store.releaseLease(t, c, o)),
    enqueueNotification: (n) => effect(() => store.enqueueNotification(n)),
    markNotification: (t, k, u) => effect(() => store.markNotification(t, k, u)),
    park: (p) => effect(() => store.park(p)),
    markParkedReplayed: (id, at) => effect(() => store.markParkedReplayed(id, at)),
    // The batch path: one commit per Event Hub batch, so a kill anywhere inside rolls the batch back.
    unitOfWork: <T>(fn: () => Promise<T>) => (store.unitOfWork ? store.unitOfWork(fn) : fn()),
    close: () => store.close(),
  };
}

async function main(): Promise<void> {
  const db = process.env.SQLITE_FILE as string;
  const outbox = process.env.OUTBOX_FILE as string;
  const store = crashing(openSqliteStore({ file: db }));
  // The channel send is a side effect too: crash between it and the outbox status update.
  const file = new FileChannel(outbox);
  const rt = await createRuntime(process.env, { log: silentLogger, store, channel: { send: (n) => effect(() => file.send(n)) } });
  setRuntime(rt);
  installFunctionsCore();
  require('../../functions/index');
  const fn = registered.find((f) => f.name === 'alertStream');
  if (!fn) throw new Error('alertStream not registered');
  const events = JSON.parse(readFileSync(process.env.EVENTS_FILE as string, 'utf8')) as unknown[];
  for (let i = 0; i < events.length; i += 100) {
    await fn.handler(events.slice(i, i + 100), new InvocationContext({ functionName: 'alertStream', invocationId: `b${i}` }));
  }
  if (process.env.DRAIN_AFTER_MS) {
    // What the outbox drain (timer) does later: a claim left by a killed sender has expired by then.
    const later = () => new Date(Date.now() + Number(process.env.DRAIN_AFTER_MS));
    await new OutboxDispatcher(store, { send: (n) => effect(() => file.send(n)) }, silentLogger, later).drain();
  }
  await rt.close();
  process.stdout.write(`${JSON.stringify({ ops })}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(3);
});
