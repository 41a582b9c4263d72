#!/usr/bin/env node
/**
 * Production bundle of the Function app: `functions/index.ts` → `dist-bundle/` (one minified CJS file for
 * Node 20 with a separate, linked source map, `host.json`, `policies/`, `indicators/` and a `package.json` whose `main` is
 * the bundle), then measures its size and how long `require()` of it takes to register every function.
 *
 *   node scripts/bundle.mjs [--out DIR] [--runs N] [--with-sqlite] [--json]
 *
 * - `--out DIR`     where to write the app (default `dist-bundle`); the zip, when `zip` exists, goes to `DIR.zip`.
 * - `--runs N`      fresh `node` processes per load-time measurement (default 10; 0 skips measuring).
 * - `--with-sqlite` lists better-sqlite3 as a dependency of the deployed app (only needed for `STORE=sqlite`).
 * - `--json`        prints one JSON object instead of the human report.
 *
 * Why these externals: `@azure/functions-core` is injected by the Functions host, so it must never be bundled
 * or installed; `better-sqlite3` is a native addon (a `.node` file found through `bindings`) that esbuild
 * cannot inline. shared/store/factory.ts requires `./sqlite` (hence better-sqlite3) and `./cosmos` lazily,
 * inside their `STORE` branches, so in Azure (`STORE=cosmos`) better-sqlite3 is never loaded and need not be
 * installed. Everything else (@azure/functions, @azure/cosmos, @azure/identity, zod, yaml, luxon, …) is pure
 * JavaScript and bundles.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** Repository root (this file lives in scripts/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Modules left out of the bundle, and whether the deployed app must install them. */
export const EXTERNALS = [
  { name: '@azure/functions-core', install: 'never', why: 'injected by the Azure Functions host at runtime' },
  { name: 'better-sqlite3', install: 'sqlite-only', why: 'native addon; required lazily, only when STORE=sqlite' },
];

/** The functions `functions/index.ts` must register, with their trigger types. */
export const EXPECTED_FUNCTIONS = {
  alertStream: 'eventHubTrigger',
  alertWebhook: 'httpTrigger',
  getCase: 'httpTrigger',
  health: 'httpTrigger',
  incidentWebhook: 'httpTrigger',
  outboxDrain: 'timerTrigger',
};

/** Goals from the issue. */
export const GOALS = { registerMs: 300, packageBytes: 10 * 1024 * 1024 };

/** Folders/files copied next to the bundle so the folder is a deployable Function app (settings default to these cwd-relative paths). */
const ASSETS = ['host.json', 'policies', 'indicators'];

/**
 * Builds the deployable folder and measures its size.
 * @param {{ out?: string, withSqlite?: boolean }} [options]
 */
export async function bundle(options = {}) {
  const out = resolve(ROOT, options.out ?? 'dist-bundle');
  prepareOutDir(out);
  const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'functions', 'index.ts')],
    outfile: join(out, 'index.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    // 'linked': the map is a separate file (not shipped inline in the code) and index.js names it, so
    // `--enable-source-maps` (languageWorkers__node__arguments) maps Azure stack traces back to the .ts sources.
    sourcemap: 'linked',
    // Stack traces need only the mappings; embedding every source would make the map ~4x the bundle.
    sourcesContent: false,
    legalComments: 'linked',
    external: EXTERNALS.map((e) => e.name),
    // ESM-only dependencies (e.g. `open`, reached by @azure/identity's interactive browser credential) read
    // import.meta.url at init; in CJS output esbuild leaves it undefined, so give it the bundle's own URL.
    define: { 'import.meta.url': '__bundleImportMetaUrl' },
    banner: { js: 'var __bundleImportMetaUrl=require("url").pathToFileURL(__filename).href;' },
    metafile: true,
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) {
    // Surface them: a warning here (dynamic require, missing export) usually means a broken path at runtime.
    for (const w of result.warnings) process.stderr.write(`esbuild warning: ${w.text} (${w.location?.file ?? '?'})\n`);
  }

  for (const asset of ASSETS) cpSync(join(ROOT, asset), join(out, asset), { recursive: true });
  const dependencies = {};
  for (const e of EXTERNALS) {
    if (e.install === 'always' || (e.install === 'sqlite-only' && options.withSqlite)) {
      const version = rootPkg.dependencies?.[e.name];
      if (!version) throw new Error(`external ${e.name} is not a dependency in package.json`);
      dependencies[e.name] = version;
    }
  }
  const appPkg = { name: `${rootPkg.name}-functions`, version: rootPkg.version, private: true, main: 'index.js', dependencies };
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(appPkg, null, 2)}\n`);

  const files = listFiles(out);
  const folderBytes = files.reduce((n, f) => n + f.size, 0);
  const tarGzBytes = gzipSync(tar(out, files), { level: 9 }).length;
  const zip = zipFolder(out);
  const externalsOnDisk = Object.fromEntries(EXTERNALS.filter((e) => e.install !== 'never').map((e) => [e.name, installedClosure(e.name)]));
  const installedBytes = Object.keys(dependencies).reduce((n, name) => n + (externalsOnDisk[name]?.bytes ?? 0), 0);
  return {
    out,
    bundleBytes: statSync(join(out, 'index.js')).size,
    mapBytes: statSync(join(out, 'index.js.map')).size,
    folderBytes,
    tarGzBytes,
    zip,
    dependencies,
    externalsOnDisk,
    folderWithDependenciesBytes: folderBytes + installedBytes,
    inputs: packageBreakdown(result.metafile),
  };
}

/** Refuses to wipe anything that is not a previous bundle (or empty), then recreates the folder. */
function prepareOutDir(out) {
  if (out === ROOT || ROOT.startsWith(out + sep) || out === dirname(out)) throw new Error(`refusing to use ${out} as the bundle folder`);
  if (existsSync(out) && readdirSync(out).length > 0 && !existsSync(join(out, 'index.js'))) {
    throw new Error(`${out} exists and does not look like a previous bundle; refusing to delete it`);
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
}

/** Every file under a folder, sorted, with its size. */
function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push({ path: p, rel: relative(dir, p).split(sep).join('/'), size: statSync(p).size });
    }
  };
  walk(dir);
  return out;
}

/** A minimal ustar archive of the files (enough to measure, and `tar xz` extracts it). */
function tar(dir, files) {
  const blocks = [];
  const mtime = Math.floor(Date.now() / 1000)
    .toString(8)
    .padStart(11, '0');
  for (const f of files) {
    if (Buffer.byteLength(f.rel) > 100) throw new Error(`path too long for the minimal tar writer: ${f.rel}`);
    const h = Buffer.alloc(512);
    h.write(f.rel, 0, 'utf8');
    h.write('0000644\0', 100, 'ascii');
    h.write('0000000\0', 108, 'ascii');
    h.write('0000000\0', 116, 'ascii');
    h.write(`${f.size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    h.write(`${mtime}\0`, 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write('0', 156, 'ascii');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    const body = readFileSync(join(dir, f.rel));
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Zips the folder to `<out>.zip` with the `zip` tool when it exists (the Azure zip-deploy artifact). */
function zipFolder(out) {
  const file = `${out}.zip`;
  rmSync(file, { force: true });
  const r = spawnSync('zip', ['-q', '-r', '-X', '-9', file, '.'], { cwd: out, encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return { file, bytes: statSync(file).size };
}

/** Sum of file sizes of a package and its installed dependency closure, as on disk in this repository. */
function installedClosure(name) {
  const seen = new Map();
  const visit = (pkgName, fromDir) => {
    let pkgJson;
    try {
      pkgJson = createRequire(join(fromDir, 'noop.js')).resolve(`${pkgName}/package.json`);
    } catch {
      return; // not installed (an optional dependency for another platform)
    }
    const dir = dirname(pkgJson);
    if (seen.has(dir)) return;
    const pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
    seen.set(dir, { name: pkgName, bytes: listFiles(dir).reduce((n, f) => n + f.size, 0) });
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep, dir);
  };
  visit(name, ROOT);
  const packages = [...seen.values()];
  return { bytes: packages.reduce((n, p) => n + p.bytes, 0), packages: packages.map((p) => p.name) };
}

/** Input bytes per npm package (or `(source)` for the repository's own files), largest first. */
function packageBreakdown(metafile) {
  const by = new Map();
  for (const [file, info] of Object.entries(metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    const key = m?.[1] ?? '(source)';
    by.set(key, (by.get(key) ?? 0) + info.bytes);
  }
  return [...by.entries()].sort((a, b) => b[1] - a[1]).map(([name, bytes]) => ({ name, bytes }));
}

/**
 * The child process: installs a recording stand-in for `@azure/functions-core` (the same trick as
 * cli/host/install.ts, inlined so it needs neither a build nor TypeScript), then times `require(entry)`.
 * It reports the registrations and which npm packages Node actually loaded (external to the bundle).
 */
const CHILD = `
const Module = require('node:module');
const CORE = '@azure/functions-core';
const registered = [];
const core = {
  setProgrammingModel() {},
  registerHook() { return { dispose() {} }; },
  registerFunction(m, handler) {
    const t = Object.values(m.bindings).find((b) => b.direction === 'in' && /trigger$/i.test(b.type));
    registered.push({ name: m.name, trigger: t ? t.type : null, handler: typeof handler });
    return { dispose() {} };
  },
};
const original = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { return request === CORE ? CORE : original.call(this, request, ...rest); };
const mod = new Module(CORE); mod.filename = CORE; mod.loaded = true; mod.exports = core; require.cache[CORE] = mod;
const entry = process.argv[1];
const before = new Set(Object.keys(require.cache));
const t0 = process.hrtime.bigint();
require(entry);
const t1 = process.hrtime.bigint();
const loaded = Object.keys(require.cache).filter((k) => !before.has(k));
const packages = [...new Set(loaded.map((k) => (/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(k) || [])[1]).filter(Boolean))].sort();
process.stdout.write(JSON.stringify({ ms: Number(t1 - t0) / 1e6, registered, modules: loaded.length, packages }));
`;

/**
 * Loads `entry` in `runs` fresh `node` processes (Azure settings: `STORE=cosmos`) and reports the
 * require() time (min/median/max, ms), the registrations of the last run, and the npm packages loaded.
 * @param {string} entry absolute path of the module to require
 * @param {{ runs?: number, cwd?: string, env?: NodeJS.ProcessEnv }} [options]
 */
export function measureLoad(entry, options = {}) {
  const runs = options.runs ?? 10;
  const samples = [];
  let last;
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['-e', CHILD, entry], {
      cwd: options.cwd ?? dirname(entry),
      env: { ...process.env, STORE: 'cosmos', ...options.env },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`loading ${entry} failed (exit ${r.status}): ${r.stderr}`);
    last = JSON.parse(r.stdout);
    samples.push(last.ms);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return {
    runs,
    samples,
    min: sorted[0],
    median,
    max: sorted[sorted.length - 1],
    registered: last?.registered ?? [],
    packages: last?.packages ?? [],
  };
}

/** Throws unless exactly the expected functions registered, with the expected trigger types. */
export function checkRegistrations(registered) {
  const got = Object.fromEntries(registered.map((r) => [r.name, r.trigger]));
  const want = EXPECTED_FUNCTIONS;
  const ok = Object.keys(got).length === Object.keys(want).length && Object.entries(want).every(([name, trigger]) => got[name] === trigger);
  if (!ok) throw new Error(`unexpected registrations: ${JSON.stringify(got)} (want ${JSON.stringify(want)})`);
}

const mb = (n) => `${n} bytes (${(n / 1024 / 1024).toFixed(2)} MiB)`;
const ms = (n) => `${n.toFixed(1)} ms`;

async function main(argv) {
  const arg = (flag) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runs = Number(arg('--runs') ?? 10);
  if (!Number.isInteger(runs) || runs < 0) throw new Error('--runs must be a non-negative integer');
  const r = await bundle({ out: arg('--out') ?? 'dist-bundle', withSqlite: argv.includes('--with-sqlite') });
  const report = { ...r, machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version } };
  if (runs > 0) {
    report.loadBundle = measureLoad(join(r.out, 'index.js'), { runs });
    checkRegistrations(report.loadBundle.registered);
    const unbundled = join(ROOT, 'dist', 'functions', 'index.js');
    if (existsSync(unbundled)) {
      report.loadUnbundled = measureLoad(unbundled, { runs, cwd: ROOT });
      checkRegistrations(report.loadUnbundled.registered);
    }
  }
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const row = (label, value) => `  ${label.padEnd(40)} ${value}`;
  const lines = [
    `bundle: ${relative(ROOT, r.out) || r.out}/`,
    row('index.js', mb(r.bundleBytes)),
    row('index.js.map', mb(r.mapBytes)),
    row('deployable folder (all files)', mb(r.folderBytes)),
    row('folder as tar.gz (zlib -9)', mb(r.tarGzBytes)),
    row('folder as zip', r.zip ? `${mb(r.zip.bytes)} → ${relative(ROOT, r.zip.file) || r.zip.file}` : '(zip not available)'),
    row('dependencies to install', Object.keys(r.dependencies).length ? JSON.stringify(r.dependencies) : '(none)'),
  ];
  for (const [name, c] of Object.entries(r.externalsOnDisk)) {
    lines.push(row(`${name} + its deps, on disk here`, `${mb(c.bytes)} (${c.packages.length} packages)`));
  }
  lines.push(row('folder + installed dependencies', mb(r.folderWithDependenciesBytes)));
  lines.push(row(`goal ≤ ${mb(GOALS.packageBytes)}`, r.folderWithDependenciesBytes <= GOALS.packageBytes ? 'met' : 'NOT met'));
  lines.push(
    `  largest inputs: ${r.inputs
      .slice(0, 8)
      .map((i) => `${i.name} ${(i.bytes / 1024).toFixed(0)} KiB`)
      .join(', ')}`,
  );
  const load = (label, m) => {
    if (!m) return;
    lines.push(
      `${label}: require() → ${m.registered.length} functions registered [${m.registered.map((x) => `${x.name}:${x.trigger}`).join(', ')}]`,
      `  N=${m.runs} min ${ms(m.min)} / median ${ms(m.median)} / max ${ms(m.max)}  (goal ≤ ${GOALS.registerMs} ms: ${m.max <= GOALS.registerMs ? 'met' : 'NOT met'})`,
      `  npm packages loaded by Node: ${m.packages.length ? m.packages.join(', ') : '(none — everything is inside the bundle)'}`,
    );
  };
  load('load time, bundle (STORE=cosmos)', report.loadBundle);
  load('load time, unbundled dist/functions/index.js (STORE=cosmos)', report.loadUnbundled);
  if (runs > 0 && !report.loadUnbundled) lines.push('load time, unbundled: dist/functions/index.js missing (run `npm run build`)');
  lines.push(`machine: nproc ${report.machine.nproc}, ${report.machine.cpu}, node ${report.machine.node}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`bundle failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
