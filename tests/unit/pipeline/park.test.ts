import { fitParkedBody, PARKED_BODY_MAX_BYTES } from '../../../shared/pipeline/park';

const stored = (s: string) => Buffer.byteLength(JSON.stringify(s));

describe('the body kept for a parked item', () => {
  it('is kept whole when it fits, so it can be replayed', () => {
    const body = JSON.stringify({ records: [{ Description: `"quoted" ${'x'.repeat(900_000)}` }] });

    expect(fitParkedBody(body)).toBe(body);
  });

  it('fits a store item as stored, even when escaping makes each character six bytes', () => {
    const body = '\u0001'.repeat(400_000); // 400 K characters, 2.4 MB once escaped

    const kept = fitParkedBody(body);

    expect(stored(body)).toBeGreaterThan(PARKED_BODY_MAX_BYTES);
    expect(stored(kept)).toBeLessThanOrEqual(PARKED_BODY_MAX_BYTES);
    expect(kept).toMatch(/…\[truncated \d+ chars\]$/);
    expect(body.startsWith(kept.slice(0, kept.indexOf('…')))).toBe(true);
  });

  it('counts replacement characters of bytes that were not UTF-8 at their stored size', () => {
    const body = '\ufffd'.repeat(700_000); // 700 K characters, 2.1 MB as UTF-8

    expect(stored(fitParkedBody(body))).toBeLessThanOrEqual(PARKED_BODY_MAX_BYTES);
  });
});
