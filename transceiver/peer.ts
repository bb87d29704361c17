// One call's WebRTC endpoint: a werift peer connection, ICE-lite, carried over the tunnel, with the
// server credentials minted by the ufrag codec. It knows nothing of backends or audio codecs beyond
// the widest Opus its answer asks for: it hands out RTP and data-channel messages and takes RTP to
// send.
import {
  type MediaStreamTrack,
  type RTCDataChannel,
  RTCPeerConnection,
  type RTCRtpTransceiver,
  RtpHeader,
  RtpPacket,
  useOPUS,
} from 'werift';
import type { RtpPacketFields } from '../audio/rtp-packetizer.ts';
import type { TransportAddress } from '../protocol/address.ts';
import { rewriteAnswer, setOpusParameters, stripCandidates } from './sdp.ts';
import type { TunnelSessionPort } from './tunnel-router.ts';
import {
  attachTunnel,
  type CallerRtp,
  iceConnectionOf,
  iceGeneration,
  RtpReceiveShortcut,
  RtpSendShortcut,
  type SrtpVerdict,
  sendFatalCloseNotify,
  setIceCredentials,
  TunnelIceProtocol,
  type TunnelSender,
  verifyClientSrtp,
} from './werift-tunnel.ts';

export interface IceCredentials {
  readonly ufrag: string;
  readonly password: string;
}

export interface PeerEvents {
  /** A packet of the caller's audio, decrypted. */
  onRtp(rtp: CallerRtp): void;
  onDataChannelMessage(label: string, data: string | Buffer): void;
  /** DTLS is up: media can flow. */
  onConnected(): void;
  /** werift gave up on the connection (DTLS failure, closed). */
  onFailed(reason: string): void;
  /** A packet arrived on the session's validated path (for silence timeouts). */
  onActivity(): void;
}

export class Peer implements TunnelSessionPort {
  readonly pc: RTCPeerConnection;
  readonly #protocol: TunnelIceProtocol;
  readonly #audio: RTCRtpTransceiver;
  readonly #events: PeerEvents;
  /** What every answer states about Opus (sdp.ts answerOpusParameters). */
  readonly #opusParameters: Readonly<Record<string, string>>;
  readonly #channels = new Map<string, RTCDataChannel>();
  /** The call's audio past werift's RTP layers (werift-tunnel.ts); set once the offer is applied. */
  #callerRtp: RtpReceiveShortcut | undefined;
  #agentRtp: RtpSendShortcut | undefined;
  #closed = false;

  private constructor(
    pc: RTCPeerConnection,
    audio: RTCRtpTransceiver,
    events: PeerEvents,
    opusParameters: Readonly<Record<string, string>>,
    protocol: (owner: Peer) => TunnelIceProtocol,
  ) {
    this.pc = pc;
    this.#opusParameters = opusParameters;
    this.#protocol = protocol(this);
    this.#audio = audio;
    this.#events = events;
    audio.onTrack.subscribe((track: MediaStreamTrack) => {
      // The packets werift itself routes: a stream's first (later ones come by #callerRtp).
      track.onReceiveRtp.subscribe((rtp: RtpPacket) =>
        this.#events.onRtp({
          sequenceNumber: rtp.header.sequenceNumber,
          timestamp: rtp.header.timestamp,
          payload: rtp.payload,
        }),
      );
    });
    pc.onDataChannel.subscribe((channel) => this.#addChannel(channel));
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') this.#events.onConnected();
      else if (state === 'failed' || state === 'closed') this.#events.onFailed(`peer connection ${state}`);
    });
  }

  /**
   * Answers `offer`. Throws on SDP werift rejects. The answer's only candidates are `relays`; it
   * states `opusParameters` on its Opus formats (sdp.ts answerOpusParameters).
   */
  static async answer(
    offer: string,
    relays: readonly TransportAddress[],
    credentials: IceCredentials,
    sender: TunnelSender,
    events: PeerEvents,
    opusParameters: Readonly<Record<string, string>>,
  ): Promise<{ peer: Peer; answer: string }> {
    const pc = new RTCPeerConnection({
      iceLite: true,
      // No socket of werift's own: the tunnel protocol is the only transport.
      iceUseIpv4: false,
      iceUseIpv6: false,
      iceServers: [],
      bundlePolicy: 'max-bundle',
      codecs: { audio: [useOPUS()], video: [] },
    });
    try {
      const audio = pc.addTransceiver('audio', { direction: 'sendrecv' });
      const peer = new Peer(
        pc,
        audio,
        events,
        opusParameters,
        (owner) => new TunnelIceProtocol(sender, owner, relays[0]!, credentials.ufrag),
      );
      const protocol = peer.#protocol;
      await pc.setRemoteDescription({ type: 'offer', sdp: stripCandidates(offer) });
      attachTunnel(pc, protocol);
      const ice = iceConnectionOf(pc);
      peer.#callerRtp = new RtpReceiveShortcut(audio.receiver, ice);
      peer.#agentRtp = new RtpSendShortcut(audio.sender, ice, protocol);
      setIceCredentials(pc, credentials.ufrag, credentials.password, protocol);
      await pc.setLocalDescription(await pc.createAnswer());
      return { peer, answer: peer.#answerSdp(relays) };
    } catch (error) {
      await pc.close().catch(() => {});
      throw error;
    }
  }

  /**
   * Answers a re-offer. If the client restarted ICE (new ufrag), the server takes `next`
   * credentials and its ICE transport is started again: without that werift stops sending.
   */
  async reanswer(
    offer: string,
    relays: readonly TransportAddress[],
    next: () => IceCredentials,
  ): Promise<{ answer: string; restarted: IceCredentials | undefined }> {
    const generation = iceGeneration(this.pc);
    await this.pc.setRemoteDescription({ type: 'offer', sdp: stripCandidates(offer) });
    let restarted: IceCredentials | undefined;
    if (iceGeneration(this.pc) !== generation) {
      restarted = next();
      setIceCredentials(this.pc, restarted.ufrag, restarted.password, this.#protocol);
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    if (restarted !== undefined) {
      const transport = this.pc.iceTransports[0]!;
      if (transport.state === 'new' || transport.state === 'completed') {
        transport
          .start()
          .catch((error: Error) => this.#events.onFailed(`ICE restart failed: ${error.message}`));
      }
    }
    return { answer: this.#answerSdp(relays), restarted };
  }

  /** werift's answer as sent to the client: the relays as candidates, Opus limited to the backend's rate. */
  #answerSdp(relays: readonly TransportAddress[]): string {
    return setOpusParameters(rewriteAnswer(this.pc.localDescription!.sdp, relays), this.#opusParameters);
  }

  // TunnelSessionPort: packets the router verified and routed to this call.
  onStunRequest(stun: Buffer, client: TransportAddress): void {
    if (this.#closed) return;
    this.#protocol.deliverRequest(stun, client);
  }

  /** The caller's audio by the shortcut where it can take it (werift-tunnel.ts), the rest to werift. */
  onData(packet: Buffer): 'srtp_rejected' | undefined {
    if (this.#closed) return undefined;
    const rtp = this.#callerRtp?.take(packet);
    if (rtp === undefined) this.#protocol.deliverData(packet);
    else if (rtp === 'rejected') return 'srtp_rejected';
    else this.#events.onRtp(rtp);
    return undefined;
  }

  /** SRTP from an address the session does not know: the client's, sent after all it accepted? */
  verifyNewPathMedia(packet: Buffer): SrtpVerdict {
    if (this.#closed) return 'no-keys';
    return verifyClientSrtp(this.pc, packet);
  }

  /** Only packets on the validated path count: checks from anywhere else cannot keep a call alive. */
  onPathActivity(): void {
    if (!this.#closed) this.#events.onActivity();
  }

  /** A packet of the agent's audio to the caller: past werift's send chain where it can go so. */
  sendRtp(rtp: RtpPacketFields): void {
    if (this.#closed || this.#agentRtp?.send(rtp)) return;
    const { sequenceNumber, timestamp, marker, payloadType, payload } = rtp;
    const header = new RtpHeader({ sequenceNumber, timestamp, marker, payloadType });
    this.#audio.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
  }

  /**
   * The audio stream's RTP statistics (outbound-rtp, remote-inbound-rtp, inbound-rtp): the
   * sender's and receiver's own, without the transport's and certificates' that a full getStats
   * builds (a parse of the certificate each time, about 1 % of the transceiver's CPU at 150 calls
   * with a report every 5 s).
   */
  rtpStats(): Record<string, unknown>[] {
    const now = performance.timeOrigin + performance.now();
    const { sender, receiver } = this.#audio;
    const stats: unknown[] = [...sender.collectStats(now), ...receiver.collectStats(now)];
    return stats as Record<string, unknown>[];
  }

  /** Sends on the channel named `label` (or the first one); false if there is none open. */
  sendDataChannel(label: string | undefined, data: string | Buffer): boolean {
    const channel = label === undefined ? this.#channels.values().next().value : this.#channels.get(label);
    if (channel === undefined || channel.readyState !== 'open') return false;
    channel.send(data);
    return true;
  }

  #addChannel(channel: RTCDataChannel): void {
    this.#channels.set(channel.label, channel);
    channel.onMessage.subscribe((data) => this.#events.onDataChannelMessage(channel.label, data));
    channel.stateChanged.subscribe((state) => {
      if (state === 'closed') this.#channels.delete(channel.label);
    });
  }

  /** werift's current ICE generation and ufrag (for tests). */
  get iceUfrag(): string {
    return iceConnectionOf(this.pc).localUsername;
  }

  /** The edge ends the call: the client is told at once (sendFatalCloseNotify), then werift closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await sendFatalCloseNotify(this.pc).catch(() => {});
    await this.pc.close().catch(() => {});
  }
}
