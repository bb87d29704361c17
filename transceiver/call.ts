// One call: the client's peer, the backend's WebSocket and the audio bridge between them, with the
// lifecycle of docs/transceiver.md (connect timeout, media timeout, explicit end, backend end). Everything a
// call holds is released in end(), which runs once whatever ends the call.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { AudioBridge, type AudioBridgeOutput, type BackendFrame } from '../audio/audio-bridge.ts';
import type { OpusEncoderOptions } from '../audio/opus-codec.ts';
import type { TransportAddress } from '../protocol/address.ts';
import type { SampleRate } from '../protocol/backend.ts';
import { BackendConnection, BackendUnavailableError } from './backend-connection.ts';
import { type BackendProtocol, createBackendWire } from './backend-wire.ts';
import type { CallerAudioCounts } from './metrics.ts';
import { type IceCredentials, Peer } from './peer.ts';
import { answerOpusParameters, iceCredentialsOf } from './sdp.ts';
import type { TunnelRouter } from './tunnel-router.ts';

export type CallEndReason =
  | 'client-hangup'
  | 'media-timeout'
  | 'connect-timeout'
  | 'backend-ended'
  | 'backend-closed'
  | 'peer-failed'
  | 'shutdown';

export interface CallQuality {
  readonly rttMs: number | undefined;
  readonly jitterMs: number | undefined;
  readonly lossRatio: number | undefined;
}

export interface CallOptions {
  readonly id: string;
  readonly offer: string;
  readonly relays: readonly TransportAddress[];
  readonly metadata: Record<string, unknown>;
  readonly credentials: IceCredentials;
  readonly router: TunnelRouter;
  readonly backend: {
    url: string;
    protocol: BackendProtocol;
    sampleRate: SampleRate;
    connectTimeoutMs: number;
    /** Twilio's accountSid (twilio-media-streams). */
    accountSid: string;
  };
  readonly timeouts: { connectMs: number; mediaMs: number; qualityMs: number };
  readonly logger: Logger;
  /** Called once when the call has ended and released everything. */
  readonly onEnded: (call: Call, reason: CallEndReason) => void;
  readonly onConnected: (call: Call, setupMs: number) => void;
  readonly onQuality: (call: Call, quality: CallQuality) => void;
  /**
   * When the datagram being handled arrived (performance.now() ms): werift hands RTP on
   * synchronously, so in `onRtp` this is the packet's arrival at the transceiver.
   */
  readonly datagramArrivedAt: () => number;
  /** Time a frame spent inside the edge (ms): client packet → backend, backend audio → client RTP. */
  readonly onLatency: (direction: 'to_backend' | 'to_client', ms: number) => void;
  /** Something the backend sent was dropped (invalid, or beyond the playout queue). */
  readonly onBackendDrop: (reason: 'bad-message' | 'bad-audio' | 'queue-overflow') => void;
  /** The backend's `clear` (barge-in) dropped this much of its queued audio (ms; 0 if none was). */
  readonly onBackendClear: (clearedMs: number) => void;
  /** This much backend audio was dropped to shed a standing delay (audio/audio-bridge.ts). */
  readonly onBackendShed: (shedMs: number) => void;
  /** How the caller's stream is encoded (application, complexity; the rest by application). */
  readonly opusEncoder: OpusEncoderOptions;
  /** Ask the caller for Opus DTX (sdp.ts answerOpusParameters). */
  readonly callerDtx: boolean;
  /** Most backend audio queued for the caller (ms); beyond it the oldest is dropped. */
  readonly maxQueueMs: number;
}

export class Call {
  readonly id: string;
  readonly startedAt = Date.now();
  readonly #options: CallOptions;
  readonly #logger: Logger;
  /** Unset (undefined at run time) only while the offer is being answered. */
  #peer!: Peer;
  #backend!: BackendConnection;
  #bridge!: AudioBridge;
  readonly #ufrags: string[] = [];
  #lastActivity = Date.now();
  #connected = false;
  #ended: CallEndReason | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  /** The audio bridge's own timer (its next wakeAt), and when it fires. */
  #audioTimer: NodeJS.Timeout | undefined;
  #audioTimerAt = Number.POSITIVE_INFINITY;
  /** Queue overflow not yet told to the backend, and when it was last told. */
  #overflowDroppedMs = 0;
  #overflowToldAt = Number.NEGATIVE_INFINITY;

  private constructor(options: CallOptions) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger.child({ call: options.id });
  }

  /**
   * Opens the backend, then answers the offer. Rejects with BackendUnavailableError or werift's
   * negotiation error; nothing is left behind on failure.
   */
  static async start(options: CallOptions): Promise<{ call: Call; answer: string }> {
    const call = new Call(options);
    call.#backend = await BackendConnection.open({
      url: options.backend.url,
      sessionId: options.id,
      wire: createBackendWire({
        protocol: options.backend.protocol,
        sessionId: options.id,
        sampleRate: options.backend.sampleRate,
        metadata: options.metadata,
        accountSid: options.backend.accountSid,
      }),
      connectTimeoutMs: options.backend.connectTimeoutMs,
      logger: call.#logger,
    });
    call.#bridge = new AudioBridge({
      sampleRate: options.backend.sampleRate,
      encoder: options.opusEncoder,
      maxQueueMs: options.maxQueueMs,
    });
    // Before negotiating: a backend may start sending audio as soon as it has `start`.
    call.#wireBackend();
    let answer: string;
    try {
      const answered = await Peer.answer(
        options.offer,
        options.relays,
        options.credentials,
        options.router,
        {
          onRtp: (rtp) => call.#onRtp(rtp.sequenceNumber, rtp.timestamp, rtp.payload),
          onDataChannelMessage: (label, data) => call.#backend.sendDataChannel(label, data),
          onConnected: () => call.#onConnected(),
          onFailed: (reason) => {
            call.#logger.info({ reason }, 'peer failed');
            call.end('peer-failed');
          },
          onActivity: () => {
            call.#lastActivity = Date.now();
          },
        },
        answerOpusParameters(options.backend.sampleRate, options.callerDtx),
      );
      call.#peer = answered.peer;
      answer = answered.answer;
    } catch (error) {
      call.#backend.removeAllListeners();
      await call.#backend.close(1011, 'negotiation failed');
      throw error;
    }
    if (call.#ended !== undefined) {
      await call.#peer.close();
      const message = `the call ended during negotiation (${call.#ended})`;
      throw call.#ended.startsWith('backend') ? new BackendUnavailableError(message) : new Error(message);
    }
    call.#addCredentials(options.credentials);
    call.#setRemoteCredentials(options.offer);
    call.#timers.push(
      setTimeout(() => {
        if (call.#connected) return;
        // Why: no check ever came, no path answered its challenge, or DTLS did not finish.
        call.#logger.warn(
          { paths: options.router.describeSession(call.#peer), ice: call.#peer.pc.iceConnectionState },
          'no media connection within the connect timeout',
        );
        call.end('connect-timeout');
      }, options.timeouts.connectMs),
      setInterval(() => call.#checkSilence(), Math.min(1_000, options.timeouts.mediaMs / 2)),
      setInterval(() => call.#reportQuality(), options.timeouts.qualityMs),
    );
    return { call, answer };
  }

  #negotiated(): Peer | undefined {
    return this.#peer as Peer | undefined;
  }

  #addCredentials(credentials: IceCredentials): void {
    this.#ufrags.push(credentials.ufrag);
    this.#options.router.addCredentials(credentials.ufrag, credentials.password, this.#peer);
  }

  /** The client's ICE credentials key the challenges that validate its paths (tunnel-router.ts). */
  #setRemoteCredentials(offer: string): void {
    const remote = iceCredentialsOf(offer);
    if (remote !== undefined) this.#options.router.setRemoteCredentials(this.#peer, remote);
  }

  #wireBackend(): void {
    const backend = this.#backend;
    backend.on('audio', (pcm) => {
      const now = performance.now();
      const droppedMs = this.#bridge.enqueueBackendAudio(pcm, now);
      if (droppedMs > 0) this.#onQueueOverflow(droppedMs, now);
      this.#serviceAudio(now);
    });
    backend.on('clear', () => {
      const before = this.#bridge.stats.clearedMs;
      for (const name of this.#bridge.clear()) backend.sendMark(name);
      this.#options.onBackendClear(this.#bridge.stats.clearedMs - before);
      this.#serviceAudio(performance.now());
    });
    backend.on('mark', (name) => {
      this.#bridge.mark(name);
      this.#serviceAudio(performance.now());
    });
    backend.on('datachannel', ({ label, data }) => this.#peer.sendDataChannel(label, data));
    backend.on('event', (event) =>
      this.#peer.sendDataChannel(undefined, JSON.stringify({ type: 'event', ...event })),
    );
    backend.on('protocolError', ({ code }) => this.#options.onBackendDrop(code));
    backend.on('end', () => this.end('backend-ended'));
    backend.on('closed', () => this.end('backend-closed'));
  }

  /**
   * The backend sent more than the queue holds (docs/backend-protocol.md#audio): the oldest audio was
   * dropped. Told once a second at most (an `error` where the protocol has one), so a flood does not
   * become a flood back.
   */
  #onQueueOverflow(droppedMs: number, now: number): void {
    if (this.#overflowDroppedMs === 0) this.#options.onBackendDrop('queue-overflow');
    this.#overflowDroppedMs += droppedMs;
    if (now - this.#overflowToldAt < 1_000) return;
    this.#overflowToldAt = now;
    const message = `the playout queue is full: ${Math.round(this.#overflowDroppedMs)} ms of the oldest audio dropped`;
    this.#overflowDroppedMs = 0;
    this.#logger.warn(message);
    this.#backend.sendError('queue-overflow', message);
  }

  #onConnected(): void {
    if (this.#connected || this.#ended) return;
    this.#connected = true;
    this.#lastActivity = Date.now();
    this.#backend.sendEvent('connected');
    this.#options.onConnected(this, Date.now() - this.startedAt);
    this.#serviceAudio(performance.now());
  }

  #checkSilence(): void {
    if (Date.now() - this.#lastActivity > this.#options.timeouts.mediaMs) this.end('media-timeout');
  }

  /** A packet of the caller's audio: decoded and handed to the backend at once. */
  #onRtp(sequenceNumber: number, timestamp: number, payload: Buffer): void {
    if (this.#ended || !this.#connected) return;
    const frames = this.#bridge.onRtp(sequenceNumber, timestamp, payload, this.#options.datagramArrivedAt());
    const now = performance.now();
    this.#sendToBackend(frames, now);
    this.#armAudioTimer(now);
  }

  /** Runs what the audio bridge has due at `now` and sleeps until its next wake. */
  #serviceAudio(now: number): void {
    if (this.#ended || !this.#connected) return;
    this.#deliver(this.#bridge.poll(now), now);
    this.#armAudioTimer(now);
  }

  #deliver(out: AudioBridgeOutput, now: number): void {
    this.#sendToBackend(out.toBackend, now);
    for (const { rtp, arrivedAt } of out.toClient) {
      this.#peer.sendRtp(rtp);
      if (arrivedAt !== undefined) this.#options.onLatency('to_client', performance.now() - arrivedAt);
    }
    for (const name of out.marksReached) this.#backend.sendMark(name);
    if (out.shedMs > 0) this.#options.onBackendShed(out.shedMs);
  }

  #sendToBackend(frames: readonly BackendFrame[], now: number): void {
    for (const { pcm, arrivedAt } of frames) {
      this.#backend.sendAudio(pcm);
      if (arrivedAt !== undefined) this.#options.onLatency('to_backend', now - arrivedAt);
    }
  }

  /** One timer per call, re-armed only when the bridge needs waking earlier than it is set for. */
  #armAudioTimer(now: number): void {
    const at = this.#bridge.wakeAt;
    if (at >= this.#audioTimerAt && this.#audioTimer !== undefined) return;
    if (this.#audioTimer !== undefined) clearTimeout(this.#audioTimer);
    if (!Number.isFinite(at)) {
      this.#audioTimer = undefined;
      this.#audioTimerAt = Number.POSITIVE_INFINITY;
      return;
    }
    this.#audioTimerAt = at;
    this.#audioTimer = setTimeout(
      () => {
        this.#audioTimer = undefined;
        this.#audioTimerAt = Number.POSITIVE_INFINITY;
        this.#serviceAudio(performance.now());
      },
      Math.max(0, Math.ceil(at - now)),
    );
  }

  /** A re-offer (e.g. the client restarted ICE): new credentials if ICE restarted. */
  async reoffer(offer: string, next: () => IceCredentials): Promise<{ answer: string; ufrag: string }> {
    const { answer, restarted } = await this.#peer.reanswer(offer, this.#options.relays, next);
    if (restarted !== undefined) {
      this.#addCredentials(restarted);
      this.#setRemoteCredentials(offer);
      this.#backend.sendEvent('ice-restart');
    }
    return { answer, ufrag: this.#ufrags.at(-1)! };
  }

  get ufrag(): string {
    return this.#ufrags.at(-1)!;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  get queuedMs(): number {
    return this.#bridge.queuedMs;
  }

  /** The caller's packets decoded by Opus bandwidth, and its frames left unsent in DTX. */
  get callerAudio(): CallerAudioCounts {
    const { decodedByBandwidth, dtx } = this.#bridge.stats;
    return { decodedByBandwidth, dtxFrames: dtx };
  }

  #reportQuality(): void {
    if (!this.#connected || this.#ended) return;
    const quality = readQuality(this.#peer.rtpStats());
    this.#backend.sendEvent('quality', quality);
    this.#options.onQuality(this, quality);
  }

  /** Ends the call once: tells the backend, closes the peer, forgets its tunnel state. */
  end(reason: CallEndReason): void {
    if (this.#ended) return;
    this.#ended = reason;
    for (const timer of this.#timers) clearTimeout(timer);
    if (this.#audioTimer !== undefined) clearTimeout(this.#audioTimer);
    this.#backend.removeAllListeners();
    const backendReason =
      reason === 'shutdown' || reason === 'media-timeout' || reason === 'connect-timeout'
        ? reason
        : 'client-hangup';
    void this.#backend.end(backendReason);
    const peer = this.#negotiated();
    if (peer === undefined) return; // still negotiating: start() reports the failure
    // The tunnel state goes once the peer has closed: closing sends DTLS close_notify through it
    // (patches/werift+0.25.2+003), then the client's checks are refused (tunnel-router.ts).
    void peer.close().finally(() => this.#options.router.removeSession(peer, Date.now()));
    this.#logger.info({ reason, durationMs: Date.now() - this.startedAt }, 'call ended');
    this.#options.onEnded(this, reason);
  }
}

/** RTT from the client's receiver reports, jitter and loss of what the client sends (RTCP). */
function readQuality(statsList: readonly Record<string, unknown>[]): CallQuality {
  let rttMs: number | undefined;
  let jitterMs: number | undefined;
  let lossRatio: number | undefined;
  for (const stats of statsList) {
    if (stats.type === 'remote-inbound-rtp' && typeof stats.roundTripTime === 'number')
      rttMs = stats.roundTripTime * 1000;
    if (stats.type === 'inbound-rtp') {
      if (typeof stats.jitter === 'number') jitterMs = stats.jitter * 1000;
      const lost = typeof stats.packetsLost === 'number' ? stats.packetsLost : 0;
      const received = typeof stats.packetsReceived === 'number' ? stats.packetsReceived : 0;
      if (lost + received > 0) lossRatio = Math.max(0, lost) / (Math.max(0, lost) + received);
    }
  }
  return { rttMs, jitterMs, lossRatio };
}
