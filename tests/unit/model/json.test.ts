import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MalformedJsonError, PayloadTooLargeError } from '../../../shared/errors';
import { parseJsonText, parseNdjson } from '../../../shared/model/json';

const SAMPLES = path.resolve(__dirname, '../../../../shared/samples');

describe('parseJsonText', () => {
  it('refuses the 2 MB sample with PayloadTooLargeError carrying size and limit', () => {
    const body = readFileSync(path.join(SAMPLES, 'bad/oversized.json'));

    const act = () => parseJsonText(body);

    expect(act).toThrow(PayloadTooLargeError);
    try {
      act();
    } catch (err) {
      expect((err as PayloadTooLargeError).size).toBe(body.byteLength);
      expect((err as PayloadTooLargeError).limit).toBe(1_048_576);
    }
  });

  it('checks the limit in UTF-8 bytes, not characters', () => {
    const text = JSON.stringify({ t: 'é'.repeat(600) }); // 600 chars, 1,200 bytes

    expect(() => parseJsonText(text, 1_000)).toThrow(PayloadTooLargeError);
    expect(parseJsonText(text, 2_000)).toEqual({ t: 'é'.repeat(600) });
  });

  it('refuses the truncated sample with MalformedJsonError naming the position', () => {
    const body = readFileSync(path.join(SAMPLES, 'bad/truncated.json'));

    let caught: unknown;
    try {
      parseJsonText(body);
    } catch (err) {
      caught = err;
    }

    expect(caught).toBeInstanceOf(MalformedJsonError);
    expect((caught as MalformedJsonError).message).toMatch(/position \d+|line 1, column \d+/);
    expect((caught as MalformedJsonError).issues[0]?.path).toBe('$');
  });

  it('reports line and column for a multi-line body', () => {
    let caught: unknown;
    try {
      parseJsonText('{\n "a": 1,\n "b" 2}');
    } catch (err) {
      caught = err;
    }

    expect((caught as Error).message).toContain('(line 3, column 6)');
  });

  it('keeps the reason on one line when V8 quotes part of the input', () => {
    expect(() => parseJsonText('{\n  "b": oops\n}')).toThrow(/^malformed JSON: [^\n]+$/);
  });

  it('strips a UTF-8 byte-order mark from bytes and from text', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);

    expect(parseJsonText(bytes)).toEqual({ a: 1 });
    expect(parseJsonText('\uFEFF[1,2]')).toEqual([1, 2]);
  });

  it('refuses bytes that are not UTF-8 and an empty body', () => {
    expect(() => parseJsonText(Buffer.from([0x7b, 0xff, 0x7d]))).toThrow(MalformedJsonError);
    expect(() => parseJsonText('  ')).toThrow(/empty body/);
  });
});

describe('parseNdjson', () => {
  it('parses every line on its own, so one bad line keeps its neighbours', () => {
    const text = '{"a":1}\r\n\n{"b":\n[3]\n';

    const lines = parseNdjson(text);

    expect(lines.map((l) => l.line)).toEqual([1, 3, 4]);
    expect(lines[0]?.value).toEqual({ a: 1 });
    expect(lines[1]?.error).toBeInstanceOf(MalformedJsonError);
    expect(lines[1]?.error?.message).toContain('line 3');
    expect(lines[2]?.value).toEqual([3]);
  });
});
