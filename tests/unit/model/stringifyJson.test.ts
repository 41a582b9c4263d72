import { stringifyJson } from '../../../shared/model/json';

describe('stringifyJson', () => {
  it('gives what JSON.stringify gives for values read from JSON', () => {
    const value = { a: [1, 'two', null, true, { b: undefined, c: 'ü→"' }], d: { e: [] }, f: {} };

    expect(stringifyJson(value)).toBe(JSON.stringify(value));
  });

  it('serialises a value nested deeper than JSON.stringify can, and the text parses back to it', () => {
    const depth = 20000;
    let value: unknown = { leaf: [1, undefined, 'x'] };
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value, i] : { k: value, skip: undefined };
    expect(() => JSON.stringify(value)).toThrow(RangeError);

    const text = stringifyJson(value);

    let back: unknown = JSON.parse(text);
    let levels = 0;
    while (Array.isArray(back) || (typeof back === 'object' && back !== null && 'k' in back)) {
      if (Array.isArray(back) ? back[1] !== depth - 1 - levels : Object.keys(back).join() !== 'k') break; // not what was written
      back = Array.isArray(back) ? back[0] : (back as { k: unknown }).k;
      levels++;
    }
    expect(levels).toBe(depth);
    expect(back).toEqual({ leaf: [1, null, 'x'] });
  });

  it('decodes bytes as UTF-8 text and keeps strings as they are', () => {
    expect(stringifyJson(Buffer.from('{"records": [ tr€'))).toBe('{"records": [ tr€');
    expect(stringifyJson('not json')).toBe('not json');
  });
});
