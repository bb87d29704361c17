// The one place that reaches into werift (docs/transceiver.md). werift binds a UDP socket per peer connection
// and has no mux; with `iceUseIpv4: false, iceUseIpv6: false` it binds nothing, and an ICE
// `Protocol` of ours, registered on the connection, carries the session over the shared tunnel
// socket instead. This relies on two private members of werift's ice `Connection` (`protocols`,
// `ensureProtocol`) and on its credential fields (`localUsername`, `localPassword`, `userHistory`,
// `generation`); `assertWeriftInternals` fails loudly if an upgrade changes any of them, and
// werift-tunnel.test.ts runs it.
import { isIPv6 } from 'node:net';
import {
  type Address,
  Candidate,
  candidateFoundation,
  candidatePriority,
  Event,
  type Message,
  type Protocol,
  parseMessage,
  type RTCPeerConnection,
} from 'werift';
import type { TransportAddress } from '../protocol/address.ts';
import { WeriftInternalsChanged } from '../webrtc/werift-internals.ts';

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
    this.#sender.sendData(this.#owner, data);
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
