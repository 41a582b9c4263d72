#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` through `prepare`).

let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (e) {
  if (e?.code === 'MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]main/.test(String(e.message))) {
    process.stderr.write('sentinel-triage is not built yet: run `npm run build` (npm ci does it for you).\n');
    process.exit(3);
  }
  throw e;
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${err?.stack ? err.stack : err}\n`);
    process.exitCode = 3;
  },
);
