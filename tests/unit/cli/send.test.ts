import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordsOf } from '../../../cli/send';
import { SAMPLES } from '../../helpers/cli';

const load = (f: string) => JSON.parse(readFileSync(join(SAMPLES, f), 'utf8')) as unknown;

describe('records to publish to an Event Hub', () => {
  it('takes the same two SecurityAlert records from plain rows and from an Event Hub batch', () => {
    const rows = recordsOf(load('securityalert-records.json'));
    const batch = recordsOf(load('eventhub-batch.json'));

    expect(rows.refused).toEqual([]);
    expect(batch.refused).toEqual([]);
    expect(batch.records.map((r) => r.SystemAlertId)).toEqual(rows.records.map((r) => r.SystemAlertId));
    expect(rows.records).toHaveLength(2);
  });

  it('refuses what is not a SecurityAlert record, naming its path', () => {
    const r = recordsOf([1, { records: ['{"SystemAlertId":"a"}', 'nope'] }, load('generic-alert.json')]);

    expect(r.records.map((x) => x.SystemAlertId)).toEqual(['a']);
    expect(r.refused).toEqual([
      '$[0]: not a SecurityAlert record or export envelope',
      '$[1].records[1]: not JSON',
      '$[2]: not a SecurityAlert record or export envelope',
    ]);
  });
});
