/**
 * The command line as README's exit-code table describes it: a wrong command line is exit 2 (usage) and is told
 * before any work, a bad input file is exit 1 (rejected) naming the file, never exit 3 (the command could not run).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCli, SAMPLES, scratch } from '../helpers/cli';

/** A store of its own for each test, with delivery off. */
function storeEnv(): { SQLITE_FILE: string; OUTBOX_FILE: string } {
  return { SQLITE_FILE: join(scratch(), 'triage.db'), OUTBOX_FILE: '' };
}

describe('triage serve --host', () => {
  it.each(['0.0.0.0', '::', '192.0.2.2', '::127.0.0.1'])(
    'refuses %s (reachable from other machines, and no function keys are checked) as a usage error',
    (host) => {
      // Act (killed after 20 s should it start serving instead of refusing; status is then null)
      const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'triage.js'), 'serve', '--host', host, '--port', '0'], {
        cwd: ROOT,
        env: { ...process.env, LOG_LEVEL: 'warn', ...storeEnv() },
        encoding: 'utf8',
        timeout: 20_000,
        killSignal: 'SIGKILL',
      });

      // Assert
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--host must be a loopback address`);
      expect(r.stderr).toContain(`got "${host}"`);
      expect(r.stderr).not.toContain('listening on');
    },
  );
});

describe('a malformed --eventhub target', () => {
  it('makes send exit 2 (usage), naming the option, before it reads or sends anything', () => {
    // Act
    const r = runCli(['send', join(SAMPLES, 'securityalert-records.json'), '--eventhub', 'nohub']);

    // Assert
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--eventhub is not a usable Event Hub');
    expect(r.stderr).toContain('"nohub"');
    expect(r.stderr).not.toContain('sent ');
  });

  it('makes parked replay exit 2 (usage) before it touches a parked item, which stays listed', () => {
    // Arrange: a parked item that holds a SecurityAlert record (so it would be re-published)
    const env = storeEnv();
    runCli(['replay', '--persist', join(SAMPLES, 'bad', 'bad-entities.json')], env);
    const listed = () => runCli(['parked', 'list'], env).stdout.split('\n').filter(Boolean);
    const before = listed();

    // Act
    const r = runCli(['parked', 'replay', '--eventhub', 'nohub'], env);

    // Assert
    expect(before).toHaveLength(1);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--eventhub is not a usable Event Hub');
    expect(r.stdout).toBe('');
    expect(listed()).toEqual(before);
  });
});

describe('an input file that is not JSON', () => {
  it('makes stream exit 1 naming the file, and still stream the other files', () => {
    // Arrange
    const env = storeEnv();

    // Act
    const r = runCli(['stream', join(SAMPLES, 'bad', 'truncated.json'), join(SAMPLES, 'eventhub-batch.json')], env);

    // Assert
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(SAMPLES, 'bad', 'truncated.json')}: not JSON: `);
    expect(r.stderr).toContain('2 event(s) in 1 batch(es)');
  });

  it('makes send exit 1 naming the file and line, as a refused record', () => {
    // Arrange: an NDJSON file whose second line is cut short
    const file = join(scratch(), 'records.ndjson');
    writeFileSync(file, `${JSON.stringify({ records: [] })}\n{"records": [\n`);

    // Act: nothing valid is left to send, so no connection is made
    const r = runCli(['send', file, '--eventhub', 'contoso-soc/am-securityalert']);

    // Assert
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${file}:2: not JSON: `);
    expect(r.stderr).not.toContain('SyntaxError');
  });
});

describe('triage stream without a file', () => {
  it('is a usage error (exit 2) that opens no store', () => {
    // Arrange
    const env = storeEnv();

    // Act
    const r = runCli(['stream'], env);

    // Assert
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('name at least one file');
    expect(existsSync(env.SQLITE_FILE)).toBe(false);
  });
});

describe('triage parked --tenant', () => {
  it('finds a tenant by its workspace id in any GUID case, as alerts carry it', () => {
    // Arrange: a generic alert of the sample tenant that is refused (and parked under its lower-case id)
    const env = storeEnv();
    const alert = JSON.parse(readFileSync(join(SAMPLES, 'generic-alert.json'), 'utf8')) as Record<string, unknown>;
    const file = join(scratch(), 'bad-severity.json');
    writeFileSync(file, JSON.stringify({ ...alert, severity: 'apocalyptic' }));
    runCli(['replay', '--persist', file], env);

    // Act
    const r = runCli(['parked', 'list', '--tenant', String(alert.tenantId).toUpperCase()], env);

    // Assert
    const items = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { tenantId?: string });
    expect(r.status).toBe(0);
    expect(items).toEqual([expect.objectContaining({ tenantId: String(alert.tenantId).toLowerCase() })]);
  });
});
