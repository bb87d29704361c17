// Fails loudly if a werift upgrade changes the internals the tunnel adapter relies on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RTCPeerConnection, useOPUS } from 'werift';
import { assertWeriftInternals, iceConnectionOf, WeriftInternalsChanged } from './werift-tunnel.ts';

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
