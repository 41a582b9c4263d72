import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, SAMPLES } from '../helpers/cli';

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
});
