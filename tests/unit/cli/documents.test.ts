import { documentsOf } from '../../../cli/documents';

describe('documents of a replay file', () => {
  it('reports the real line number after blank lines', () => {
    const text = '{"a":1}\n\n{"b":\n\n{"c":3}\n';

    const docs = documentsOf('alerts.ndjson', text);

    expect(docs).toEqual([
      { label: 'alerts.ndjson:1', text: '{"a":1}' },
      { label: 'alerts.ndjson:3', text: '{"b":' },
      { label: 'alerts.ndjson:5', text: '{"c":3}' },
    ]);
  });

  it('counts CRLF line ends and whitespace-only lines as lines of the file', () => {
    const text = '{"a":1}\r\n   \r\n{"b":2}\r\n';

    const docs = documentsOf('alerts.jsonl', text);

    expect(docs.map((d) => d.label)).toEqual(['alerts.jsonl:1', 'alerts.jsonl:3']);
  });

  it('numbers the lines of NDJSON content in a .json file the same way', () => {
    const text = '\n{"a":1}\n\n{"b":2}';

    const docs = documentsOf('alerts.json', text);

    expect(docs.map((d) => d.label)).toEqual(['alerts.json:2', 'alerts.json:4']);
  });

  it.each([
    ['alerts.json', ''],
    ['alerts.json', '\n  \n'],
    ['alerts.ndjson', ''],
    ['alerts.ndjson', '\n\r\n\t\n'],
    ['alerts.jsonl', ' '],
  ])('gives no documents for the empty file %s (%j), whatever its extension', (file, text) => {
    const docs = documentsOf(file, text);

    expect(docs).toEqual([]);
  });

  it('keeps a whole JSON document as one, labelled with the file name', () => {
    const text = '{\n  "a": 1\n}\n';

    const docs = documentsOf('incident.json', text);

    expect(docs).toEqual([{ label: 'incident.json', text }]);
  });
});
