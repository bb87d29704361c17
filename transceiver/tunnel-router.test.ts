import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { TransportAddress } from '../protocol/address.ts';
import { encodeStun, StunAttr, StunType } from '../protocol/stun.ts';
import { encodeTunnelPacket } from '../protocol/tunnel.ts';
import { TunnelRouter, type TunnelSessionPort } from './tunnel-router.ts';

function check(ufrag: string, password: string, options: { fingerprint?: boolean; type?: number } = {}) {
  return encodeStun({
    type: options.type ?? StunType.BindingRequest,
    transactionId: randomBytes(12),
    attributes: [
      { type: StunAttr.Username, value: Buffer.from(`${ufrag}:cli`) },
      { type: StunAttr.UseCandidate, value: Buffer.alloc(0) },
    ],
    integrityKey: password,
    fingerprint: options.fingerprint ?? true,
  });
}

class RecordingSession implements TunnelSessionPort {
  readonly stun: TransportAddress[] = [];
  readonly data: Buffer[] = [];
  onStunRequest(_stun: Buffer, client: TransportAddress) {
    this.stun.push(client);
  }
  onData(packet: Buffer) {
    this.data.push(packet);
  }
}

function rig() {
  const sent: { parts: readonly Buffer[]; relay: { address: string; port: number } }[] = [];
  const router = new TunnelRouter({ send: (parts, relay) => sent.push({ parts, relay }) });
  const session = new RecordingSession();
  router.addCredentials('ufrag-a', 'password-a-0123456789xyz', session);
  return { router, session, sent };
}

const client: TransportAddress = { family: 4, address: '198.51.100.7', port: 40000 };
const relayA = { address: '10.0.0.1', port: 5000 };
const relayB = { address: '10.0.0.2', port: 5001 };

describe('TunnelRouter', () => {
  test('a verified Binding request binds the client; later data follows it; replies go via the latest relay', () => {
    const { router, session, sent } = rig();
    assert.equal(
      router.onDatagram(encodeTunnelPacket(client, Buffer.from([23, 1, 2])), relayA, 0),
      'unknown_client',
    );
    assert.equal(
      router.onDatagram(encodeTunnelPacket(client, check('ufrag-a', 'password-a-0123456789xyz')), relayA, 1),
      undefined,
    );
    assert.deepEqual(session.stun, [client]);
    assert.equal(
      router.onDatagram(encodeTunnelPacket(client, Buffer.from([23, 1, 2])), relayB, 2),
      undefined,
    );
    assert.deepEqual(session.data, [Buffer.from([23, 1, 2])]);
    assert.ok(router.send(client, Buffer.from([0x80, 1])));
    assert.deepEqual(sent[0]!.relay, relayB, 'the relay that delivered the latest packet');
    assert.deepEqual(
      Buffer.concat(sent[0]!.parts as Buffer[]),
      encodeTunnelPacket(client, Buffer.from([0x80, 1])),
    );
  });

  test('forged, unknown or unfingerprinted checks never reach the session and bind nothing', () => {
    const { router, session } = rig();
    const cases: [Buffer, string][] = [
      [check('ufrag-a', 'wrong-password-xxxxxxxxxx'), 'stun_bad_integrity'],
      [check('ufrag-b', 'password-a-0123456789xyz'), 'stun_unknown_ufrag'],
      [check('ufrag-a', 'password-a-0123456789xyz', { fingerprint: false }), 'stun_bad_fingerprint'],
      [
        check('ufrag-a', 'password-a-0123456789xyz', { type: StunType.BindingIndication }),
        'stun_not_request',
      ],
      [Buffer.from([0, 1, 0, 8, 0x21, 0x12]), 'stun_malformed'],
    ];
    for (const [packet, reason] of cases)
      assert.equal(router.onDatagram(encodeTunnelPacket(client, packet), relayA, 0), reason);
    assert.equal(router.onDatagram(Buffer.from([1, 2, 3]), relayA, 0), 'tunnel_malformed');
    assert.deepEqual(session.stun, []);
    assert.equal(router.clientCount, 0);
    assert.equal(router.send(client, Buffer.from([1])), false);
  });

  test('removing a session forgets its ufrags and clients; idle clients expire', () => {
    const { router, session } = rig();
    router.onDatagram(encodeTunnelPacket(client, check('ufrag-a', 'password-a-0123456789xyz')), relayA, 0);
    const other = { ...client, port: 40001 };
    router.onDatagram(encodeTunnelPacket(other, check('ufrag-a', 'password-a-0123456789xyz')), relayA, 5_000);
    assert.equal(router.clientCount, 2);
    router.expireClients(10_000, 6_000);
    assert.equal(router.clientCount, 1, 'the client idle for 10 s expired, the other stays');
    router.removeSession(session);
    assert.equal(router.clientCount, 0);
    assert.equal(
      router.onDatagram(encodeTunnelPacket(client, check('ufrag-a', 'password-a-0123456789xyz')), relayA, 0),
      'stun_unknown_ufrag',
    );
  });
});
