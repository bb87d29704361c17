// What the operator keeps of a transceiver's GET /status (protocol/transceiver-status.ts): a pod IP
// can be reused by another pod, so an answer is only believed for the transceiver ID it names.
/** The latest answer from one transceiver pod and when it came (Unix ms). */
export interface StatusSample {
  readonly sessions: number;
  readonly capacity: number;
  readonly state: 'active' | 'draining';
  readonly at: number;
}
