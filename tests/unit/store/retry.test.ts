import { backoffDelay, withRetry } from '../../../shared/store/retry';

class Transient extends Error {
  constructor(readonly retryAfterMs?: number) {
    super('transient');
  }
}
class Fatal extends Error {}

function policy(slept: number[], overrides: Partial<Parameters<typeof withRetry>[1]> = {}) {
  return {
    attempts: 4,
    baseMs: 100,
    maxMs: 1_000,
    isRetryable: (err: unknown) => err instanceof Transient,
    retryAfterMs: (err: unknown) => (err instanceof Transient ? err.retryAfterMs : undefined),
    sleep: async (ms: number) => void slept.push(ms),
    random: () => 1,
    ...overrides,
  };
}

function failing(errors: readonly Error[]) {
  let calls = 0;
  const fn = async (attempt: number) => {
    calls++;
    const err = errors[attempt - 1];
    if (err) throw err;
    return `ok on attempt ${attempt}`;
  };
  return { fn, calls: () => calls };
}

describe('withRetry', () => {
  it('returns the first success without waiting', async () => {
    const slept: number[] = [];

    await expect(withRetry(async () => 'done', policy(slept))).resolves.toBe('done');
    expect(slept).toEqual([]);
  });

  it('backs off exponentially between transient failures', async () => {
    const slept: number[] = [];
    const { fn } = failing([new Transient(), new Transient(), new Transient()]);

    await expect(withRetry(fn, policy(slept))).resolves.toBe('ok on attempt 4');
    expect(slept).toEqual([100, 200, 400]);
  });

  it('waits what the server asks instead of the computed backoff', async () => {
    const slept: number[] = [];
    const { fn } = failing([new Transient(50), new Transient()]);

    await withRetry(fn, policy(slept));

    expect(slept).toEqual([50, 200]);
  });

  it('caps every wait, the server-requested ones included, at maxMs', async () => {
    const slept: number[] = [];
    const { fn } = failing([new Transient(60_000), new Transient(), new Transient()]);

    await withRetry(fn, policy(slept, { baseMs: 400, maxMs: 1_000 }));

    expect(slept).toEqual([1_000, 800, 1_000]);
  });

  it('rethrows a non-retryable error at once', async () => {
    const slept: number[] = [];
    const { fn, calls } = failing([new Fatal('no')]);

    await expect(withRetry(fn, policy(slept))).rejects.toBeInstanceOf(Fatal);
    expect(calls()).toBe(1);
    expect(slept).toEqual([]);
  });

  it('stops after the attempts and maps the last error when told how', async () => {
    const slept: number[] = [];
    const last = new Transient();
    const { fn, calls } = failing([new Transient(), new Transient(), new Transient(), last]);

    const failure = await withRetry(fn, policy(slept, { exhausted: (err, n) => new Fatal(`gave up after ${n}`, { cause: err }) })).catch(
      (e: unknown) => e,
    );

    expect(calls()).toBe(4);
    expect(failure).toBeInstanceOf(Fatal);
    expect((failure as Fatal).message).toBe('gave up after 4');
    expect((failure as Fatal).cause).toBe(last);
  });

  it('rethrows the last error itself when no mapping is given', async () => {
    const slept: number[] = [];
    const last = new Transient();

    await expect(withRetry(failing([new Transient(), last]).fn, policy(slept, { attempts: 2 }))).rejects.toBe(last);
  });

  it('tells the caller about each retry before waiting', async () => {
    const seen: { attempt: number; delayMs: number }[] = [];

    await withRetry(
      failing([new Transient(), new Transient(30)]).fn,
      policy([], { onRetry: ({ attempt, delayMs }) => seen.push({ attempt, delayMs }) }),
    );

    expect(seen).toEqual([
      { attempt: 1, delayMs: 100 },
      { attempt: 2, delayMs: 30 },
    ]);
  });
});

describe('backoffDelay', () => {
  it('spreads waits between half and all of the exponential step (equal jitter)', () => {
    const p = { baseMs: 100, maxMs: 10_000 };

    expect([backoffDelay(3, p, () => 0), backoffDelay(3, p, () => 0.999999)]).toEqual([200, 400]);
  });
});
