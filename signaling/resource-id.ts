// The WHIP session resource names its transceiver, so any signaling replica can route a PATCH or
// DELETE without shared state: `/whip/sessions/<transceiverId>.<sessionId>`, the session ID
// percent-encoded as a path segment (the transceiver chooses its format). A signaling that places
// calls in several clusters (transceiver IDs are unique per cluster only) names the cluster too:
// `/whip/sessions/<clusterId>-<transceiverId>.<sessionId>`.

export interface ResourceId {
  /** undefined in the one-cluster form. */
  readonly clusterId?: number | undefined;
  readonly transceiverId: number;
  readonly sessionId: string;
}

export const SESSION_PATH = '/whip/sessions/';

export function formatResourceId(transceiverId: number, sessionId: string, clusterId?: number): string {
  const owner = clusterId === undefined ? `${transceiverId}` : `${clusterId}-${transceiverId}`;
  return `${owner}.${encodeURIComponent(sessionId)}`;
}

export function sessionLocation(transceiverId: number, sessionId: string, clusterId?: number): string {
  return `${SESSION_PATH}${formatResourceId(transceiverId, sessionId, clusterId)}`;
}

const DECIMAL = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * Reads the `:id` path parameter (already percent-decoded by the router). undefined for anything
 * malformed: no dot, a transceiver ID that is not a canonical decimal uint32, an empty or
 * over-long session ID, control characters.
 */
export function parseResourceId(id: string): ResourceId | undefined {
  const dot = id.indexOf('.');
  if (dot === -1) return undefined;
  const owner = id.slice(0, dot);
  const sessionId = id.slice(dot + 1);
  const dash = owner.indexOf('-');
  const clusterText = dash === -1 ? undefined : owner.slice(0, dash);
  const idText = dash === -1 ? owner : owner.slice(dash + 1);
  if (!DECIMAL.test(idText)) return undefined;
  const transceiverId = Number(idText);
  if (transceiverId > 0xffffffff) return undefined;
  let clusterId: number | undefined;
  if (clusterText !== undefined) {
    if (!DECIMAL.test(clusterText) || Number(clusterText) > 0xffff) return undefined;
    clusterId = Number(clusterText);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (sessionId === '' || sessionId.length > 256 || /[\u0000-\u001f\u007f]/.test(sessionId)) return undefined;
  return clusterId === undefined ? { transceiverId, sessionId } : { clusterId, transceiverId, sessionId };
}
