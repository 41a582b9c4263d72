/**
 * Makes `require('@azure/functions-core')` resolve to the recording stand-in
 * under plain Node, so loading `functions/index` registers into it.
 */
import Module from 'node:module';
import * as core from './functionsCore';

const CORE = '@azure/functions-core';
let installed = false;

/** Installs the stand-in (idempotent) and returns its registry. */
export function installFunctionsCore(): typeof core {
  if (installed) return core;
  const M = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = M._resolveFilename;
  M._resolveFilename = function resolve(this: unknown, request: string, ...rest: unknown[]): string {
    return request === CORE ? CORE : original.call(this, request, ...rest);
  };
  const mod = new Module(CORE);
  mod.filename = CORE;
  mod.loaded = true;
  mod.exports = core;
  require.cache[CORE] = mod;
  installed = true;
  return core;
}
