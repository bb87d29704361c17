// The WHIP session resource names its transceiver, so any signaling replica can route a PATCH or
// DELETE without shared state: `/whip/sessions/<transceiverId>.<sessionId>`, the session ID
// percent-encoded as a path segment (the transceiver chooses its format).

export interface ResourceId {
  readonly transceiverId: number;
  readonly sessionId: string;
}

export const SESSION_PATH = '/whip/sessions/';

export function formatResourceId(transceiverId: number, sessionId: string): string {
  return `${transceiverId}.${encodeURIComponent(sessionId)}`;
}

export function sessionLocation(transceiverId: number, sessionId: string): string {
  return `${SESSION_PATH}${formatResourceId(transceiverId, sessionId)}`;
}

/**
 * Reads the `:id` path parameter (already percent-decoded by the router). undefined for anything
 * malformed: no dot, a transceiver ID that is not a canonical decimal uint32, an empty or
 * over-long session ID, control characters.
 */
export function parseResourceId(id: string): ResourceId | undefined {
  const dot = id.indexOf('.');
  if (dot === -1) return undefined;
  const idText = id.slice(0, dot);
  const sessionId = id.slice(dot + 1);
  if (!/^(?:0|[1-9][0-9]{0,9})$/.test(idText)) return undefined;
  const transceiverId = Number(idText);
  if (transceiverId > 0xffffffff) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (sessionId === '' || sessionId.length > 256 || /[\u0000-\u001f\u007f]/.test(sessionId)) return undefined;
  return { transceiverId, sessionId };
}
