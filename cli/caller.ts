// The command-line caller: one werift RTCPeerConnection (pure TypeScript, so nothing native can
// crash the process at exit) that places a WHIP call, sends a sine tone as Opus every 20 ms,
// decodes what comes back and looks for the tone in it. It measures what a caller can see on its
// own: setup time, RTT (from the RTCP reports on its stream), and loss and jitter of the stream the
// edge sends back.
import { performance } from 'node:perf_hooks';
import type { RTCPeerConnection } from 'werift';
import { OpusFrameDecoder, OpusFrameEncoder } from '../audio/opus-codec.ts';
import { OpusRtpPacketizer } from '../audio/rtp-packetizer.ts';
import { sine } from '../audio/tone.ts';
import { formatHostPort } from '../protocol/host-port.ts';
import { CallerPeer } from './caller-peer.ts';
import { EchoDetector, RtpReceiveStats } from './measure.ts';
import { Pacer } from './pacer.ts';
import { WhipError, whipDelete, whipOffer } from './whip.ts';

/** The caller's figures; `null` where nothing could be measured. This is the JSON line. */
export interface CallFigures {
  url: string;
  connected: boolean;
  /** WHIP POST sent → connected (ICE and DTLS up), ms. */
  setupMs: number | null;
  /** Round trip to the transceiver, from its RTCP receiver reports on our stream (ms). */
  rttMs: number | null;
  /** Interarrival jitter of the stream the edge sends back (RFC 3550), ms. */
  jitterMs: number | null;
  /** Lost / expected packets of that stream, from its sequence numbers. */
  lossRatio: number | null;
  echoDetected: boolean;
  /** First tone packet sent → its echo heard (includes the echo agent's own delay), ms. */
  echoDelayMs: number | null;
  /** Frequency and RMS level (fraction of full scale) of the echo heard. */
  echoFrequencyHz: number | null;
  echoLevel: number | null;
  toneHz: number;
  /** How long the tone was sent, ms. */
  durationMs: number | null;
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  error: string | null;
}

const SAMPLE_RATE = 48_000;
/** -6 dBFS: loud enough to stand far above codec noise, far from clipping. */
const TONE_AMPLITUDE = 0.5;

export interface ToneCallerOptions {
  readonly url: URL;
  readonly toneHz: number;
  readonly token: string | undefined;
  /** Sent as X-Voice-Edge-Region (region-aware signaling). */
  readonly region?: string | undefined;
}

export class ToneCaller {
  readonly #options: ToneCallerOptions;
  readonly #peer: CallerPeer;
  readonly pc: RTCPeerConnection;
  readonly #encoder = new OpusFrameEncoder(SAMPLE_RATE);
  readonly #decoder = new OpusFrameDecoder(SAMPLE_RATE);
  readonly #packetizer = new OpusRtpPacketizer();
  readonly #pacer: Pacer;
  readonly #received = new RtpReceiveStats();
  readonly #echo: EchoDetector;
  #location: URL | undefined;
  #postedAt = Number.NaN;
  #connectedAt = Number.NaN;
  #toneStartedAt = Number.NaN;
  #toneStoppedAt = Number.NaN;
  #sent = 0;
  #sample = 0;
  #rttMs: number | undefined;
  #statsTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Why the call stopped early (connection lost), if it did. */
  #lost: string | undefined;
  #onLost: (() => void) | undefined;

  constructor(options: ToneCallerOptions) {
    this.#options = options;
    this.#echo = new EchoDetector({ toneHz: options.toneHz, sampleRate: SAMPLE_RATE });
    // Host candidates on every interface: the answer's relay candidates may be of either family.
    this.#peer = new CallerPeer('every-interface', (rtp) => {
      const now = performance.now();
      this.#received.onPacket(rtp.header.sequenceNumber, rtp.header.timestamp, now);
      this.#echo.onFrame(this.#decoder.decode(rtp.payload), now);
    });
    this.pc = this.#peer.pc;
    this.pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected' && Number.isNaN(this.#connectedAt)) this.#connectedAt = performance.now();
      if ((state === 'failed' || state === 'closed') && !this.#closed) {
        this.#lost ??= `the connection was lost (${state})`;
        this.#onLost?.();
      }
    });
    this.#pacer = new Pacer(() => this.#sendFrame());
  }

  get connected(): boolean {
    return !Number.isNaN(this.#connectedAt);
  }

  /** The WHIP session resource, once the offer was answered (it names the transceiver). */
  get location(): URL | undefined {
    return this.#location;
  }

  /**
   * Offers, has the offer answered over WHIP, and waits until ICE and DTLS are up. Rejects with a
   * one-line reason (WhipError for the HTTP side) after `timeoutMs` or when `interrupt` fires.
   */
  async connect(timeoutMs: number, interrupt: AbortSignal): Promise<void> {
    const offer = await this.#peer.offer();
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([interrupt, timeout]);
    this.#postedAt = performance.now();
    let session: Awaited<ReturnType<typeof whipOffer>>;
    try {
      session = await whipOffer(
        this.#options.url,
        offer,
        this.#options.token,
        signal,
        this.#options.region === undefined ? {} : { 'x-voice-edge-region': this.#options.region },
      );
    } catch (error) {
      if (interrupt.aborted) throw new Error('interrupted before the call was answered');
      if (timeout.aborted)
        throw new WhipError(
          `the WHIP endpoint ${this.#options.url.href} did not answer within ${timeoutMs} ms`,
        );
      throw error;
    }
    this.#location = session.location;
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: session.answer });
    } catch (error) {
      throw new Error(`the SDP answer could not be applied: ${(error as Error).message}`);
    }
    while (!this.connected) {
      if (interrupt.aborted) throw new Error('interrupted while connecting');
      if (timeout.aborted) {
        throw new Error(
          `no media connection within ${timeoutMs} ms (ICE ${this.pc.iceConnectionState}, ` +
            `connection ${this.pc.connectionState}): is the relay address in the answer ` +
            `(${relayCandidates(session.answer)}) reachable over UDP from here?`,
        );
      }
      if (this.pc.connectionState === 'failed') throw new Error('the media connection failed (ICE or DTLS)');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Sends the tone for `durationMs` (or until `interrupt`, or until the connection is lost). */
  async run(durationMs: number, interrupt: AbortSignal): Promise<void> {
    this.#toneStartedAt = performance.now();
    this.#pacer.start();
    this.#statsTimer = setInterval(() => void this.#readRtt(), 1_000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, durationMs);
      interrupt.addEventListener('abort', done, { once: true });
      this.#onLost = done;
      if (this.#lost !== undefined) done();
      function done() {
        clearTimeout(timer);
        interrupt.removeEventListener('abort', done);
        resolve();
      }
    });
    this.#onLost = undefined;
    this.#pacer.stop();
    this.#toneStoppedAt = performance.now();
    await this.#readRtt();
  }

  #sendFrame(): void {
    const pcm = sine(this.#options.toneHz, SAMPLE_RATE, 20, TONE_AMPLITUDE, this.#sample);
    this.#sample += pcm.length / 2;
    const packet = this.#packetizer.packetize(this.#encoder.encode(pcm));
    this.#sent++;
    this.#peer.send(packet);
  }

  async #readRtt(): Promise<void> {
    if (this.#closed) return;
    const report = await this.pc.getStats().catch(() => undefined);
    for (const stats of (report?.values() ?? []) as Iterable<Record<string, unknown>>) {
      if (stats.type === 'remote-inbound-rtp' && typeof stats.roundTripTime === 'number')
        this.#rttMs = stats.roundTripTime * 1000;
    }
  }

  /** Why the call ended early, if it did. */
  get lostReason(): string | undefined {
    return this.#lost;
  }

  /** Ends the WHIP session (if one was created) and closes the peer connection. */
  async hangUp(timeoutMs = 3_000): Promise<string | undefined> {
    if (this.#closed) return undefined;
    this.#pacer.stop();
    if (this.#statsTimer !== undefined) clearInterval(this.#statsTimer);
    this.#closed = true;
    const problem =
      this.#location === undefined
        ? undefined
        : await whipDelete(this.#location, this.#options.token, timeoutMs);
    await this.pc.close().catch(() => {});
    return problem;
  }

  figures(error: string | undefined): CallFigures {
    const round = (value: number | undefined, digits = 1) =>
      value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits));
    const heard = this.#echo.heard;
    const lossRatio = this.#received.lossRatio;
    return {
      url: this.#options.url.href,
      connected: this.connected,
      setupMs: round(this.#connectedAt - this.#postedAt),
      rttMs: round(this.#rttMs, 2),
      jitterMs: round(this.#received.jitterMs, 2),
      lossRatio: lossRatio === undefined ? null : Number(lossRatio.toFixed(4)),
      echoDetected: heard !== undefined,
      echoDelayMs: round(heard === undefined ? undefined : heard.atMs - this.#toneStartedAt),
      echoFrequencyHz: round(heard?.frequencyHz),
      echoLevel: heard === undefined ? null : Number(heard.level.toFixed(3)),
      toneHz: this.#options.toneHz,
      durationMs: round(this.#toneStoppedAt - this.#toneStartedAt, 0),
      packetsSent: this.#sent,
      packetsReceived: this.#received.received,
      packetsLost: this.#received.lost,
      error: error ?? null,
    };
  }

  /** Why no echo was found, in a few words (the loudest thing heard). */
  describeNoEcho(): string {
    const { level, frequencyHz } = this.#echo.loudest;
    if (this.#received.received === 0) return 'no audio came back (no RTP received)';
    if (level < 0.01) return `only silence came back (${this.#received.received} packets)`;
    return `what came back was not the ${this.#options.toneHz} Hz tone (loudest: ${frequencyHz.toFixed(0)} Hz at RMS ${level.toFixed(3)})`;
  }
}

/** "203.0.113.7:3478" for each host candidate of an SDP. */
function relayCandidates(sdp: string): string {
  const found = [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ/gm)].map((m) =>
    formatHostPort(m[1]!, Number(m[2])),
  );
  return found.length > 0 ? [...new Set(found)].join(', ') : 'none';
}
