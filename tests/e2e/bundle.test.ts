import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { registered } from '../../cli/host/functionsCore';
// Registers the source's functions into the jest stand-in (moduleNameMapper), to compare with the bundle's.
import '../../functions/index';
import { ROOT, scratch } from '../helpers/cli';
import { type CosmosTestServer, startCosmosServer } from '../helpers/cosmosServer';

const SCRIPT = join(ROOT, 'scripts', 'bundle.mjs');
const TEN_MB = 10 * 1024 * 1024;

/** What `node scripts/bundle.mjs --json` prints (the fields this test reads). */
interface BundleReport {
  out: string;
  bundleBytes: number;
  folderBytes: number;
  tarGzBytes: number;
  folderWithDependenciesBytes: number;
  dependencies: Record<string, string>;
}

/** One registration as the child saw it. */
interface ChildRegistration {
  name: string;
  bindings: Record<string, { type: string; direction: string }>;
  retryOptions?: Record<string, unknown>;
  handler: string;
}

/** What the child prints. */
interface ChildReport {
  registered: ChildRegistration[];
  sqliteResolvable: boolean;
  loadedPackages: string[];
  health?: { status: number; jsonBody: { status: string; version?: string } };
  /** The child's log lines (JSON, on stderr). */
  logs: Record<string, unknown>[];
}

/**
 * The child: a recording stand-in for @azure/functions-core (written here, independent of the script's own),
 * then require() of the bundle; in `health` mode it also invokes the bundled health handler.
 */
const CHILD = `
const Module = require('node:module');
const CORE = '@azure/functions-core';
const registered = [];
const core = {
  setProgrammingModel() {},
  registerHook() { return { dispose() {} }; },
  registerFunction(m, handler) { registered.push({ name: m.name, bindings: m.bindings, retryOptions: m.retryOptions, handler }); return { dispose() {} }; },
};
const original = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { return request === CORE ? CORE : original.call(this, request, ...rest); };
const mod = new Module(CORE); mod.filename = CORE; mod.loaded = true; mod.exports = core; require.cache[CORE] = mod;
const [entry, mode] = process.argv.slice(1);
let sqliteResolvable = true;
try { require.resolve('better-sqlite3', { paths: [require('node:path').dirname(entry)] }); } catch { sqliteResolvable = false; }
require(entry);
const loadedPackages = [...new Set(Object.keys(require.cache).map((k) => (/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(k) || [])[1]).filter(Boolean))];
const report = { registered: registered.map((r) => ({ ...r, handler: typeof r.handler })), sqliteResolvable, loadedPackages };
(async () => {
  if (mode === 'health') {
    const fn = registered.find((r) => r.name === 'health');
    report.health = await fn.handler({}, { functionName: 'health', invocationId: 'bundle-e2e' });
  }
  process.stdout.write(JSON.stringify(report));
  process.exit(0);
})().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
`;

const scratchDirs: string[] = [];
afterAll(() => {
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
});

/** Builds the bundle into a fresh scratch folder (no node_modules above it, like a deployed app). */
function buildBundle(extra: string[] = []): BundleReport {
  const dir = scratch('bundle-');
  scratchDirs.push(dir);
  const out = join(dir, 'app');
  const r = spawnSync(process.execPath, [SCRIPT, '--out', out, '--runs', '0', '--json', ...extra], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bundle script failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as BundleReport;
}

/** Loads the bundle in a fresh node (Azure settings), without waiting synchronously so an in-process server can answer. */
function loadInChild(entry: string, mode: 'load' | 'health', env: NodeJS.ProcessEnv): Promise<ChildReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD, entry, mode], {
      cwd: join(entry, '..'),
      // A minimal environment: nothing from the developer's shell (NODE_PATH, STORE…) leaks in.
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', STORE: 'cosmos', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const logs = stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      if (code === 0) resolve({ ...(JSON.parse(stdout) as Omit<ChildReport, 'logs'>), logs });
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

describe('production bundle of the Function app (npm run bundle)', () => {
  let report: BundleReport;
  let entry: string;

  beforeAll(() => {
    report = buildBundle();
    entry = join(report.out, 'index.js');
  });

  it('is a deployable folder under 10 MB whose package.json points at the bundle and installs nothing for the Azure path', () => {
    // Arrange / Act: built in beforeAll
    const pkg = JSON.parse(readFileSync(join(report.out, 'package.json'), 'utf8')) as {
      main: string;
      dependencies: Record<string, string>;
    };

    // Assert: the app's files are there, main is the bundle, and the package is within the 10 MB goal
    for (const f of ['index.js', 'index.js.map', 'host.json', join('policies', 'contoso.yaml'), join('indicators', 'soc-global.csv')]) {
      expect(existsSync(join(report.out, f))).toBe(true);
    }
    expect(pkg.main).toBe('index.js');
    expect(pkg.dependencies).toEqual({});
    expect(report.folderWithDependenciesBytes).toBeLessThanOrEqual(TEN_MB);
    expect(report.tarGzBytes).toBeLessThanOrEqual(TEN_MB);
    expect(report.bundleBytes).toBeGreaterThan(0);
  });

  it('registers the six functions with the same triggers and bindings as the unbundled source', async () => {
    // Arrange: the source registrations, recorded by the jest stand-in when this file imported functions/index
    const fromSource = Object.fromEntries(registered.map((f) => [f.name, { bindings: f.bindings, retryOptions: f.retryOptions }]));

    // Act
    const child = await loadInChild(entry, 'load', {});

    // Assert: exactly the six, with their trigger types, and bindings identical to the source's
    const triggers = Object.fromEntries(
      child.registered.map((r) => [r.name, Object.values(r.bindings).find((b) => b.direction === 'in' && /trigger$/i.test(b.type))?.type]),
    );
    expect(triggers).toEqual({
      alertStream: 'eventHubTrigger',
      alertWebhook: 'httpTrigger',
      getCase: 'httpTrigger',
      health: 'httpTrigger',
      incidentWebhook: 'httpTrigger',
      outboxDrain: 'timerTrigger',
    });
    expect(child.registered.every((r) => r.handler === 'function')).toBe(true);
    for (const r of child.registered) {
      expect({ name: r.name, bindings: r.bindings, retryOptions: r.retryOptions }).toEqual({ name: r.name, ...fromSource[r.name] });
    }
  });

  it('packages with a registration check (`npm run bundle`) that expects exactly the functions the source registers', () => {
    // Arrange: what the source registers (recorded when this file imported functions/index)
    const fromSource = Object.fromEntries(
      registered.map((f) => [f.name, Object.values(f.bindings).find((b) => b.direction === 'in' && /trigger$/i.test(b.type))?.type]),
    );

    // Act: the list the packaging script refuses to ship without
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import(${JSON.stringify(SCRIPT)}).then((m) => process.stdout.write(JSON.stringify(m.EXPECTED_FUNCTIONS)))`,
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );

    // Assert
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(fromSource);
  });

  it('loads in Azure (STORE=cosmos) without better-sqlite3 installed and loads no npm package from disk', async () => {
    // Act
    const child = await loadInChild(entry, 'load', {});

    // Assert: the premise holds (better-sqlite3 cannot be resolved from the app folder), registration still works,
    // and every dependency came from inside the bundle
    expect(child.sqliteResolvable).toBe(false);
    expect(child.registered).toHaveLength(6);
    expect(child.loadedPackages).toEqual([]);
  });

  describe('against the local Cosmos stand-in', () => {
    let server: CosmosTestServer;

    beforeAll(async () => {
      server = await startCosmosServer();
    });
    afterAll(async () => {
      await server.close();
    });

    it('answers health 200 from the bundle with STORE=cosmos, reading the copied tenant policy', async () => {
      // Act
      const child = await loadInChild(entry, 'health', {
        COSMOS_ENDPOINT: server.endpoint,
        COSMOS_DATABASE: 'bundle',
        COSMOS_USE_KEY: 'true',
        COSMOS_KEY: server.key,
        COSMOS_CREATE_IF_MISSING: 'true',
        OUTBOX_FILE: '',
        LOG_LEVEL: 'info',
      });

      // Assert: the bundled runtime started (policies/ from the app folder) and the bundled Cosmos adapter answered
      expect(child.health?.status).toBe(200);
      expect(child.health?.jsonBody).toMatchObject({ status: 'ok' });
      expect(child.logs.find((l) => l.event === 'runtime.ready')).toMatchObject({ store: 'cosmos', tenants: 1 });
      expect(child.loadedPackages).toEqual([]);
    });
  });

  it('declares better-sqlite3, at the root package.json version, only when asked --with-sqlite', () => {
    // Arrange
    const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

    // Act
    const withSqlite = buildBundle(['--with-sqlite']);

    // Assert
    expect(withSqlite.dependencies).toEqual({ 'better-sqlite3': rootPkg.dependencies['better-sqlite3'] });
    expect(JSON.parse(readFileSync(join(withSqlite.out, 'package.json'), 'utf8')).dependencies).toEqual(withSqlite.dependencies);
  });
});
