// Fails loudly if a werift upgrade changes the internals the tunnel adapter relies on; and the
// adapter's own bookkeeping.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { type Address, parseMessage, RTCPeerConnection, useOPUS } from 'werift';
import type { TransportAddress } from '../protocol/address.ts';
import { encodeStun, StunAttr, StunType } from '../protocol/stun.ts';
import { WeriftInternalsChanged } from '../webrtc/werift-internals.ts';
import { assertWeriftInternals, iceConnectionOf, TunnelIceProtocol } from './werift-tunnel.ts';

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
