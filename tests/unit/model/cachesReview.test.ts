import { childPath } from '../../../shared/model/inputs/common';

describe('childPath member-name cache', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('does not keep a long member name from the input for the life of the process', () => {
    // A rejected body can put a member name of up to a megabyte on an issue path; a module-lifetime
    // cache of 1024 such names (and their quoted copies) held hundreds of megabytes.
    const longName = `${'x'.repeat(100_000)} odd`;
    const set = jest.spyOn(Map.prototype, 'set');

    const path = childPath('$[0].Entities[0]', longName);

    expect(path).toBe(`$[0].Entities[0][${JSON.stringify(longName)}]`);
    const kept = set.mock.calls.filter(([key]) => typeof key === 'string' && key.length > 1_000);
    expect(kept).toEqual([]);
  });

  it('spells a short member name the same on every call', () => {
    const first = childPath('$', 'Host.Name');

    const again = childPath('$.a', 'Host.Name');

    expect([first, again]).toEqual(['$["Host.Name"]', '$.a["Host.Name"]']);
  });
});
