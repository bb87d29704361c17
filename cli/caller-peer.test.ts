// Fails loudly if a werift upgrade changes the sender internals the callers' RTCP figures rely on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallerPeer } from './caller-peer.ts';

test("a loopback caller offers its one audio stream with a 127.0.0.1 candidate; werift's sender passes the guard", async () => {
  const peer = new CallerPeer('loopback', () => {});
  try {
    const offer = await peer.offer();
    assert.match(offer, /^m=audio /m);
    assert.match(offer, /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/m);
    assert.equal(peer.remotePacketsLost, 0, 'no receiver report yet');
    peer.onRoundTrip(() => {});
  } finally {
    await peer.pc.close();
  }
});
