// The child process that hosts WhipCallers for a test (see wrtc-client.ts for why): it runs the
// commands the parent sends over IPC and answers each with its result or error.
import { rms } from '../../audio/tone.ts';
import { type CallOptions, WhipCaller } from './wrtc-client.ts';

export interface HostRequest {
  readonly id: number;
  readonly caller: number;
  readonly method: string;
  readonly args: unknown[];
}

const callers = new Map<number, WhipCaller>();

function get(id: number): WhipCaller {
  const caller = callers.get(id);
  if (caller === undefined) throw new Error(`no caller ${id}`);
  return caller;
}

const methods: Record<string, (callerId: number, ...args: never[]) => unknown> = {
  async call(callerId, whipUrl: string, options: CallOptions) {
    const caller = await WhipCaller.call(whipUrl, options);
    callers.set(callerId, caller);
    return { location: caller.location, setupMs: caller.setupMs };
  },
  async offer(callerId) {
    const caller = new WhipCaller();
    callers.set(callerId, caller);
    await caller.pc.setLocalDescription(await caller.pc.createOffer());
    return caller.pc.localDescription!.sdp;
  },
  // IPC turns an absent argument into null: the caller's own tone is then the default.
  waitForEcho: (id, timeoutMs: number, toneHz: number | null) =>
    get(id).waitForEcho(timeoutMs, toneHz ?? undefined),
  async restartIce(id) {
    const response = await get(id).restartIce();
    return { status: response.status, etag: response.headers.get('etag') };
  },
  play: (id, toneHz: number) => get(id).play(toneHz),
  sendMessage: (id, text: string) => get(id).sendMessage(text),
  waitForMessage: (id, text: string, timeoutMs: number) =>
    get(id).waitFor(() => get(id).messages.includes(text), timeoutMs, `the message ${text}`),
  connectionState: (id) => get(id).pc.connectionState,
  stats: (id) => get(id).stats(),
  waitForState: (id, states: string[], timeoutMs: number) =>
    get(id).waitFor(
      () => states.includes(get(id).pc.connectionState),
      timeoutMs,
      `state ${states.join('|')}`,
    ),
  /** Level (RMS, 0–1) of what was heard in [from, to). */
  level: (id, from: number, to: number) => {
    const pcm = get(id).heard(from, to);
    return { level: rms(pcm), bytes: pcm.length };
  },
  hangUp: async (id) => {
    const status = await get(id).hangUp();
    callers.delete(id);
    return status;
  },
  close: (id) => {
    callers.get(id)?.close();
    callers.delete(id);
  },
};

process.on('message', (request: HostRequest) => {
  const method = methods[request.method];
  Promise.resolve()
    .then(() => {
      if (method === undefined) throw new Error(`unknown method ${request.method}`);
      return method(request.caller, ...(request.args as never[]));
    })
    .then(
      (result) => process.send!({ id: request.id, result }),
      (error: Error) => process.send!({ id: request.id, error: error.message }),
    );
});
process.on('disconnect', () => {
  for (const caller of callers.values()) caller.close();
  process.exit(0);
});
process.send!({ id: 0, result: 'ready' });
