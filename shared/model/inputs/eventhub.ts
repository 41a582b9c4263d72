/**
 * Event Hub input: the Log Analytics data-export envelope `{"records": [ <row>, … ]}` and
 * what the Functions Event Hub trigger (cardinality many) hands the handler: an array with
 * one element per event, each the envelope as an object, a JSON string, or bytes
 * (Buffer / Uint8Array), depending on the binding's `dataType`.
 * The export can carry other tables than SecurityAlert: such records are ignored, not
 * rejected (see parse.ts).
 */
import { z } from 'zod';
import { MalformedJsonError, PayloadTooLargeError } from '../../errors';
import { parseJsonText } from '../json';

/** The export envelope: only `records` matters; its rows are validated one by one. */
export const eventHubEnvelopeSchema = z.object({ records: z.array(z.unknown()) });
/** A validated envelope. */
export type EventHubEnvelope = z.output<typeof eventHubEnvelopeSchema>;

/** True when an object is (meant to be) an export envelope. */
export function looksLikeEnvelope(o: Record<string, unknown>): boolean {
  return 'records' in o;
}

/** A decoded event: its JSON value, or why it could not be read. */
export type DecodedEvent =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: string; readonly cause: unknown };

/**
 * Decodes one event as the trigger hands it: a JSON string or bytes are parsed (same
 * size limit and BOM handling as HTTP bodies); anything else is already decoded.
 */
export function decodeEvent(event: unknown, limitBytes?: number): DecodedEvent {
  if (typeof event !== 'string' && !(event instanceof Uint8Array)) return { ok: true, value: event };
  const buf =
    typeof event === 'string' ? event : Buffer.isBuffer(event) ? event : Buffer.from(event.buffer, event.byteOffset, event.byteLength);
  try {
    return { ok: true, value: parseJsonText(buf, limitBytes) };
  } catch (err) {
    if (err instanceof MalformedJsonError || err instanceof PayloadTooLargeError) {
      return {
        ok: false,
        reason: err instanceof MalformedJsonError ? `event is not JSON: ${err.message.replace(/^malformed JSON: /, '')}` : err.message,
        cause: err,
      };
    }
    throw err;
  }
}
