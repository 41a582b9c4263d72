import { canonicalJson } from '../../../shared/model/inputs/common';

describe('canonicalJson (the form hashed into case fingerprints)', () => {
  it('writes the same text for the same content whatever order its members were added in', () => {
    // Arrange
    const a = { b: 1, a: { d: [1, 'x'], c: true } };
    const b = { a: { c: true, d: [1, 'x'] }, b: 1 };

    // Act
    const texts = [canonicalJson(a), canonicalJson(b), canonicalJson(a)];

    // Assert
    expect(texts).toEqual([
      '{"a":{"c":true,"d":[1,"x"]},"b":1}',
      '{"a":{"c":true,"d":[1,"x"]},"b":1}',
      '{"a":{"c":true,"d":[1,"x"]},"b":1}',
    ]);
  });

  it('skips undefined members of an object laid out like one that has them', () => {
    const full = canonicalJson({ x: 1, y: 2 });
    const partial = canonicalJson({ x: undefined, y: 2 });
    expect([full, partial]).toEqual(['{"x":1,"y":2}', '{"y":2}']);
  });

  it('keeps apart two objects whose member names differ only in where a NUL character falls', () => {
    // Arrange: joined with NUL, both name lists read the same.
    const first = { 'a\u0000b': 1, c: 2 };
    const second = { a: 1, 'b\u0000c': 2 };

    // Act
    const texts = [canonicalJson(first), canonicalJson(second)];

    // Assert
    expect(texts).toEqual(['{"a\\u0000b":1,"c":2}', '{"a":1,"b\\u0000c":2}']);
  });

  it('writes a shared sub-object in full at each place it appears', () => {
    const entities = [{ key: 'host:a', kind: 'host' }];
    expect(canonicalJson({ entities, alerts: [{ entities }] })).toBe(
      '{"alerts":[{"entities":[{"key":"host:a","kind":"host"}]}],"entities":[{"key":"host:a","kind":"host"}]}',
    );
  });
});
