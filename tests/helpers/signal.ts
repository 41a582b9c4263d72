/** A promise and the function that settles it: one step of an interleaving a test forces. */
export interface Signal {
  readonly done: Promise<void>;
  readonly fire: () => void;
}

/** A new unsettled signal. */
export function signal(): Signal {
  let fire: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    fire = r;
  });
  return { done, fire };
}
