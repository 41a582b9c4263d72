import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, scratch } from '../helpers/cli';

const UPPER = '8B0F5C2E-3F4A-4D6E-9A1B-2C3D4E5F6A7B';
const LOWER = '8b0f5c2e-3f4a-4d6e-9a1b-2c3d4e5f6a7b';

/** Writes policy files into a fresh folder; returns the folder. */
function folder(files: Record<string, string>): string {
  const dir = scratch('policy-check-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('triage policy check across files', () => {
  it('refuses two files with the same tenant id (any GUID case), naming both, as the runtime would', () => {
    const dir = folder({ 'a.yaml': `tenant: { id: ${UPPER}, name: A }\n`, 'b.yml': `tenant: { id: ${LOWER}, name: B }\n` });

    const r = runCli(['policy', 'check', join(dir, 'a.yaml'), join(dir, 'b.yml')]);

    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${join(dir, 'b.yml')}: $.tenant.id (line 1): duplicate tenant id ${LOWER} (also in ${join(dir, 'a.yaml')})`,
    );
    expect(r.stdout).not.toContain('b.yml');
  });

  it('checks a folder as the runtime loads it: its *.yaml and *.yml files, other files ignored', () => {
    const dup = folder({
      'a.yaml': `tenant: { id: ${LOWER}, name: A }\n`,
      'b.yml': `tenant: { id: ${UPPER}, name: B }\n`,
      'notes.txt': 'not a policy',
    });
    const fine = folder({ 'a.yaml': `tenant: { id: ${LOWER}, name: A }\n`, 'b.yml': 'tenant: { id: other, name: B }\n', 'notes.txt': '' });

    const ko = runCli(['policy', 'check', dup]);
    const ok = runCli(['policy', 'check', fine]);

    expect(ko.status).toBe(1);
    expect(ko.stderr).toContain(`${join(dup, 'b.yml')}: $.tenant.id (line 1): duplicate tenant id`);
    expect(ko.stderr).not.toContain('notes.txt');
    expect(ok.status).toBe(0);
    expect(ok.stdout.split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('prints the tenant id canonicalised, as alerts will be matched against it', () => {
    const dir = folder({ 'a.yaml': `tenant: { id: ${UPPER}, name: A }\n` });

    const r = runCli(['policy', 'check', join(dir, 'a.yaml')]);

    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`tenant ${LOWER} (A)`);
  });

  it('refuses an unbounded duration with its JSON path', () => {
    const dir = folder({ 'a.yaml': 'tenant: { id: t8, name: T8 }\nsla: { notifyWithin: P300000Y }\ncorrelation: { window: P300000Y }\n' });

    const r = runCli(['policy', 'check', join(dir, 'a.yaml')]);

    expect(r.status).toBe(1);
    expect(r.stderr).toContain('$.sla.notifyWithin (line 2): must be at most P1D');
    expect(r.stderr).toContain('$.correlation.window (line 3): must be at most P90D');
  });
});

describe('triage policy check: the line of every error', () => {
  it('names the line of an error found once the schema passed (an unknown playbook, scenario or kill-chain phase)', () => {
    const text = [
      `tenant: { id: ${LOWER}, name: A }`,
      'rules:',
      '  K1: { playbook: nope }',
      '  K2:',
      '    playbook: brute-force',
      '    scenario: nah',
      'killChain:',
      '  techniques: { T1059.001: bogus }',
      '',
    ].join('\n');
    const dir = folder({ 'a.yaml': text });

    const r = runCli(['policy', 'check', join(dir, 'a.yaml')]);

    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'a.yaml')}: $.rules["K1"].playbook (line 3): unknown playbook "nope"`);
    expect(r.stderr).toContain(`${join(dir, 'a.yaml')}: $.rules["K2"].scenario (line 6): unknown scenario "nah"`);
    expect(r.stderr).toContain(`${join(dir, 'a.yaml')}: $.killChain.techniques["T1059.001"] (line 8): "bogus" is not a kill-chain phase`);
  });

  it('names the line of the parent of a missing member', () => {
    const dir = folder({ 'a.yaml': `# tenant A\n\ntenant:\n  id: ${LOWER}\n` });

    const r = runCli(['policy', 'check', join(dir, 'a.yaml')]);

    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'a.yaml')}: $.tenant.name (line 3): `);
  });

  it('names the line of the tenant id a second file repeats', () => {
    const dir = folder({ 'a.yaml': `tenant: { id: ${LOWER}, name: A }\n`, 'b.yaml': `# B\ntenant:\n  name: B\n  id: ${UPPER}\n` });

    const r = runCli(['policy', 'check', dir]);

    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'b.yaml')}: $.tenant.id (line 4): duplicate tenant id ${LOWER}`);
  });
});
