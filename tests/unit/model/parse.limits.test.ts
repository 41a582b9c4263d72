import { MAX_ITEMS_PER_BODY, parseBody } from '../../../shared/model/parse';

const RECEIVED = '2026-11-20T00:00:00.000Z';
const row = { SystemAlertId: 'a', TimeGenerated: 'x' };

describe('item limits per delivery and per event', () => {
  it('refuses only the Event Hub event with too many records, and keeps the other events of the batch', () => {
    const big = { records: new Array(MAX_ITEMS_PER_BODY + 1).fill(row) };
    const small = { records: [row, row] };

    const out = parseBody([small, big, small], 'eventhub-batch', RECEIVED);

    expect(out.map((o) => o.path)).toEqual(['$[0].records[0]', '$[0].records[1]', '$[1]', '$[2].records[0]', '$[2].records[1]']);
    const refused = out[2];
    expect(refused?.status).toBe('rejected');
    expect(refused?.status === 'rejected' && refused.error.issues).toEqual([
      { path: '$[1]', reason: `${MAX_ITEMS_PER_BODY + 1} records exceed the limit of ${MAX_ITEMS_PER_BODY} per event` },
    ]);
    expect(refused?.status === 'rejected' && refused.raw).toBe(big); // the event itself is kept, not the whole batch
  });

  it('refuses an HTTP delivery of more items than the limit as one rejection, whatever their grouping', () => {
    const half = { records: new Array(MAX_ITEMS_PER_BODY / 2 + 1).fill(row) };

    const out = parseBody([half, half], 'alerts', RECEIVED);

    expect(out).toHaveLength(1);
    expect(out[0]?.path).toBe('$');
  });
});

describe('an item nested deeper than the stack', () => {
  it('is refused with its path instead of throwing, so an Event Hub batch is never retried forever for it', () => {
    const depth = 12_000;
    const deep = JSON.parse(`${'{"records":['.repeat(depth)}${']}'.repeat(depth)}`) as unknown;
    const good = { records: [row] };

    const out = parseBody([deep, good], 'eventhub-batch', RECEIVED);

    expect(out.map((o) => [o.path, o.status])).toEqual([
      ['$[0].records[0]', 'rejected'],
      ['$[1].records[0]', 'rejected'], // the bad TimeGenerated of `row`: read, not thrown
    ]);
  });
});
