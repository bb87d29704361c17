// The one place that reaches into werift (docs/transceiver.md). werift binds a UDP socket per peer connection
// and has no mux; with `iceUseIpv4: false, iceUseIpv6: false` it binds nothing, and an ICE
// `Protocol` of ours, registered on the connection, carries the session over the shared tunnel
// socket instead. This relies on two private members of werift's ice `Connection` (`protocols`,
// `ensureProtocol`) and on its credential fields (`localUsername`, `localPassword`, `userHistory`,
// `generation`); `assertWeriftInternals` fails loudly if an upgrade changes any of them, and
// werift-tunnel.test.ts runs it. A candidate new path is verified with the DTLS transport's SRTP
// receive context (`srtp.remoteContext`: `decryptRtp`, `srtpSSRCStates`), checked the same way by
// `assertSrtpInternals`; a call the edge ends is closed with the DTLS socket's `closeNotify(level)`
// (patches/werift+0.25.2+003 and 007). The call's audio bypasses werift's RTP layers both ways once
// werift has set a stream up: `RtpReceiveShortcut` takes the caller's packets before werift's ICE,
// DTLS and RTP layers, `RtpSendShortcut` sends the agent's past them; both keep werift's statistics
// and counters as its own path does, and check those members with `assertWeriftMembers`.
import { isIPv6 } from 'node:net';
import {
  type Address,
  Candidate,
  candidateFoundation,
  candidatePriority,
  Event,
  type Message,
  ntpTime,
  type Protocol,
  parseMessage,
  type RTCPeerConnection,
  RtpHeader,
} from 'werift';
import type { RtpPacketFields } from '../audio/rtp-packetizer.ts';
import type { TransportAddress } from '../protocol/address.ts';
import { rtpSequenceNumber, rtpSsrc } from '../protocol/rtp-header.ts';
import { assertWeriftMembers, WeriftInternalsChanged } from '../webrtc/werift-internals.ts';

/** The members of werift's ice Connection this adapter uses. */
interface WeriftIceConnection {
  localUsername: string;
  localPassword: string;
  userHistory: Record<string, string>;
  generation: number;
  protocols: Protocol[];
  ensureProtocol(protocol: Protocol): void;
}

/** Throws WeriftInternalsChanged unless `connection` has everything this adapter relies on. */
export function assertWeriftInternals(connection: unknown): asserts connection is WeriftIceConnection {
  const c = connection as Partial<WeriftIceConnection> | undefined;
  const problems: string[] = [];
  if (typeof c?.localUsername !== 'string') problems.push('localUsername');
  if (typeof c?.localPassword !== 'string') problems.push('localPassword');
  if (typeof c?.userHistory !== 'object' || c.userHistory === null) problems.push('userHistory');
  if (typeof c?.generation !== 'number') problems.push('generation');
  if (!Array.isArray(c?.protocols)) problems.push('protocols');
  if (typeof c?.ensureProtocol !== 'function') problems.push('ensureProtocol');
  if (problems.length > 0) {
    throw new WeriftInternalsChanged(`werift's ice Connection no longer has: ${problems.join(', ')}`);
  }
}

/** How a session's ICE protocol sends: the tunnel router, which picks the path (tunnel-router.ts). */
export interface TunnelSender {
  /** A STUN reply to the address its request came from. */
  sendStun(owner: object, client: TransportAddress, payload: Buffer): boolean;
  /** DTLS/SRTP/SCTP: to the session's validated path. */
  sendData(owner: object, payload: Buffer): boolean;
}

function toTransportAddress([address, port]: Address): TransportAddress {
  return { family: isIPv6(address) ? 6 : 4, address, port };
}

/** Clients whose transport a session remembers for werift's replies (paths are fewer: session-paths.ts). */
const MAX_REMEMBERED_CLIENTS = 16;

/**
 * A werift ICE Protocol backed by the tunnel. Requests arrive already verified by the router.
 * STUN responses go back to the address the request came from; DTLS/SRTP go wherever the router
 * says (the session's validated path), not to werift's nominated pair, so a session follows the
 * client through NAT rebinding without an ICE restart, and only to addresses that proved they can
 * receive.
 */
export class TunnelIceProtocol implements Protocol {
  readonly type = 'udp';
  readonly onRequestReceived = new Event<[Message, Address, Buffer]>();
  readonly onDataReceived = new Event<[Buffer]>();
  localCandidate: Candidate;
  localIp: string;
  readonly #sender: TunnelSender;
  /** The session the router knows this protocol by. */
  readonly #owner: object;
  /**
   * werift knows a client as (address, port) only: the client as the tunnel named it, TCP included,
   * by `address|port`, so a reply goes back over the transport its request came on.
   */
  readonly #clients = new Map<string, TransportAddress>();

  /** `advertised`: the relay address werift puts in its candidate (the SDP is rewritten anyway). */
  constructor(sender: TunnelSender, owner: object, advertised: TransportAddress, ufrag: string) {
    this.#sender = sender;
    this.#owner = owner;
    this.localIp = advertised.address;
    this.localCandidate = new Candidate(
      candidateFoundation('host', 'udp', advertised.address),
      1,
      'udp',
      candidatePriority('host'),
      advertised.address,
      advertised.port,
      'host',
      undefined,
      undefined,
      undefined,
      0,
      ufrag,
    );
  }

  /** A verified Binding request from `client`. False if werift could not parse it. */
  deliverRequest(stun: Buffer, client: TransportAddress): boolean {
    const message = parseMessage(stun);
    if (message === undefined) return false;
    const key = `${client.address}|${client.port}`;
    this.#clients.delete(key);
    this.#clients.set(key, client);
    if (this.#clients.size > MAX_REMEMBERED_CLIENTS) this.#clients.delete(this.#clients.keys().next().value!);
    this.onRequestReceived.execute(message, [client.address, client.port], stun);
    return true;
  }

  deliverData(packet: Buffer): void {
    this.onDataReceived.execute(packet);
  }

  async sendStun(message: Message, addr: Address): Promise<void> {
    const client = this.#clients.get(`${addr[0]}|${addr[1]}`) ?? toTransportAddress(addr);
    this.#sender.sendStun(this.#owner, client, message.bytes);
  }

  async sendData(data: Buffer): Promise<void> {
    this.sendDataNow(data);
  }

  /** The same, without werift's promise (RtpSendShortcut). */
  sendDataNow(data: Buffer): boolean {
    return this.#sender.sendData(this.#owner, data);
  }

  /** An ICE-lite agent never sends checks. */
  async request(): Promise<[Message, Address]> {
    throw new Error('an ICE-lite agent sends no STUN requests');
  }

  /** The tunnel socket is shared: closing a session's protocol closes nothing. */
  async close(): Promise<void> {}

  async connectionMade(): Promise<void> {}
}

/** The single ICE transport of a max-bundle peer connection, checked against werift's internals. */
export function iceConnectionOf(pc: RTCPeerConnection): WeriftIceConnection {
  const transports = pc.iceTransports;
  if (transports.length !== 1) {
    throw new Error(`expected one bundled ICE transport, werift made ${transports.length}`);
  }
  const connection: unknown = transports[0]!.connection;
  assertWeriftInternals(connection);
  return connection;
}

/** Registers the tunnel protocol on the peer connection's ICE agent (once, before the answer). */
export function attachTunnel(pc: RTCPeerConnection, protocol: TunnelIceProtocol): void {
  const connection = iceConnectionOf(pc);
  connection.protocols.push(protocol);
  connection.ensureProtocol(protocol);
}

/**
 * Sets the server's ICE credentials (ours, from the ufrag codec) in place of werift's random ones.
 * Call after setRemoteDescription and before createAnswer, and again after an ICE restart. Older
 * ufrags stay in userHistory so checks still in flight with them are answered correctly.
 */
export function setIceCredentials(
  pc: RTCPeerConnection,
  ufrag: string,
  password: string,
  protocol: TunnelIceProtocol,
) {
  const connection = iceConnectionOf(pc);
  const weriftUfrag = connection.localUsername;
  if (connection.userHistory[weriftUfrag] === connection.localPassword)
    delete connection.userHistory[weriftUfrag];
  connection.localUsername = ufrag;
  connection.localPassword = password;
  connection.userHistory[ufrag] = password;
  protocol.localCandidate.ufrag = ufrag;
  protocol.localCandidate.generation = connection.generation;
}

/** werift's ICE generation: it increases when a re-offer restarts ICE. */
export function iceGeneration(pc: RTCPeerConnection): number {
  return iceConnectionOf(pc).generation;
}

/** What this adapter uses of werift's SRTP receive context. */
interface WeriftSrtpReceiveContext {
  srtpSSRCStates: Record<number, { lastSequenceNumber: number } | undefined>;
  decryptRtp(packet: Buffer): unknown;
}

/** Throws WeriftInternalsChanged unless `context` has what verifyClientSrtp relies on. */
export function assertSrtpInternals(context: unknown): asserts context is WeriftSrtpReceiveContext {
  const c = context as Partial<WeriftSrtpReceiveContext> | undefined;
  const problems: string[] = [];
  if (typeof c?.srtpSSRCStates !== 'object' || c.srtpSSRCStates === null) problems.push('srtpSSRCStates');
  if (typeof c?.decryptRtp !== 'function') problems.push('decryptRtp');
  if (problems.length > 0)
    throw new WeriftInternalsChanged(`werift's SRTP context no longer has: ${problems.join(', ')}`);
}

/** Why a packet from a candidate new path was not taken as the client's. */
export type SrtpVerdict = 'verified' | 'no-keys' | 'not-rtp' | 'unknown-ssrc' | 'not-newer' | 'bad-auth';

/**
 * Whether `packet` is SRTP the client of `pc` sent after everything accepted so far: an RTP packet of
 * an SSRC the session has received, whose sequence number is ahead of the last one accepted from it
 * (a captured packet replayed from elsewhere is not), and whose authentication tag verifies with the
 * session's key (only the client and the transceiver have it). A verified packet advances the
 * context as receiving it would (the receive path then decrypts it again, with the same result); anything else
 * leaves it untouched: werift commits its rollover state only after a tag verifies.
 */
export function verifyClientSrtp(pc: RTCPeerConnection, packet: Buffer): SrtpVerdict {
  const transport = pc.dtlsTransports[0] as unknown as { srtp?: { remoteContext?: unknown } } | undefined;
  const context = transport?.srtp?.remoteContext;
  if (context === undefined) return 'no-keys';
  assertSrtpInternals(context);
  const ssrc = rtpSsrc(packet);
  if (ssrc === undefined) return 'not-rtp';
  const state = context.srtpSSRCStates[ssrc];
  if (state === undefined) return 'unknown-ssrc';
  const ahead = (rtpSequenceNumber(packet) - state.lastSequenceNumber) & 0xffff;
  if (ahead === 0 || ahead >= 0x8000) return 'not-newer';
  try {
    context.decryptRtp(packet);
  } catch {
    return 'bad-auth';
  }
  return 'verified';
}

/**
 * Tells the client the edge ended its call: DTLS close_notify at the fatal level, before the peer
 * connection closes (whose own close_notify is then not sent again). The level is why: browsers count
 * a DTLS transport closed by a warning-level close_notify as still connected and learn of the end only
 * from ICE (Chromium: on its next check, up to 2.5 s later), while a fatal alert terminates the
 * connection at once (RFC 5246 §7.2; closure alerts have no prescribed level): Chromium reports
 * `failed` within milliseconds (docs/reliability.md).
 */
export async function sendFatalCloseNotify(pc: RTCPeerConnection): Promise<void> {
  const socket = (pc.dtlsTransports[0] as unknown as { dtls?: { closeNotify?: unknown } } | undefined)?.dtls;
  if (socket === undefined) return; // no DTLS yet: nothing to tell
  if (typeof socket.closeNotify !== 'function')
    throw new WeriftInternalsChanged(
      "werift's DTLS socket no longer has closeNotify (patches/werift+0.25.2+003)",
    );
  await (socket as { closeNotify(level: 1 | 2): Promise<void> }).closeNotify(2);
}

/** One RTP packet of the caller's audio, decrypted. */
export interface CallerRtp {
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly payload: Buffer;
}

/**
 * What the shortcut uses of werift's SRTP receive context: decryption that advances its state and
 * returns the packet in the clear with werift's parse of its header, which has checked that the
 * CSRCs, the extension and the padding fit.
 */
interface WeriftSrtpDecrypt {
  decryptRtp(packet: Buffer): [Buffer, WeriftRtpHeader];
}

interface WeriftRtpHeader {
  sequenceNumber: number;
  timestamp: number;
  serializeSize: number;
  payloadOffset: number;
  paddingSize: number;
}

/** The packet werift's per-stream receive statistics read (RTCP receiver reports, getStats). */
interface WeriftStatsPacket {
  header: WeriftRtpHeader;
  payload: Buffer;
}

/** The ICE connection's selected pair, which werift's candidate-pair statistics read. */
interface WeriftSelectedPair {
  nominated?: { packetsReceived: number; bytesReceived: number };
}

interface WeriftRtpReceiver {
  stopped: boolean;
  codecs: Record<number, { name: string } | undefined>;
  trackBySSRC: Record<number, unknown>;
  remoteStreams: Record<number, { add(packet: WeriftStatsPacket): void } | undefined>;
  receiverTWCC: unknown;
  twccEnabled: unknown;
  dtlsTransport:
    | {
        srtpStarted: boolean;
        srtp?: { remoteContext?: unknown };
        bytesReceived: number;
        packetsReceived: number;
      }
    | undefined;
}

/**
 * The caller's RTP without werift's receive chain. werift hands every datagram through its ICE
 * connection, DTLS transport, SRTP session, RTP router, receiver and track, as events and objects
 * made per packet: about 8 % of the transceiver's busy time at 150 calls, nearly as much as Opus
 * decoding (docs/transceiver.md#werift-what-the-adapter-relies-on). Once werift has routed a
 * stream to the call's track (its first packet, which werift still handles), this takes the
 * stream's later packets: it decrypts them with werift's own SRTP context, so replay and rollover
 * state stay werift's, and adds each to werift's statistics for the stream, its transport and its
 * ICE pair, so RTCP receiver reports and getStats read as before. Anything else (RTCP, DTLS,
 * another payload type, a stream werift has not routed yet, a receiver with transport-wide
 * congestion control, which werift answers per packet) goes to werift.
 */
export class RtpReceiveShortcut {
  readonly #receiver: WeriftRtpReceiver;
  readonly #ice: WeriftSelectedPair;
  /** The codec last seen, and whether its packets may be taken: Opus, no per-packet feedback. */
  #codec: unknown;
  #codecTaken = false;

  /** `ice`: the peer's ICE connection (iceConnectionOf), whose selected pair counts what it receives. */
  constructor(receiver: unknown, ice: unknown) {
    assertWeriftMembers(receiver, 'RTCRtpReceiver', {
      stopped: 'present',
      codecs: 'present',
      trackBySSRC: 'present',
      remoteStreams: 'present',
      receiverTWCC: 'present',
      twccEnabled: 'present',
      dtlsTransport: 'present',
    });
    assertWeriftMembers(ice, 'ice Connection', { nominated: 'present' });
    this.#receiver = receiver as WeriftRtpReceiver;
    this.#ice = ice as WeriftSelectedPair;
  }

  /**
   * The caller's packet decrypted; 'rejected' when it was the stream's but did not authenticate, or
   * its header did not fit (werift drops those too; its decryption checks both); undefined when
   * werift should have it.
   */
  take(packet: Buffer): CallerRtp | 'rejected' | undefined {
    const ssrc = rtpSsrc(packet);
    if (ssrc === undefined) return undefined;
    const receiver = this.#receiver;
    const stats = receiver.remoteStreams[ssrc];
    if (stats === undefined || receiver.stopped || receiver.trackBySSRC[ssrc] === undefined) return undefined;
    if (!this.#takes(receiver.codecs[packet[1]! & 0x7f])) return undefined;
    const transport = receiver.dtlsTransport;
    const context = transport?.srtpStarted ? transport.srtp?.remoteContext : undefined;
    if (transport === undefined || context === undefined) return undefined;
    transport.bytesReceived += packet.length;
    transport.packetsReceived++;
    const pair = this.#ice.nominated;
    if (pair !== undefined) {
      pair.packetsReceived++;
      pair.bytesReceived += packet.length;
    }
    let plain: Buffer;
    let header: WeriftRtpHeader;
    try {
      [plain, header] = (context as WeriftSrtpDecrypt).decryptRtp(packet);
    } catch {
      return 'rejected';
    }
    const payload = plain.subarray(header.payloadOffset, plain.length - header.paddingSize);
    stats.add({ header, payload });
    return { sequenceNumber: header.sequenceNumber, timestamp: header.timestamp, payload };
  }

  #takes(codec: { name: string } | undefined): boolean {
    if (codec === undefined) return false;
    if (codec !== this.#codec) {
      this.#codec = codec;
      this.#codecTaken = codec.name.toLowerCase() === 'opus' && !this.#receiver.twccEnabled;
    }
    return this.#codecTaken && this.#receiver.receiverTWCC === undefined;
  }
}

/** What the send shortcut uses of werift's RTCRtpSender: its state, and the counters RTCP reports. */
interface WeriftRtpSender {
  stopped: boolean;
  rtcpRunning: boolean;
  ssrc: number;
  codec: { payloadType: number } | undefined;
  headerExtensions: readonly unknown[] | undefined;
  redRedundantPayloadType: number | undefined;
  pendingRtpEnabled: boolean;
  rtpContinuityPending: boolean;
  seqOffset: number;
  timestampOffset: number;
  sequenceNumber: number | undefined;
  timestamp: number | undefined;
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  octetCount: number;
  headerBytesSent: number;
  packetCount: number;
  dtlsTransport:
    | {
        state: string;
        srtp?: { encrypt(payload: Buffer, header: RtpHeader): Buffer };
        bytesSent: number;
        packetsSent: number;
      }
    | undefined;
}

/** The ICE connection's state and selected pair, which werift's candidate-pair statistics read. */
interface WeriftSendingPair {
  state: string;
  nominated?: { packetsSent: number; bytesSent: number };
}

/**
 * The agent's RTP without werift's send chain: `RTCRtpSender.sendRtp` clones the packet and runs
 * it through four async layers (sender, DTLS transport, ICE connection, protocol), a promise each,
 * and a bandwidth estimator's bookkeeping that only transport-wide congestion control reads. Once
 * werift has sent a stream's first packet (it starts its RTCP sender reports then), this encrypts
 * the later ones with werift's own SRTP send context (its rollover state stays werift's), sends them
 * through the tunnel protocol at once, and updates what werift's sender reports and getStats read:
 * the sender's sequence number, timestamps (RTP and NTP), packet and octet counts, the DTLS
 * transport's and the ICE pair's counters. Whatever werift would change on the way (header
 * extensions, RED, its pending queue, a continuity offset after `replaceRTP`) leaves the packet to
 * werift.
 */
export class RtpSendShortcut {
  readonly #sender: WeriftRtpSender;
  readonly #ice: WeriftSendingPair;
  readonly #protocol: TunnelIceProtocol;

  /** `ice`: the peer's ICE connection (iceConnectionOf); `protocol`: its tunnel protocol. */
  constructor(sender: unknown, ice: unknown, protocol: TunnelIceProtocol) {
    assertWeriftMembers(sender, 'RTCRtpSender', {
      stopped: 'present',
      rtcpRunning: 'present',
      ssrc: 'number',
      codec: 'present',
      headerExtensions: 'present',
      redRedundantPayloadType: 'present',
      pendingRtpEnabled: 'present',
      rtpContinuityPending: 'present',
      seqOffset: 'number',
      timestampOffset: 'number',
      sequenceNumber: 'present',
      timestamp: 'present',
      ntpTimestamp: 'present',
      rtpTimestamp: 'present',
      octetCount: 'number',
      headerBytesSent: 'number',
      packetCount: 'number',
      dtlsTransport: 'present',
    });
    assertWeriftMembers(ice, 'ice Connection', { state: 'string', nominated: 'present' });
    this.#sender = sender as WeriftRtpSender;
    this.#ice = ice as WeriftSendingPair;
    this.#protocol = protocol;
  }

  /** Sends `rtp`; false when werift should (nothing was sent, nothing counted). */
  send(rtp: RtpPacketFields): boolean {
    const sender = this.#sender;
    if (
      !sender.rtcpRunning ||
      sender.stopped ||
      sender.pendingRtpEnabled ||
      sender.rtpContinuityPending ||
      sender.seqOffset !== 0 ||
      sender.timestampOffset !== 0 ||
      (sender.headerExtensions?.length ?? 0) > 0 ||
      sender.redRedundantPayloadType !== undefined
    )
      return false;
    const { codec, dtlsTransport: transport } = sender;
    if (codec === undefined || transport?.state !== 'connected' || transport.srtp === undefined) return false;
    const ice = this.#ice;
    const pair = ice.nominated;
    if (pair === undefined || ice.state === 'closed' || ice.state === 'failed') return false;
    const { sequenceNumber, timestamp, marker, payload } = rtp;
    const header = new RtpHeader({
      ssrc: sender.ssrc,
      payloadType: codec.payloadType,
      sequenceNumber,
      timestamp,
      marker,
    });
    const packet = transport.srtp.encrypt(payload, header);
    sender.sequenceNumber = sequenceNumber;
    sender.timestamp = timestamp;
    sender.ntpTimestamp = ntpTime();
    sender.rtpTimestamp = timestamp;
    sender.octetCount += payload.length;
    sender.headerBytesSent += header.serializeSize;
    sender.packetCount = (sender.packetCount + 1) >>> 0;
    transport.bytesSent += packet.length;
    transport.packetsSent++;
    this.#protocol.sendDataNow(packet);
    pair.packetsSent++;
    pair.bytesSent += packet.length;
    return true;
  }
}
