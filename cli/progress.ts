/** A minimal progress bar on stderr, shown only when stderr is a terminal. */

/** Progress reporter. */
export interface Progress {
  tick(n?: number): void;
  done(): void;
}

/** Creates a progress bar for `total` items (no-op when stderr is not a TTY or total is small). */
export function createProgress(total: number, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY || total < 200) return { tick: () => undefined, done: () => undefined };
  let n = 0;
  let last = 0;
  const started = Date.now();
  const draw = (): void => {
    const width = 30;
    const frac = Math.min(1, n / total);
    const filled = Math.round(frac * width);
    const rate = n / Math.max(0.001, (Date.now() - started) / 1000);
    stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${n}/${total} ${rate.toFixed(0)}/s`);
  };
  return {
    tick: (k = 1) => {
      n += k;
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        draw();
      }
    },
    done: () => {
      draw();
      stream.write('\n');
    },
  };
}
