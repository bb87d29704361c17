// The werift side of a caller of the edge, shared by `npm run call` (caller.ts) and the transceiver
// benchmark's light callers (bench/transceiver/caller.ts): the peer connection with its one audio
// transceiver, the offer with every host candidate in it, RTP out, and the sender's RTCP figures.
// No STUN or TURN: the edge is ICE-lite behind its relay and learns our address from our checks.
// The RTCP figures are werift's private sender members, checked by the guard of
// webrtc/werift-internals.ts before the first use.
import {
  RTCPeerConnection,
  type RTCRtpSender,
  type RTCRtpTransceiver,
  RtpHeader,
  RtpPacket,
  useOPUS,
} from 'werift';
import type { RtpPacketFields } from '../audio/rtp-packetizer.ts';
import { assertWeriftMembers } from '../webrtc/werift-internals.ts';

/**
 * Where the caller's host candidates come from: every IPv4 and IPv6 interface plus both loopbacks
 * (an edge anywhere, or on this machine: `npm start -- --host ::1`; a family the machine lacks
 * yields no candidate), or one UDP socket on 127.0.0.1 (the benchmark: no other interface).
 */
export type CallerNetwork = 'every-interface' | 'loopback';

/** A werift peer connection set up as a caller of the edge. */
export function newCallerPeerConnection(network: CallerNetwork = 'every-interface'): RTCPeerConnection {
  const interfaces =
    network === 'every-interface'
      ? { iceUseIpv4: true, iceUseIpv6: true, iceAdditionalHostAddresses: ['127.0.0.1', '::1'] }
      : {
          iceUseIpv4: false,
          iceUseIpv6: false,
          iceAdditionalHostAddresses: ['127.0.0.1'],
          iceInterfaceAddresses: { udp4: '127.0.0.1', udp6: '::1' },
        };
  return new RTCPeerConnection({
    ...interfaces,
    iceServers: [],
    bundlePolicy: 'max-bundle',
    codecs: { audio: [useOPUS()], video: [] },
  });
}

/** The members of werift's RTCRtpSender the RTCP figures come from (private in werift). */
interface SenderRtcp {
  /** Cumulative loss in the far end's latest receiver report; undefined before the first. */
  remotePacketsLost: number | undefined;
  totalRoundTripTime: number;
  roundTripTimeMeasurements: number;
  handleRtcpPacket(packet: unknown): void;
}

function senderRtcpOf(sender: RTCRtpSender): SenderRtcp {
  assertWeriftMembers(sender, 'RTCRtpSender', {
    remotePacketsLost: 'present',
    totalRoundTripTime: 'number',
    roundTripTimeMeasurements: 'number',
    handleRtcpPacket: 'function',
  });
  return sender as unknown as SenderRtcp;
}

export class CallerPeer {
  readonly pc: RTCPeerConnection;
  readonly #audio: RTCRtpTransceiver;
  readonly #rtcp: SenderRtcp;

  /** `onRtp`: every packet of the stream the edge sends back. */
  constructor(network: CallerNetwork, onRtp: (rtp: RtpPacket) => void) {
    this.pc = newCallerPeerConnection(network);
    this.#audio = this.pc.addTransceiver('audio', { direction: 'sendrecv' });
    this.#audio.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe(onRtp);
    });
    this.#rtcp = senderRtcpOf(this.#audio.sender);
  }

  /** Creates the offer, sets it, and waits until host candidate gathering is complete: the SDP. */
  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const { unSubscribe } = this.pc.iceGatheringStateChange.subscribe((state) => {
          if (state === 'complete') {
            unSubscribe();
            resolve();
          }
        });
      });
    }
    return this.pc.localDescription!.sdp;
  }

  /** Sends one packet; a send that fails (the connection closing) is dropped like a lost packet. */
  send(packet: RtpPacketFields): void {
    const header = new RtpHeader({
      sequenceNumber: packet.sequenceNumber,
      timestamp: packet.timestamp,
      marker: packet.marker,
      payloadType: packet.payloadType,
    });
    this.#audio.sender.sendRtp(new RtpPacket(header, packet.payload)).catch(() => {});
  }

  /** Cumulative loss of our packets in the far end's latest RTCP receiver report (0 before one). */
  get remotePacketsLost(): number {
    const lost = this.#rtcp.remotePacketsLost;
    return typeof lost === 'number' && lost > 0 ? lost : 0;
  }

  /**
   * Calls `listener` with every RTCP round trip (s) as it completes: werift keeps only their sum and
   * count, so each report's sample is the change in both.
   */
  onRoundTrip(listener: (seconds: number) => void): void {
    const rtcp = this.#rtcp;
    const handle = rtcp.handleRtcpPacket.bind(rtcp);
    let total = 0;
    let count = 0;
    rtcp.handleRtcpPacket = (packet: unknown) => {
      handle(packet);
      const measurements = rtcp.roundTripTimeMeasurements;
      if (measurements > count) {
        const sample = (rtcp.totalRoundTripTime - total) / (measurements - count);
        count = measurements;
        total = rtcp.totalRoundTripTime;
        listener(sample);
      }
    };
  }
}
