/**
 * A stand-in for `@azure/functions-core` (the module the real Functions host
 * injects). @azure/functions calls `registerFunction(metadata, handler)` on it for
 * every `app.http` / `app.eventHub` / `app.timer`; this stand-in records them so that
 * the local host (`triage serve`) can route to the very same handlers, and tests can
 * assert every binding. Loaded by `installFunctionsCore()` under plain Node, and by
 * jest's moduleNameMapper in tests.
 */

/** A binding as @azure/functions describes it to the host. */
export interface RecordedBinding {
  readonly type: string;
  readonly direction: 'in' | 'out';
  readonly [key: string]: unknown;
}

/** One registered function. */
export interface RegisteredFunction {
  readonly name: string;
  readonly bindings: Readonly<Record<string, RecordedBinding>>;
  readonly retryOptions?: Readonly<Record<string, unknown>>;
  readonly handler: (...args: unknown[]) => unknown;
}

/** Everything registered so far, in registration order. */
export const registered: RegisteredFunction[] = [];

/** Part of the core API: the programming model announces itself. */
export function setProgrammingModel(_model: unknown): void {}

/** Part of the core API: records a function. */
export function registerFunction(
  metadata: { name: string; bindings: Record<string, RecordedBinding>; retryOptions?: Record<string, unknown> },
  handler: (...args: unknown[]) => unknown,
): { dispose(): void } {
  const entry: RegisteredFunction = {
    name: metadata.name,
    bindings: metadata.bindings,
    ...(metadata.retryOptions ? { retryOptions: metadata.retryOptions } : {}),
    handler,
  };
  registered.push(entry);
  return { dispose: () => registered.splice(registered.indexOf(entry), 1) };
}

/** Part of the core API: hooks are accepted and ignored. */
export function registerHook(_name: string, _cb: unknown): { dispose(): void } {
  return { dispose: () => undefined };
}

/** The trigger binding of a registered function. */
export function triggerOf(fn: RegisteredFunction): RecordedBinding {
  const t = Object.values(fn.bindings).find((b) => b.direction === 'in' && /trigger$/i.test(b.type));
  if (!t) throw new Error(`function ${fn.name} has no trigger binding`);
  return t;
}
