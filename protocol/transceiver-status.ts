// What a transceiver's GET /status answers (docs/transceiver-api.md). Signaling reads it to place
// calls, the operator to autoscale and to finish drains: one schema at that boundary for both.
import { z } from 'zod';

export const TransceiverStatusSchema = z.object({
  transceiverId: z.number().int().min(0),
  clusterId: z.number().int().min(0),
  state: z.enum(['active', 'draining']),
  sessions: z.number().int().min(0),
  capacity: z.number().int().min(0),
});
export type TransceiverStatus = z.infer<typeof TransceiverStatusSchema>;
