import { listLimit } from '../../../shared/store/port';

describe('listLimit', () => {
  it('leaves no limit unlimited, rounds a fraction down, and lists nothing for a negative or NaN limit', () => {
    expect(listLimit(undefined)).toBeUndefined();
    expect(listLimit(500)).toBe(500);
    expect(listLimit(2.9)).toBe(2);
    expect(listLimit(-3)).toBe(0);
    expect(listLimit(Number.NaN)).toBe(0);
  });
});
