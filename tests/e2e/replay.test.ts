import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, runCli, SAMPLES, scratch } from '../helpers/cli';

describe('triage replay', () => {
  it('prints one TriageResult line per distinct case of the samples (rows and Event Hub batch dedupe)', () => {
    const files = readdirSync(SAMPLES)
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(SAMPLES, f));

    const r = runCli(['replay', ...files]);

    const lines = r.stdout.split('\n').filter(Boolean);
    const ids = lines.map((l) => (JSON.parse(l) as { caseId: string }).caseId);
    expect(r.status).toBe(0);
    expect(ids.sort()).toEqual(
      [
        '1b7e0c54-3a9d-4f21-8d6e-5c4b3a291807',
        '4c2a9e81-6d3f-4b7a-9e1c-0f5d2b8a7c36',
        '6a3c1f0e-2b4d-4e8f-9a0b-1c2d3e4f5a6b',
        'fortigate-01:fgt-2026-11-20-000981',
      ].sort(),
    );
  });

  it.each([
    ['oversized.json', /PayloadTooLarge|exceeds the limit/],
    ['truncated.json', /\$: .*(JSON|Unexpected|end)/i],
    ['wrong-shapes.json', /\$\[3\]\.records/],
    ['bad-entities.json', /999\.1\.1\.1|\$ref|42/],
  ])('refuses bad/%s naming the path, exit code 1', (file, pattern) => {
    const r = runCli(['replay', join(SAMPLES, 'bad', file)]);

    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(pattern);
  });

  it('keeps valid neighbours of a bad item', () => {
    const r = runCli(['replay', join(SAMPLES, 'bad', 'wrong-shapes.json'), join(SAMPLES, 'generic-alert.json')]);

    expect(r.status).toBe(1);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('lists an item that still fails after `parked replay` once, under its latest reason, not twice', () => {
    const dir = scratch();
    const env = { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: '' };
    runCli(['replay', '--persist', join(SAMPLES, 'bad', 'wrong-shapes.json')], env);
    const listed = () => runCli(['parked', 'list'], env).stdout.split('\n').filter(Boolean);
    const before = listed();

    const again = runCli(['parked', 'replay'], env);

    expect(before.length).toBeGreaterThan(0);
    expect(again.status).toBe(1);
    const lines = again.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { replayed: boolean; parkedAs?: string[] });
    expect(lines.every((l) => !l.replayed && (l.parkedAs?.length ?? 0) > 0)).toBe(true);
    expect(listed()).toHaveLength(before.length);
  });

  it('reports the real line number after blank lines, on stderr and in the parked item source', () => {
    const dir = scratch();
    const file = join(dir, 'alerts.ndjson');
    const generic = JSON.parse(readFileSync(join(SAMPLES, 'generic-alert.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(
      file,
      [JSON.stringify(generic), '', '{"source": "x",', '', JSON.stringify({ ...generic, id: 'other', severity: 'apocalyptic' })].join('\n'),
    );
    const env = { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: '' };

    const r = runCli(['replay', '--persist', file], env);
    const parked = runCli(['parked', 'list'], env);

    expect(r.status).toBe(1);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`${file}:3: rejected: `));
    expect(r.stderr).toMatch(new RegExp(`${file}:5: rejected: .*severity`));
    expect(r.stderr).not.toMatch(new RegExp(`${file}:2:`));
    const sources = parked.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { source: string }).source);
    expect(sources.sort()).toEqual([`replay:${file}:3`, `replay:${file}:5`]);
  });

  it('exits 2 (usage) for a missing file and a directory, says why, and still triages the other files', () => {
    const dir = scratch();
    const missing = join(dir, 'no-such.json');

    const r = runCli(['replay', missing, dir, join(SAMPLES, 'generic-alert.json')]);

    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${missing}: cannot read: ENOENT`);
    expect(r.stderr).toContain(`${dir}: cannot read: EISDIR`);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it.each([
    ['empty.json', ''],
    ['empty.ndjson', ''],
    ['blank.ndjson', '\n\n  \n'],
    ['blank.jsonl', '\r\n'],
  ])('rejects the empty file %s as "<file>: empty", exit code 1, and still triages the other files', (name, text) => {
    const file = join(scratch(), name);
    writeFileSync(file, text);

    const r = runCli(['replay', file, join(SAMPLES, 'generic-alert.json')]);

    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')).toContain(`${file}: empty`);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  });
});

describe('triage parked list --limit', () => {
  it.each(['abc', '-1', '0', '1.5', ''])('refuses --limit=%j as a usage error naming the option and the value', (limit) => {
    const r = runCli(['parked', 'list', `--limit=${limit}`], { SQLITE_FILE: join(scratch(), 'triage.db') });

    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--limit must be an integer of at least 1, got "${limit}"`);
    expect(r.stderr).not.toContain('SqliteError');
  });

  it.each([
    [['--limit', '-1'], '--limit'],
    [['--limt', '5'], '--limt'],
  ])('refuses %j (as parseArgs reads it) as a usage error naming the option', (args, option) => {
    const r = runCli(['parked', 'list', ...args], { SQLITE_FILE: join(scratch(), 'triage.db') });

    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`'${option}'`);
  });

  it('lists at most --limit items', () => {
    const dir = scratch();
    const env = { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: '' };
    runCli(['replay', '--persist', join(SAMPLES, 'bad', 'wrong-shapes.json')], env);

    const r = runCli(['parked', 'list', '--limit', '1'], env);

    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  });
});

describe('triage stream --batch', () => {
  it('refuses a --batch that is not a positive integer as a usage error', () => {
    const r = runCli(['stream', join(SAMPLES, 'eventhub-batch.json'), '--batch', 'ten'], { SQLITE_FILE: join(scratch(), 'triage.db') });

    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--batch must be an integer of at least 1, got "ten"');
  });

  it('reports an empty file as "<file>: empty" with exit code 1, like replay', () => {
    const dir = scratch();
    const file = join(dir, 'events.json');
    writeFileSync(file, '\n');

    const r = runCli(['stream', file, join(SAMPLES, 'eventhub-batch.json')], { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: '' });

    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')).toContain(`${file}: empty`);
    expect(r.stderr).toContain('2 event(s) in 1 batch(es)');
  });
});

describe('an input file that stream or send cannot read', () => {
  it('makes stream exit 2 (usage), naming every such file, and stream nothing into the store', () => {
    const dir = scratch();
    const missing = join(dir, 'no-such.json');
    const env = { SQLITE_FILE: join(dir, 'triage.db'), OUTBOX_FILE: '' };

    const r = runCli(['stream', join(SAMPLES, 'eventhub-batch.json'), missing, dir], env);

    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${missing}: cannot read: ENOENT`);
    expect(r.stderr).toContain(`${dir}: cannot read: EISDIR`);
    expect(r.stderr).not.toContain('event(s) in');
    expect(existsSync(env.SQLITE_FILE)).toBe(false); // the store was never opened
  });

  it('makes send exit 2 (usage), naming the file, before it connects to the Event Hub', () => {
    const missing = join(scratch(), 'no-such.json');

    const r = runCli(['send', join(SAMPLES, 'securityalert-records.json'), missing, '--eventhub', 'ns.invalid/hub']);

    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${missing}: cannot read: ENOENT`);
    expect(r.stderr).not.toContain('sent ');
  });
});

describe('triage replay of a multi-step attack (brute force → C2 → lateral movement on vpn01)', () => {
  it('escalates the third case one level, lists the other two, and explains every severity change', () => {
    const r = runCli(['replay', join(ROOT, 'examples', 'attack-chain.ndjson')]);

    const results = r.stdout
      .split('\n')
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            caseId: string;
            playbook: string;
            severity: string;
            threatLevel: string;
            killChain: { stage: string; multiStage: boolean; relatedCaseIds: string[]; phases: string[] };
            reasons: { rule: string; effect: string; from?: string; to: string; detail: string }[];
          },
      );
    expect(r.status).toBe(0);
    expect(results.map((x) => x.playbook)).toEqual(['brute-force', 'suspicious-communication', 'lateral-movement']);
    const third = results[2]!;
    expect(third.killChain).toMatchObject({
      stage: 'lateral-movement',
      multiStage: true,
      phases: ['exploitation', 'command-and-control', 'lateral-movement'],
    });
    expect(third.killChain.relatedCaseIds).toEqual([results[0]!.caseId, results[1]!.caseId]);
    expect(third.severity).toBe('high');
    expect(third.reasons).toEqual([
      expect.objectContaining({ rule: 'playbook:lateral-movement', to: 'medium' }),
      expect.objectContaining({
        rule: 'kill-chain',
        effect: 'raise',
        from: 'medium',
        to: 'high',
        detail: expect.stringContaining('host:vpn01.corp.contoso.example'),
      }),
    ]);
    expect(results.every((x) => typeof x.threatLevel === 'string')).toBe(true);
  });
});

describe('triage policy check', () => {
  it('accepts the shipped tenant policy and names every error of a broken one with its path', () => {
    const dir = scratch();
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'tenant:\n  id: x\n  name: y\n  timezone: Mars/Olympus\nrules:\n  K1-1: { playbook: no-such-playbook }\n');

    const ok = runCli(['policy', 'check', join(ROOT, 'policies', 'contoso.yaml')]);
    const ko = runCli(['policy', 'check', bad]);

    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('ok ');
    expect(ko.status).toBe(1);
    expect(ko.stderr).toMatch(/\$\.tenant\.timezone \(line 4\)/);
  });

  it('refuses a rule naming an unknown playbook', () => {
    const dir = scratch();
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'tenant:\n  id: x\n  name: y\nrules:\n  K1-1: { playbook: no-such-playbook }\n');

    const ko = runCli(['policy', 'check', bad]);

    expect(ko.status).toBe(1);
    expect(ko.stderr).toContain('unknown playbook "no-such-playbook"');
  });
});
