import { BoundedMap } from '../../../shared/store/boundedMap';

describe('BoundedMap', () => {
  it('keeps at most max entries, dropping the least recently set', () => {
    const m = new BoundedMap<string, number>(2);

    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3); // a is now the most recent
    m.set('c', 4);

    expect(m.size).toBe(2);
    expect(m.get('b')).toBeUndefined();
    expect(m.get('a')).toBe(3);
    expect(m.get('c')).toBe(4);
    expect(m.has('b')).toBe(false);
    expect([...m.entries()]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
    expect([...m.values()]).toEqual([3, 4]);
  });

  it('forgets a deleted key and refuses a bound below one', () => {
    const m = new BoundedMap<string, number>(1);
    m.set('a', 1);

    m.delete('a');

    expect(m.get('a')).toBeUndefined();
    expect(m.size).toBe(0);
    expect(() => new BoundedMap(0)).toThrow(RangeError);
  });
});
