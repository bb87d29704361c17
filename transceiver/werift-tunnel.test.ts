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
  SrtpSession,
  useOPUS,
} from 'werift';
import type { TransportAddress } from '../protocol/address.ts';
import { encodeStun, StunAttr, StunType } from '../protocol/stun.ts';
import { WeriftInternalsChanged } from '../webrtc/werift-internals.ts';
import {
  assertWeriftInternals,
  iceConnectionOf,
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
