// The relay process on real loopback sockets: clients are UDP sockets, transceivers are tunnel
// endpoints that decode what arrives and answer through the tunnel.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeTunnelPacket, encodeTunnelPacket } from '../../protocol/tunnel.ts';
import { encodeUfrag } from '../../protocol/ufrag.ts';
import { bindingIndication, bindingRequest, dtlsPacket, rtpPacket } from '../support/ice.ts';
import { type Datagram, freeTcpPort, freeUdpPort, UdpEndpoint } from '../support/net.ts';
import { credentialsFor, makeKeyring, RelayFixture, RelayProcess } from '../support/relay-process.ts';

const CLUSTER = 1;

interface Rig {
  relay: RelayProcess;
  fixture: RelayFixture;
  relayPort: number;
  transceivers: UdpEndpoint[];
  close(): Promise<void>;
}

async function startRig(
  options: { transceivers?: number; config?: Record<string, unknown>; ids?: number[] } = {},
): Promise<Rig> {
  const transceivers = await Promise.all(
    Array.from({ length: options.transceivers ?? 1 }, () => UdpEndpoint.open()),
  );
  const ids = options.ids ?? transceivers.map((_, i) => 7 + i);
  const relayPort = await freeUdpPort();
  const fixture = new RelayFixture({
    httpPort: await freeTcpPort(),
    listen: [`127.0.0.1:${relayPort}`],
    routing: {
      clusterId: CLUSTER,
      generation: 1,
      transceivers: transceivers.map((t, i) => ({
        id: ids[i],
        tunnel: `127.0.0.1:${t.address.port}`,
        state: 'active',
      })),
    },
    config: options.config,
  });
  const relay = await RelayProcess.start(fixture);
  return {
    relay,
    fixture,
    relayPort,
    transceivers,
    async close() {
      await relay.stop('SIGKILL');
      await Promise.all(transceivers.map((t) => t.close()));
      fixture.remove();
    },
  };
}

/** Takes the next tunnel datagram at a transceiver and decodes it. */
async function receiveTunnel(transceiver: UdpEndpoint, timeoutMs = 2_000) {
  const datagram = await transceiver.next(timeoutMs);
  const decoded = decodeTunnelPacket(datagram.data);
  assert.ok(decoded.ok, 'tunnel datagram decodes');
  return { datagram, client: decoded.packet.client, payload: Buffer.from(decoded.packet.payload) };
}

/** The transceiver answers a client through the relay that delivered `via`. */
function reply(
  transceiver: UdpEndpoint,
  via: Datagram,
  client: { address: string; port: number },
  payload: Buffer,
) {
  return transceiver.send(
    encodeTunnelPacket({ family: 4, address: client.address, port: client.port }, payload),
    via.port,
    via.address,
  );
}

/** Opens a client, sends a valid Binding request for `transceiverId`, returns the client and credentials. */
async function connect(rig: Rig, transceiverId: number, host = '127.0.0.1') {
  const client = await UdpEndpoint.open(host);
  const credentials = credentialsFor(rig.fixture.keyring.keyring, CLUSTER, transceiverId);
  await client.send(bindingRequest(credentials.ufrag, credentials.password), rig.relayPort, '127.0.0.1');
  return { client, ...credentials };
}

describe('relay: routing and forwarding', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ transceivers: 3 });
  });
  after(() => rig.close());

  test('the first STUN request routes a flow to the transceiver its ufrag names', async () => {
    for (const [index, id] of [
      [1, 8],
      [2, 9],
      [0, 7],
    ] as const) {
      const { client } = await connect(rig, id);
      const arrived = await receiveTunnel(rig.transceivers[index]!);
      assert.equal(arrived.client.port, client.address.port);
      assert.equal(arrived.client.address, '127.0.0.1');
      assert.equal(arrived.payload[0], 0, 'a STUN Binding request, untouched');
      for (const [other, transceiver] of rig.transceivers.entries()) {
        if (other !== index) assert.ok(await transceiver.silentFor(50), `transceiver ${other} got nothing`);
      }
      await client.close();
    }
  });

  test('DTLS and RTP packets are forwarded both ways byte for byte', async () => {
    const { client } = await connect(rig, 8);
    const first = await receiveTunnel(rig.transceivers[1]!);
    const upstream = [dtlsPacket(), rtpPacket(), rtpPacket(1200)];
    for (const packet of upstream) await client.send(packet, rig.relayPort, '127.0.0.1');
    for (const packet of upstream) {
      const arrived = await receiveTunnel(rig.transceivers[1]!);
      assert.deepEqual(arrived.payload, packet);
      assert.equal(arrived.client.port, client.address.port);
    }
    const downstream = [dtlsPacket(300), rtpPacket(), Buffer.from([0x81, 0xc8, 0, 6, 1, 2, 3, 4])];
    for (const packet of downstream) await reply(rig.transceivers[1]!, first.datagram, first.client, packet);
    for (const packet of downstream) {
      const back = await client.next();
      assert.deepEqual(back.data, packet);
      assert.equal(back.port, rig.relayPort, 'the client hears from the port it sent to');
    }
    assert.ok((await rig.relay.value('voice_edge_relay_packets_total', { direction: 'to_client' })) >= 3);
    await client.close();
  });

  test('NAT rebinding: an authenticated request from a new address moves the session there', async () => {
    const { client, ufrag, password } = await connect(rig, 9);
    await receiveTunnel(rig.transceivers[2]!);
    const moved = await UdpEndpoint.open('127.0.0.2');
    await moved.send(bindingRequest(ufrag, password), rig.relayPort, '127.0.0.1');
    const check = await receiveTunnel(rig.transceivers[2]!);
    assert.equal(check.client.address, '127.0.0.2');
    assert.equal(check.client.port, moved.address.port);
    const media = rtpPacket();
    await moved.send(media, rig.relayPort, '127.0.0.1');
    assert.deepEqual((await receiveTunnel(rig.transceivers[2]!)).payload, media);
    const answer = rtpPacket();
    await reply(rig.transceivers[2]!, check.datagram, check.client, answer);
    assert.deepEqual((await moved.next()).data, answer);
    assert.ok(await client.silentFor(100), 'the old address hears nothing');
    await Promise.all([client.close(), moved.close()]);
  });
});

describe('relay: what it refuses', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ transceivers: 1 });
  });
  after(() => rig.close());

  async function refused(packet: Buffer, reason: string, host = '127.0.0.1') {
    const before = await rig.relay.drops(reason);
    const client = await UdpEndpoint.open(host);
    await client.send(packet, rig.relayPort, '127.0.0.1');
    await rig.relay.waitFor('voice_edge_relay_drops_total', { reason }, (v) => v === before + 1);
    // No flow: a follow-up media packet from the same address is not forwarded either.
    await client.send(rtpPacket(), rig.relayPort, '127.0.0.1');
    assert.ok(await rig.transceivers[0]!.silentFor(100), `nothing forwarded after ${reason}`);
    await client.close();
  }

  test('forged, mistyped and unauthenticated requests create no flow', async () => {
    const { keyring } = rig.fixture.keyring;
    const good = credentialsFor(keyring, CLUSTER, 7);
    const forgedTag = `${good.ufrag.slice(0, -1)}${good.ufrag.endsWith('a') ? 'b' : 'a'}`;
    await refused(bindingRequest(forgedTag, good.password), 'bad_tag');
    await refused(bindingRequest('abcd', 'whatever-password-22chars'), 'bad_ufrag');
    const otherKey = makeKeyring([9]).keyring;
    const unknownKey = credentialsFor(otherKey, CLUSTER, 7);
    await refused(bindingRequest(unknownKey.ufrag, unknownKey.password), 'unknown_key');
    const otherCluster = credentialsFor(keyring, 2, 7);
    await refused(bindingRequest(otherCluster.ufrag, otherCluster.password), 'wrong_cluster');
    const noSuchTransceiver = credentialsFor(keyring, CLUSTER, 4242);
    await refused(bindingRequest(noSuchTransceiver.ufrag, noSuchTransceiver.password), 'unknown_transceiver');
    await refused(bindingRequest(good.ufrag, 'not-the-derived-password'), 'bad_integrity');
    await refused(bindingIndication(good.ufrag, good.password), 'not_binding_request');
    await refused(dtlsPacket(), 'unknown_flow');
    await refused(Buffer.from([0xff, 1, 2, 3]), 'unclassified');
    const truncated = bindingRequest(good.ufrag, good.password).subarray(0, 30);
    await refused(truncated, 'malformed_stun');
    assert.equal(await rig.relay.value('voice_edge_relay_flows'), 0);
  });

  test('tunnel datagrams from unknown addresses or with malformed headers are dropped', async () => {
    const { client } = await connect(rig, 7);
    const first = await receiveTunnel(rig.transceivers[0]!);
    const stranger = await UdpEndpoint.open();
    const beforeUnknown = await rig.relay.drops('tunnel_unknown_source');
    await stranger.send(
      encodeTunnelPacket({ family: 4, ...client.address }, rtpPacket()),
      first.datagram.port,
      '127.0.0.1',
    );
    await rig.relay.waitFor(
      'voice_edge_relay_drops_total',
      { reason: 'tunnel_unknown_source' },
      (v) => v > beforeUnknown,
    );
    const beforeMalformed = await rig.relay.drops('tunnel_malformed');
    for (const bad of [
      Buffer.from([0xe7]),
      Buffer.from([0x00, 0x11, 4, 0, 0, 1, 127, 0, 0, 1]),
      randomBytes(40),
    ]) {
      bad[0] = bad.length === 40 ? 0xe7 : bad[0]!;
      if (bad.length === 40) bad[1] = 0x11;
      if (bad.length === 40) bad[2] = 5;
      await rig.transceivers[0]!.send(bad, first.datagram.port, '127.0.0.1');
    }
    await rig.relay.waitFor(
      'voice_edge_relay_drops_total',
      { reason: 'tunnel_malformed' },
      (v) => v === beforeMalformed + 3,
    );
    const beforeNoFlow = await rig.relay.drops('tunnel_no_flow');
    await reply(rig.transceivers[0]!, first.datagram, { address: '127.0.0.9', port: 9 }, rtpPacket());
    await rig.relay.waitFor(
      'voice_edge_relay_drops_total',
      { reason: 'tunnel_no_flow' },
      (v) => v === beforeNoFlow + 1,
    );
    assert.ok(await client.silentFor(100), 'the client got none of it');
    await Promise.all([client.close(), stranger.close()]);
  });

  test('100,000 forged Binding requests leave the flow table empty', async () => {
    const { keyring } = rig.fixture.keyring;
    const client = await UdpEndpoint.open('127.0.0.3');
    const forgedDrops = async () =>
      (await rig.relay.drops('bad_tag')) + (await rig.relay.drops('bad_integrity'));
    const before = await forgedDrops();
    const createdBefore = await rig.relay.value('voice_edge_relay_flows_created_total', { cause: 'stun' });
    const flowsBefore = await rig.relay.value('voice_edge_relay_flows'); // earlier tests' flows
    const rssBefore = await rig.relay.value('voice_edge_relay_process_resident_memory_bytes');
    const forgedKey = { id: keyring.current.id, secret: randomBytes(32) };
    // Half carry a forged tag (right format, wrong key), half a genuine ufrag with a wrong password.
    const templates = Array.from({ length: 64 }, (_, i) => {
      if (i % 2 === 1) return bindingRequest(credentialsFor(keyring, CLUSTER, 7).ufrag, 'y'.repeat(22));
      const nonce = randomBytes(6);
      const ufrag = encodeUfrag(
        {
          clusterId: CLUSTER,
          transceiverId: 7,
          keyId: forgedKey.id,
          issuedAt: Math.floor(Date.now() / 1000),
          nonce,
        },
        forgedKey,
      );
      return bindingRequest(ufrag, 'x'.repeat(22));
    });
    const total = 100_000;
    let counted = 0;
    for (let sent = 0; sent < total; ) {
      const burst = Array.from({ length: 100 }, (_, i) => templates[(sent + i) % templates.length]!);
      await Promise.all(burst.map((packet) => client.send(packet, rig.relayPort, '127.0.0.1')));
      sent += burst.length;
      // Keep the burst inside the relay's socket buffer (net.core.rmem_max may be small): wait for it to catch up.
      if (sent % 1_000 === 0 || sent === total) {
        const deadline = Date.now() + 5_000;
        counted = (await forgedDrops()) - before;
        while (counted < sent - 300 && Date.now() < deadline) {
          await sleep(5);
          counted = (await forgedDrops()) - before;
        }
      }
    }
    const deadline = Date.now() + 5_000;
    while (counted < total && Date.now() < deadline) {
      await sleep(50);
      counted = (await forgedDrops()) - before;
    }
    // Loopback UDP may lose a few datagrams under a burst; every one that arrived was refused.
    assert.ok(counted >= total * 0.99 && counted <= total, `counted ${counted} of ${total} forged requests`);
    assert.equal(await rig.relay.value('voice_edge_relay_flows'), flowsBefore);
    assert.equal(
      await rig.relay.value('voice_edge_relay_flows_created_total', { cause: 'stun' }),
      createdBefore,
    );
    assert.equal(rig.transceivers[0]!.drain().length, 0, 'nothing reached the transceiver');
    const rssAfter = await rig.relay.value('voice_edge_relay_process_resident_memory_bytes');
    assert.ok(rssAfter - rssBefore < 64 * 1024 * 1024, `RSS grew by ${(rssAfter - rssBefore) >> 20} MiB`);
    await client.close();
  });
});
