import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The terminal WebSocket protocol. Browser -> server: text frames holding one JSON message.
 * Server -> browser: binary frames are terminal output bytes; text frames are JSON control
 * messages. Anything else from the browser is a bad frame and closes the socket.
 */
export const ClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('input'), data: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  Type.Object(
    { type: Type.Literal('resize'), cols: Type.Integer({ minimum: 2, maximum: 500 }), rows: Type.Integer({ minimum: 1, maximum: 200 }) },
    { additionalProperties: false },
  ),
]);
export type ClientMessage = Static<typeof ClientMessage>;

export type ServerMessage =
  { type: 'ready'; session: string; resumed: boolean; device: string } | { type: 'idle_warning'; seconds_left: number } | { type: 'exit'; exit_code: number };

/**
 * Close codes. 1003/1007/1009 are the standard ones for bad frames; 4xxx are ours and tell the
 * page whether to reconnect (only after 1006-like drops and 4001) or to show a message.
 */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  replaced: 4001,
  shellExited: 4002,
  accessEnded: 4401,
  idle: 4408,
  tooManyTerminals: 4429,
  labGone: 4410,
} as const;

export type ParsedFrame = { ok: true; message: ClientMessage } | { ok: false; code: number; reason: string };

export function parseClientFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ParsedFrame {
  if (isBinary) return { ok: false, code: CLOSE.unsupportedData, reason: 'binary frames are not accepted; send JSON text' };
  const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: CLOSE.invalidPayload, reason: 'frame is not JSON' };
  }
  if (!Value.Check(ClientMessage, value)) return { ok: false, code: CLOSE.invalidPayload, reason: 'frame is not a terminal message (input or resize)' };
  return { ok: true, message: value };
}
