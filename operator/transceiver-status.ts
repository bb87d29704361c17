// What a transceiver's GET /status says (docs/transceiver-api.md), checked at the boundary: a pod
// IP can be reused by another pod, so an answer is only believed for the transceiver ID it names.
import { z } from 'zod';

export const TransceiverStatusSchema = z.object({
  transceiverId: z.number().int().min(0),
  clusterId: z.number().int().min(0),
  state: z.enum(['active', 'draining']),
  sessions: z.number().int().min(0),
  capacity: z.number().int().min(0),
});
export type TransceiverStatus = z.infer<typeof TransceiverStatusSchema>;

/** The latest answer from one transceiver pod and when it came (Unix ms). */
export interface StatusSample {
  readonly sessions: number;
  readonly capacity: number;
  readonly state: 'active' | 'draining';
  readonly at: number;
}
