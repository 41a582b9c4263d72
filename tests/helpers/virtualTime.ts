/**
 * A clock the test moves, with one-shot timers that fire when it passes their time: for the outbox's
 * send deadline, heartbeat and claim expiry without waiting for real time.
 */

/** Lets the store's group commits (setImmediate) and the promise chains behind them run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** The clock (`clock.now`, ms) starting at `t0`, a timer source for the code under test, and the test's controls. */
export function virtualTime(t0: number) {
  const clock = { now: t0 };
  let timers: { at: number; fn: () => void }[] = [];
  const setTimer = (ms: number, fn: () => void): (() => void) => {
    const t = { at: clock.now + ms, fn };
    timers.push(t);
    return () => {
      timers = timers.filter((x) => x !== t);
    };
  };
  /** Moves the clock to t0 + `ms`, firing each timer due on the way at its own time, in order. */
  const advanceTo = async (ms: number): Promise<void> => {
    for (;;) {
      const next = timers.filter((t) => t.at <= t0 + ms).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      timers = timers.filter((t) => t !== next);
      clock.now = Math.max(clock.now, next.at);
      next.fn();
      await settle();
    }
    clock.now = t0 + ms;
    await settle();
  };
  return { clock, setTimer, advanceTo, pending: () => timers.length };
}
