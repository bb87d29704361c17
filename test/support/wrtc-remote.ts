// Tests' handle on libwebrtc callers living in a child process (wrtc-host.ts). The child's exit
// status is ignored: @roamhq/wrtc may crash while the process tears down, after its work is done.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CallOptions, CallStats } from './wrtc-client.ts';

const HOST = fileURLToPath(new URL('./wrtc-host.ts', import.meta.url));

export class CallerHost {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  #nextRequest = 1;
  #nextCaller = 1;
  readonly ready: Promise<unknown>;

  /** `launcher`: a command prefix, e.g. `ip netns exec <ns>` to place the callers in a network namespace. */
  constructor(launcher: readonly string[] = []) {
    const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
    this.#child =
      launcher.length === 0
        ? fork(HOST, [], { stdio })
        : spawn(launcher[0]!, [...launcher.slice(1), process.execPath, HOST], { stdio });
    this.ready = new Promise((resolve, reject) => this.#pending.set(0, { resolve, reject }));
    this.#child.on('message', (reply: { id: number; result?: unknown; error?: string }) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.error !== undefined) pending?.reject(new Error(reply.error));
      else pending?.resolve(reply.result);
    });
    this.#child.on('exit', () => {
      for (const pending of this.#pending.values()) pending.reject(new Error('the caller host exited'));
      this.#pending.clear();
    });
  }

  request<T>(caller: number, method: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextRequest++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#child.send({ id, caller, method, args });
    });
  }

  /** A caller that has connected to `whipUrl` and plays `toneHz` (0 = silence). */
  async call(whipUrl: string, options: CallOptions = {}): Promise<RemoteCaller> {
    await this.ready;
    const caller = new RemoteCaller(this, this.#nextCaller++, new URL(whipUrl).origin);
    const { location, setupMs } = await this.request<{ location: string; setupMs: number }>(
      caller.id,
      'call',
      whipUrl,
      options,
    );
    caller.location = location;
    caller.setupMs = setupMs;
    return caller;
  }

  /** A caller that has only made an offer (its SDP is returned). */
  async offer(): Promise<{ caller: RemoteCaller; sdp: string }> {
    await this.ready;
    const caller = new RemoteCaller(this, this.#nextCaller++, '');
    return { caller, sdp: await this.request<string>(caller.id, 'offer') };
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

export class RemoteCaller {
  readonly id: number;
  readonly #host: CallerHost;
  readonly #origin: string;
  location = '';
  setupMs = Number.NaN;

  constructor(host: CallerHost, id: number, origin: string) {
    this.#host = host;
    this.id = id;
    this.#origin = origin;
  }

  get resourceUrl(): string {
    return new URL(this.location, this.#origin).toString();
  }

  waitForEcho(timeoutMs = 5_000, toneHz?: number): Promise<number> {
    return this.#host.request(this.id, 'waitForEcho', timeoutMs, toneHz);
  }
  restartIce(): Promise<{ status: number; etag: string | null }> {
    return this.#host.request(this.id, 'restartIce');
  }
  play(toneHz: number): Promise<void> {
    return this.#host.request(this.id, 'play', toneHz);
  }
  sendMessage(text: string): Promise<void> {
    return this.#host.request(this.id, 'sendMessage', text);
  }
  waitForMessage(text: string, timeoutMs = 3_000): Promise<void> {
    return this.#host.request(this.id, 'waitForMessage', text, timeoutMs);
  }
  stats(): Promise<CallStats> {
    return this.#host.request(this.id, 'stats');
  }
  connectionState(): Promise<string> {
    return this.#host.request(this.id, 'connectionState');
  }
  waitForState(states: string[], timeoutMs: number): Promise<void> {
    return this.#host.request(this.id, 'waitForState', states, timeoutMs);
  }
  level(from: number, to = Date.now()): Promise<{ level: number; bytes: number }> {
    return this.#host.request(this.id, 'level', from, to);
  }
  hangUp(): Promise<number> {
    return this.#host.request(this.id, 'hangUp');
  }
  close(): Promise<void> {
    return this.#host.request(this.id, 'close');
  }
}
