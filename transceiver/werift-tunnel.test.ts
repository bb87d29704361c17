// Fails loudly if a werift upgrade changes the internals the tunnel adapter relies on; and the
// adapter's own bookkeeping.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  type Address,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  parseMessage,
  RTCPeerConnection,
  RtpHeader,
  RtpPacket,
  SrtpSession,
  useOPUS,
} from 'werift';
import type { TransportAddress } from '../protocol/address.ts';
import { encodeStun, StunAttr, StunType } from '../protocol/stun.ts';
import { WeriftInternalsChanged } from '../webrtc/werift-internals.ts';
import {
  assertWeriftInternals,
  attachTunnel,
  iceConnectionOf,
  RtpReceiveShortcut,
  RtpSendShortcut,
  TunnelIceProtocol,
  verifyClientSrtp,
} from './werift-tunnel.ts';

test("werift's ice Connection still has the members the tunnel adapter uses", async () => {
  const offerer = new RTCPeerConnection({
    iceUseIpv4: false,
    iceUseIpv6: false,
    codecs: { audio: [useOPUS()], video: [] },
  });
  offerer.addTransceiver('audio', { direction: 'sendrecv' });
  const offer = await offerer.createOffer();
  const answerer = new RTCPeerConnection({
    iceLite: true,
    iceUseIpv4: false,
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
  });
  try {
    await answerer.setRemoteDescription(offer);
    const connection = iceConnectionOf(answerer);
    assert.equal(typeof connection.localUsername, 'string');
    assert.ok(Array.isArray(connection.protocols));
    assert.equal(connection.protocols.length, 0, 'with both IP families off werift opens no socket');
  } finally {
    await answerer.close();
    await offerer.close();
  }
});

test('a connection without them is refused with the missing names', () => {
  assert.throws(
    () => assertWeriftInternals({ localUsername: 'x', localPassword: 'y' }),
    (error: Error) => {
      assert.ok(error instanceof WeriftInternalsChanged);
      assert.match(error.message, /userHistory, generation, protocols, ensureProtocol/);
      return true;
    },
  );
});

test('werift’s reply to a check goes back over the transport the check came on (ICE-TCP)', async () => {
  const sent: TransportAddress[] = [];
  const sender = {
    sendStun: (_owner: object, client: TransportAddress) => {
      sent.push(client);
      return true;
    },
    sendData: () => true,
  };
  const protocol = new TunnelIceProtocol(sender, {}, { family: 4, address: '203.0.113.1', port: 3478 }, 'u');
  const requests: Address[] = [];
  protocol.onRequestReceived.subscribe((_message, from) => {
    requests.push(from);
  });
  const request = encodeStun({
    type: StunType.BindingRequest,
    transactionId: randomBytes(12),
    attributes: [{ type: StunAttr.Username, value: Buffer.from('u:c') }],
    fingerprint: true,
  });
  const overTcp: TransportAddress = { family: 4, address: '198.51.100.7', port: 40000, transport: 'tcp' };
  assert.ok(protocol.deliverRequest(request, overTcp));
  assert.deepEqual(requests, [['198.51.100.7', 40000]], 'werift sees an address and a port');
  const reply = parseMessage(request)!;
  await protocol.sendStun(reply, ['198.51.100.7', 40000]);
  await protocol.sendStun(reply, ['198.51.100.8', 1]);
  assert.deepEqual(sent, [overTcp, { family: 4, address: '198.51.100.8', port: 1 }]);
});

for (const [name, profile] of [
  ['AEAD_AES_128_GCM', ProtectionProfileAeadAes128Gcm],
  ['AES_CM_128_HMAC_SHA1_80', ProtectionProfileAes128CmHmacSha1_80],
] as const) {
  test(`a candidate path's SRTP is the client's only when it authenticates and is newer (${name})`, async () => {
    const keys = {
      localMasterKey: randomBytes(16),
      localMasterSalt: randomBytes(profile === ProtectionProfileAeadAes128Gcm ? 12 : 14),
      remoteMasterKey: randomBytes(16),
      remoteMasterSalt: randomBytes(profile === ProtectionProfileAeadAes128Gcm ? 12 : 14),
    };
    // The client's sending context is the transceiver's receiving one: the keys swapped.
    const clientSide = new SrtpSession({
      profile,
      keys: {
        localMasterKey: keys.remoteMasterKey,
        localMasterSalt: keys.remoteMasterSalt,
        remoteMasterKey: keys.localMasterKey,
        remoteMasterSalt: keys.localMasterSalt,
      },
    });
    const send = (seq: number, ssrc = 0x5eed) =>
      clientSide.encrypt(
        randomBytes(60),
        new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: seq * 960, ssrc }),
      );
    const offerer = new RTCPeerConnection({
      iceUseIpv4: false,
      iceUseIpv6: false,
      codecs: { audio: [useOPUS()] },
    });
    offerer.addTransceiver('audio', { direction: 'sendrecv' });
    const pc = new RTCPeerConnection({
      iceLite: true,
      iceUseIpv4: false,
      iceUseIpv6: false,
      bundlePolicy: 'max-bundle',
    });
    try {
      await pc.setRemoteDescription(await offerer.createOffer());
      assert.equal(verifyClientSrtp(pc, send(1)), 'no-keys', 'before DTLS has made keys');
      // What werift's DTLS transport holds once the handshake is done.
      const session = new SrtpSession({ profile, keys });
      (pc.dtlsTransports[0] as unknown as { srtp: SrtpSession }).srtp = session;
      assert.equal(verifyClientSrtp(pc, send(1)), 'unknown-ssrc', 'nothing accepted from this SSRC yet');
      const first = send(100);
      session.decrypt(first); // received on the validated path
      const next = send(101);
      const tampered = Buffer.from(send(102));
      tampered[tampered.length - 20]! ^= 1;
      assert.equal(verifyClientSrtp(pc, tampered), 'bad-auth');
      assert.equal(verifyClientSrtp(pc, first), 'not-newer', 'a replay of what was accepted');
      assert.equal(verifyClientSrtp(pc, send(90)), 'not-newer', 'older than what was accepted');
      assert.equal(verifyClientSrtp(pc, next), 'verified');
      assert.equal(verifyClientSrtp(pc, next), 'not-newer', 'the same packet twice');
      assert.equal(verifyClientSrtp(pc, send(103)), 'verified', 'a rejected packet changed nothing');
      assert.equal(verifyClientSrtp(pc, send(104, 0x0dd)), 'unknown-ssrc');
      assert.equal(verifyClientSrtp(pc, Buffer.from([0x81, 200, 0, 1, 0, 0, 0x5e, 0xed])), 'not-rtp');
      // A verified packet advanced the context the way receiving it does: werift still decrypts it.
      assert.doesNotThrow(() => session.decrypt(next));
    } finally {
      await pc.close();
      await offerer.close();
    }
  });
}

/**
 * A peer connection set up as the transceiver's (ICE-lite, the tunnel protocol, one audio
 * transceiver) against a werift offer, with what werift's DTLS transport holds once its handshake is
 * done (the keys, SRTP started: `connected` sets the transport's state too), and the caller's SRTP
 * session that those keys pair with. Packets werift sends go to `sent`; those it routes to the
 * audio track, to `byWerift`.
 */
async function answeredPeer(profile: number, { connected }: { connected: boolean }) {
  const saltLength = profile === ProtectionProfileAeadAes128Gcm ? 12 : 14;
  const keys = {
    localKey: randomBytes(16),
    localSalt: randomBytes(saltLength),
    remoteKey: randomBytes(16),
    remoteSalt: randomBytes(saltLength),
  };
  const caller = new SrtpSession({
    profile,
    keys: {
      localMasterKey: keys.remoteKey,
      localMasterSalt: keys.remoteSalt,
      remoteMasterKey: keys.localKey,
      remoteMasterSalt: keys.localSalt,
    },
  });
  const offerer = new RTCPeerConnection({
    iceUseIpv4: false,
    iceUseIpv6: false,
    codecs: { audio: [useOPUS()] },
  });
  offerer.addTransceiver('audio', { direction: 'sendrecv' });
  const offer = await offerer.createOffer();
  const pc = new RTCPeerConnection({
    iceLite: true,
    iceUseIpv4: false,
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    codecs: { audio: [useOPUS()], video: [] },
  });
  const audio = pc.addTransceiver('audio', { direction: 'sendrecv' });
  const byWerift: RtpPacket[] = [];
  audio.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => byWerift.push(rtp)));
  const sent: Buffer[] = [];
  const protocol = new TunnelIceProtocol(
    { sendStun: () => true, sendData: (_owner, data) => sent.push(data) > 0 },
    {},
    { family: 4, address: '203.0.113.1', port: 3478 },
    'u',
  );
  const close = async () => {
    await pc.close().catch(() => {});
    await offerer.close();
  };
  try {
    await pc.setRemoteDescription(offer);
    attachTunnel(pc, protocol);
    await pc.setLocalDescription(await pc.createAnswer());
    const ice = iceConnectionOf(pc) as unknown as { nominated: unknown };
    const pair = { id: 'pair', protocol, remoteAddr: ['198.51.100.7', 40000], packetsSent: 0, bytesSent: 0 };
    if (connected) ice.nominated = pair;
    const transport = pc.dtlsTransports[0] as unknown as { dtls: unknown; state: string; startSrtp(): void };
    transport.dtls = {
      srtp: { srtpProfile: profile },
      dtls: { version: { major: 254, minor: 253 } },
      cipher: {},
      extractSessionKeys: () => keys,
      close: () => {},
    };
    transport.startSrtp();
    if (connected) transport.state = 'connected';
    return {
      pc,
      audio,
      protocol,
      caller,
      ice,
      pair,
      sent,
      byWerift,
      close,
      ssrc: Number(/a=ssrc:(\d+)/.exec(offer.sdp)![1]),
      opus: Number(/a=rtpmap:(\d+) OPUS/.exec(offer.sdp)![1]),
    };
  } catch (error) {
    await close();
    throw error;
  }
}

for (const [name, profile] of [
  ['AEAD_AES_128_GCM', ProtectionProfileAeadAes128Gcm],
  ['AES_CM_128_HMAC_SHA1_80', ProtectionProfileAes128CmHmacSha1_80],
] as const) {
  test(`the caller's RTP, once werift routed its stream, is taken before werift and still in werift's statistics (${name})`, async () => {
    const { pc, audio, protocol, caller, ssrc, opus, byWerift, close } = await answeredPeer(profile, {
      connected: false,
    });
    try {
      const shortcut = new RtpReceiveShortcut(audio.receiver, iceConnectionOf(pc));
      const send = (seq: number, payloadType = opus, from = ssrc) =>
        caller.encrypt(
          Buffer.from(`frame ${seq}`),
          new RtpHeader({ payloadType, sequenceNumber: seq, timestamp: seq * 960, ssrc: from }),
        );

      const first = send(1);
      assert.equal(shortcut.take(first), undefined, 'werift has not routed the stream yet');
      protocol.deliverData(first);
      assert.equal(byWerift.length, 1, 'werift routed it to the track');
      for (let seq = 2; seq <= 50; seq++) {
        assert.deepEqual(shortcut.take(send(seq)), {
          sequenceNumber: seq,
          timestamp: seq * 960,
          payload: Buffer.from(`frame ${seq}`),
        });
      }
      assert.equal(byWerift.length, 1, 'the later packets did not go through werift');

      const tampered = Buffer.from(send(51));
      tampered[tampered.length - 1]! ^= 1;
      assert.equal(shortcut.take(tampered), 'rejected');
      assert.equal(shortcut.take(send(52, opus + 1)), undefined, 'another payload type: werift decides');
      assert.equal(shortcut.take(send(53, opus, ssrc + 1)), undefined, 'a stream werift has not routed');
      assert.equal(shortcut.take(Buffer.from([0x81, 201, 0, 1, 0, 0, 0, 1])), undefined, 'RTCP');
      assert.equal(shortcut.take(Buffer.from([22, 254, 253])), undefined, 'DTLS');
      assert.ok(shortcut.take(send(54)), 'a refused packet changed nothing');

      const report = await audio.receiver.getStats();
      const stats = [...report.values()] as unknown as Record<string, unknown>[];
      const inbound = stats.find((s) => s.type === 'inbound-rtp')!;
      assert.equal(inbound.packetsReceived, 51, 'every packet of the stream, either way it came');
      assert.equal(inbound.bytesReceived, 7 * 9 + 8 * 41 + 8);
      assert.equal(typeof inbound.jitter, 'number');
      assert.equal(inbound.packetsLost, 3, '51–53 never reached the stream');
      await audio.receiver.stop();
      assert.equal(shortcut.take(send(55)), undefined, 'a stopped receiver: werift decides');
    } finally {
      await close();
    }
  });
}

test('the shortcut names the werift members it misses', () => {
  assert.throws(
    () => new RtpReceiveShortcut({ stopped: false, codecs: {} }, { nominated: undefined }),
    (error: Error) => {
      assert.ok(error instanceof WeriftInternalsChanged);
      assert.match(error.message, /RTCRtpReceiver no longer has: trackBySSRC, remoteStreams/);
      return true;
    },
  );
});

for (const [name, profile] of [
  ['AEAD_AES_128_GCM', ProtectionProfileAeadAes128Gcm],
  ['AES_CM_128_HMAC_SHA1_80', ProtectionProfileAes128CmHmacSha1_80],
] as const) {
  test(`the agent's RTP, once werift sent the stream's first packet, goes past werift and is counted by it (${name})`, async () => {
    // The caller's receiving context decrypts what left the transceiver.
    const { audio, protocol, caller, ice, pair, sent, close } = await answeredPeer(profile, {
      connected: true,
    });
    try {
      const shortcut = new RtpSendShortcut(audio.sender, ice, protocol);
      const packet = (seq: number) => ({
        sequenceNumber: seq & 0xffff,
        timestamp: (seq * 960) >>> 0,
        marker: seq === 65_530,
        payloadType: 0,
        payload: Buffer.from(`frame ${seq}`),
      });

      const first = packet(65_530);
      assert.equal(shortcut.send(first), false, 'werift has not sent the stream yet');
      const { sequenceNumber, timestamp, marker, payloadType, payload } = first;
      await audio.sender.sendRtp(
        new RtpPacket(new RtpHeader({ sequenceNumber, timestamp, marker, payloadType }), payload),
      );
      assert.equal(sent.length, 1, 'werift sent it');
      // Across the sequence number's wrap: the rollover counter is werift's, shared by both paths.
      for (let seq = 65_531; seq < 65_550; seq++) assert.equal(shortcut.send(packet(seq)), true);
      assert.equal(sent.length, 20);
      const codec = (audio.sender as unknown as { codec: { payloadType: number } }).codec;
      sent.forEach((srtp, i) => {
        const rtp = RtpPacket.deSerialize(caller.decrypt(srtp));
        const expected = packet(65_530 + i);
        assert.equal(rtp.header.sequenceNumber, expected.sequenceNumber);
        assert.equal(rtp.header.timestamp, expected.timestamp);
        assert.equal(rtp.header.marker, expected.marker);
        assert.equal(rtp.header.ssrc, audio.sender.ssrc);
        assert.equal(rtp.header.payloadType, codec.payloadType, 'the negotiated type, as werift writes it');
        assert.deepEqual(rtp.payload, expected.payload);
      });

      const sender = audio.sender as unknown as {
        packetCount: number;
        octetCount: number;
        rtpTimestamp: number;
      };
      assert.equal(sender.packetCount, 20, "werift's sender reports count every packet");
      assert.equal(sender.octetCount, 11 * 20);
      assert.equal(sender.rtpTimestamp, packet(65_549).timestamp);
      assert.equal(pair.packetsSent, 20);
      const report = await audio.sender.getStats();
      const outbound = ([...report.values()] as unknown as Record<string, unknown>[]).find(
        (s) => s.type === 'outbound-rtp',
      )!;
      assert.equal(outbound.packetsSent, 20);

      // Whatever werift would change on the way is left to werift.
      (audio.sender as unknown as { rtpContinuityPending: boolean }).rtpContinuityPending = true;
      assert.equal(shortcut.send(packet(65_550)), false);
      (audio.sender as unknown as { rtpContinuityPending: boolean }).rtpContinuityPending = false;
      audio.sender.stop();
      assert.equal(shortcut.send(packet(65_551)), false, 'a stopped sender sends nothing');
      assert.equal(sent.length, 20);
    } finally {
      await close();
    }
  });
}
