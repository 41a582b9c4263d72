import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIndicatorFiles } from '../../../shared/enrichment/indicators';
import { ConfigError } from '../../../shared/errors';
import { SAMPLES, scratch } from '../../helpers/cli';

describe('local indicator lists', () => {
  it('loads the SOC global blacklist CSV keyed by canonical entity key', () => {
    const set = loadIndicatorFiles([join(SAMPLES, 'indicators.csv')]);

    expect(set.size).toBe(5);
    expect(set.lookup('ip:192.0.2.200')).toMatchObject({ source: 'soc-global-blacklist', category: 'botnet-c2', confidence: 90 });
    expect(set.lookup('domain:update-check.example.net')?.category).toBe('phishing');
    expect(set.lookup('filehash:sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08')?.category).toBe('malware');
    expect(set.lookup('ip:10.0.0.1')).toBeUndefined();
  });

  it('reads single-value STIX 2.1 indicators and skips complex patterns', () => {
    const dir = scratch();
    const file = join(dir, 'ti.json');
    writeFileSync(
      file,
      JSON.stringify({
        type: 'bundle',
        objects: [
          { type: 'indicator', pattern: "[ipv4-addr:value = '198.51.100.9']", name: 'scanner', confidence: 60 },
          { type: 'indicator', pattern: "[file:hashes.'SHA-256' = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']" },
          { type: 'indicator', pattern: "[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'x.example']" },
          { type: 'malware', name: 'not an indicator' },
        ],
      }),
    );

    const set = loadIndicatorFiles([file]);

    expect(set.size).toBe(2);
    expect(set.lookup('ip:198.51.100.9')?.category).toBe('scanner');
    expect(set.lookup(`filehash:sha256:${'a'.repeat(64)}`)).toBeDefined();
  });

  it('refuses a row with an invalid value, naming file and line', () => {
    const dir = scratch();
    const file = join(dir, 'bad.csv');
    writeFileSync(file, 'type,value,source\nip,192.0.2.1,x\nip,999.1.1.1,x\n');

    expect(() => loadIndicatorFiles([file])).toThrow(ConfigError);
    expect(() => loadIndicatorFiles([file])).toThrow(/bad\.csv:3: "999\.1\.1\.1"/);
  });

  it('refuses an indicator of type "constructor" instead of reading Object.prototype as a hash length', () => {
    const dir = scratch();
    const file = join(dir, 'proto.csv');
    // Without the own-key check this value matched the RegExp built from `function Object() { [native code] }`.
    writeFileSync(file, 'type,value,source\nconstructor,a{function Object { n }},x\n');

    expect(() => loadIndicatorFiles([file])).toThrow(/proto\.csv:2: "a\{function Object \{ n \}\}" is not a valid constructor indicator/);
  });

  it('fails on a configured file that does not exist', () => {
    expect(() => loadIndicatorFiles(['/nonexistent/ti.csv'])).toThrow(ConfigError);
  });
});
