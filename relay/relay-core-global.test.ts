// RelayCore in the global relay tier: an edge relay forwarding another cluster's sessions to that
// cluster's relays, and a cluster relay accepting them from known edge relays only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseCidr } from '../protocol/cidr.ts';
import { encodeStun, StunAttr, StunType } from '../protocol/stun.ts';
import { encodeTunnelPacket, tunnelHeaderLength } from '../protocol/tunnel.ts';
import {
  deriveIcePassword,
  encodeUfrag,
  NONCE_BYTES,
  type RoutingKey,
  RoutingKeyring,
} from '../protocol/ufrag.ts';
import { rtpPacket } from '../test/support/ice.ts';
import { DROP_REASONS, type DropReason, dropSlotOf, newCounters, SLOT } from './counters.ts';
import { type Flow, FlowTable } from './flow-table.ts';
import { type ClientDecision, LookupRequest, RelayCore } from './relay-core.ts';
import { Routes } from './routes.ts';
import { SourceRateLimiter } from './source-rate-limiter.ts';

const KEY: RoutingKey = { id: 1, secret: Buffer.alloc(32, 0x42) };
const KEYRING = new RoutingKeyring([KEY]);
const NOW_MS = 1_773_500_966_000;
const ISSUED_AT = NOW_MS / 1000 - 60;

/** Cluster 1's relays; cluster 2's relays; the edge relay's tunnel socket. */
const C1_RELAY = { family: 4 as const, address: '198.18.3.2', port: 3478 };
const C2_RELAY = { family: 4 as const, address: '198.18.4.2', port: 3478 };
const EDGE = { address: '198.18.2.2', port: 40_001 };

function ufragOf(clusterId: number, transceiverId: number): string {
  const nonce = randomBytes(NONCE_BYTES);
  return encodeUfrag({ clusterId, transceiverId, keyId: KEY.id, issuedAt: ISSUED_AT, nonce }, KEY);
}

function bindingRequest(ufrag: string, password = deriveIcePassword(ufrag, KEY)): Buffer {
  return encodeStun({
    type: StunType.BindingRequest,
    transactionId: randomBytes(12),
    attributes: [
      { type: StunAttr.Username, value: Buffer.from(`${ufrag}:cl1e`) },
      { type: StunAttr.IceControlling, value: randomBytes(8) },
    ],
    integrityKey: password,
    fingerprint: true,
  });
}

const RTP = Buffer.concat([Buffer.from([0x80, 111]), randomBytes(40)]);

/** An edge relay: no cluster of its own, peers 1 and 2. */
function edgeRelay(recovery = false) {
  const counters = newCounters();
  const routes = new Routes(
    {
      generation: 1,
      transceivers: [],
      peers: [
        { clusterId: 1, relays: [C1_RELAY] },
        { clusterId: 2, relays: [C2_RELAY] },
      ],
    },
    NOW_MS,
  );
  const core = new RelayCore({
    clusterId: -1,
    keyring: KEYRING,
    routes,
    flows: new FlowTable({ maxFlows: 100, idleTimeoutMs: 30_000 }),
    newFlowLimiter: new SourceRateLimiter(100),
    counters,
    recovery,
  });
  return { core, counters };
}

/** Cluster 1's relay: transceiver 5, accepts edge traffic from 198.18.2.0/24, peer 2. */
function clusterRelay(recovery = false) {
  const counters = newCounters();
  const routes = new Routes(
    {
      generation: 1,
      transceivers: [{ id: 5, tunnel: { family: 4, address: '10.0.0.5', port: 7000 }, state: 'active' }],
      peers: [{ clusterId: 2, relays: [C2_RELAY] }],
      edgeRelays: [parseCidr('198.18.2.0/24')],
    },
    NOW_MS,
  );
  const core = new RelayCore({
    clusterId: 1,
    keyring: KEYRING,
    routes,
    flows: new FlowTable({ maxFlows: 100, idleTimeoutMs: 30_000 }),
    newFlowLimiter: new SourceRateLimiter(100),
    counters,
    recovery,
  });
  return { core, counters };
}

function asFlow(decision: ClientDecision): Flow {
  assert.equal(typeof decision, 'object', `expected a flow, got ${String(decision)}`);
  return decision as Flow;
}

function drops(counters: Float64Array): Partial<Record<DropReason, number>> {
  const out: Partial<Record<DropReason, number>> = {};
  for (const reason of DROP_REASONS)
    if (counters[dropSlotOf(reason)]! > 0) out[reason] = counters[dropSlotOf(reason)]!;
  return out;
}

const CLIENT = { family: 4 as const, address: '203.0.113.7', port: 50_000 };

describe('RelayCore as an edge relay', () => {
  test('a peer cluster’s session gets a flow to that cluster’s relay; replies come back from it only', () => {
    const { core, counters } = edgeRelay();
    for (const [cluster, relay] of [
      [1, C1_RELAY],
      [2, C2_RELAY],
    ] as const) {
      const from = { ...CLIENT, port: CLIENT.port + cluster };
      const flow = asFlow(
        core.onClientPacket(bindingRequest(ufragOf(cluster, 5)), from.address, 4, from.port, 0, NOW_MS),
      );
      assert.deepEqual(flow.route.tunnel, relay);
      assert.equal(flow.route.peerCluster, cluster);
      assert.equal(flow.via, undefined);
      // Media from the client follows, unparsed.
      assert.equal(core.onClientPacket(RTP, from.address, 4, from.port, 0, NOW_MS + 20), flow);
      // The peer relay's reply names the client: it goes to the client.
      const reply = encodeTunnelPacket(from, RTP);
      assert.equal(core.onTunnelPacket(reply, relay.address, relay.port, 0), flow);
      // The other peer cannot answer for this client.
      const other = cluster === 1 ? C2_RELAY : C1_RELAY;
      assert.equal(core.onTunnelPacket(reply, other.address, other.port, 0), 'tunnel_no_flow');
    }
    assert.equal(counters[SLOT.packetsToPeer], 4);
    assert.equal(counters[SLOT.packetsToTransceiver], 0);
    assert.equal(counters[SLOT.packetsToClient], 2);
    assert.deepEqual(drops(counters), { tunnel_no_flow: 2 });
  });

  test('the edge checks what a cluster relay checks before it creates a flow', () => {
    const { core, counters } = edgeRelay();
    const ufrag = ufragOf(1, 5);
    const send = (packet: Buffer, port: number) =>
      core.onClientPacket(packet, CLIENT.address, 4, port, 0, NOW_MS);
    assert.equal(send(bindingRequest(ufrag, 'not-the-password-of-this-ufrag'), 1), 'bad_integrity');
    assert.equal(send(bindingRequest(ufragOf(3, 5)), 2), 'wrong_cluster', 'cluster 3 is no peer');
    const forged = `${ufrag.slice(0, -1)}${ufrag.endsWith('a') ? 'b' : 'a'}`;
    assert.equal(send(bindingRequest(forged), 3), 'bad_tag');
    assert.equal(send(RTP, 4), 'unknown_flow');
    assert.equal(core.flows.size, 0);
    assert.deepEqual(drops(counters), { bad_integrity: 1, wrong_cluster: 1, bad_tag: 1, unknown_flow: 1 });
  });

  test('an edge relay accepts no edge-tunnel traffic of its own', () => {
    const { core } = edgeRelay();
    const datagram = encodeTunnelPacket(CLIENT, bindingRequest(ufragOf(1, 5)));
    assert.equal(core.onEdgeDatagram(datagram, EDGE.address, EDGE.port, 0, NOW_MS), 'edge_unknown_source');
  });

  test('Redis recovery: a record of a peer cluster’s session restores the flow to that peer', () => {
    const { core } = edgeRelay(true);
    assert.ok(core.onClientPacket(RTP, CLIENT.address, 4, CLIENT.port, 0, NOW_MS) instanceof LookupRequest);
    const flow = core.recoverFlow(CLIENT.address, 4, CLIENT.port, 0, ufragOf(2, 9), NOW_MS);
    assert.equal(typeof flow, 'object');
    assert.deepEqual((flow as Flow).route.tunnel, C2_RELAY);
    assert.equal(core.recoverFlow(CLIENT.address, 4, 1, 0, ufragOf(3, 9), NOW_MS), 'redis_miss');
  });
});

describe('RelayCore as a cluster relay behind edge relays', () => {
  test('a known edge’s datagram creates a flow for the client it names; replies go back through the edge', () => {
    const { core, counters } = clusterRelay();
    const request = bindingRequest(ufragOf(1, 5));
    const flow = asFlow(
      core.onEdgeDatagram(encodeTunnelPacket(CLIENT, request), EDGE.address, EDGE.port, 1, NOW_MS),
    );
    assert.deepEqual(flow.client, CLIENT, 'the transceiver sees the client, not the edge');
    assert.equal(flow.route.transceiverId, 5);
    assert.deepEqual(flow.via, EDGE);
    assert.equal(flow.socketIndex, 1);
    // The transceiver answers: the flow says to send the datagram, header and all, to the edge.
    const reply = encodeTunnelPacket(CLIENT, RTP);
    assert.equal(core.onTunnelPacket(reply, '10.0.0.5', 7000, 0), flow);
    assert.equal(counters[SLOT.packetsToEdge], 1);
    assert.equal(counters[SLOT.packetsToClient], 0);
    // Media through the edge follows the flow; the worker forwards the client's packet.
    const media = encodeTunnelPacket(CLIENT, RTP);
    assert.equal(core.onEdgeDatagram(media, EDGE.address, EDGE.port, 1, NOW_MS + 20), flow);
    assert.deepEqual(media.subarray(tunnelHeaderLength(media)), RTP);
    assert.equal(counters[SLOT.packetsToTransceiver], 2);
  });

  test('a restarted edge (new port) takes the flow over; a direct packet from the client takes it back', () => {
    const { core } = clusterRelay();
    const flow = asFlow(
      core.onEdgeDatagram(
        encodeTunnelPacket(CLIENT, bindingRequest(ufragOf(1, 5))),
        EDGE.address,
        EDGE.port,
        0,
        NOW_MS,
      ),
    );
    assert.equal(core.onEdgeDatagram(encodeTunnelPacket(CLIENT, RTP), EDGE.address, 40_002, 1, NOW_MS), flow);
    assert.deepEqual(flow.via, { address: EDGE.address, port: 40_002 });
    assert.equal(flow.socketIndex, 1);
    assert.equal(core.onClientPacket(RTP, CLIENT.address, 4, CLIENT.port, 0, NOW_MS), flow);
    assert.equal(flow.via, undefined, 'replies now go straight to the client');
    assert.equal(flow.socketIndex, 0);
  });

  test('its own sessions go to its transceivers, a peer cluster’s to the peer’s relays (it is their edge)', () => {
    const { core, counters } = clusterRelay();
    const own = asFlow(core.onClientPacket(bindingRequest(ufragOf(1, 5)), CLIENT.address, 4, 1, 0, NOW_MS));
    assert.equal(own.route.transceiverId, 5);
    const peer = asFlow(core.onClientPacket(bindingRequest(ufragOf(2, 5)), CLIENT.address, 4, 2, 0, NOW_MS));
    assert.deepEqual(peer.route.tunnel, C2_RELAY);
    assert.equal(counters[SLOT.packetsToTransceiver], 1);
    assert.equal(counters[SLOT.packetsToPeer], 1);
    // The transceiver cannot answer for the peer's flow, nor the peer for the transceiver's.
    assert.equal(
      core.onTunnelPacket(encodeTunnelPacket({ ...CLIENT, port: 2 }, RTP), '10.0.0.5', 7000, 0),
      'tunnel_no_flow',
    );
    assert.equal(
      core.onTunnelPacket(
        encodeTunnelPacket({ ...CLIENT, port: 1 }, RTP),
        C2_RELAY.address,
        C2_RELAY.port,
        0,
      ),
      'tunnel_no_flow',
    );
    assert.equal(
      core.onTunnelPacket(
        encodeTunnelPacket({ ...CLIENT, port: 2 }, RTP),
        C2_RELAY.address,
        C2_RELAY.port,
        0,
      ),
      peer,
    );
  });

  test('only known edge relays; well-formed datagrams; no chains to a further peer', () => {
    const { core, counters } = clusterRelay();
    const datagram = encodeTunnelPacket(CLIENT, bindingRequest(ufragOf(1, 5)));
    assert.equal(core.onEdgeDatagram(datagram, '198.18.1.2', 5000, 0, NOW_MS), 'edge_unknown_source');
    assert.equal(
      core.onEdgeDatagram(Buffer.from([0xe7, 0x11, 9, 0]), EDGE.address, EDGE.port, 0, NOW_MS),
      'edge_malformed',
    );
    const forPeer = encodeTunnelPacket(CLIENT, bindingRequest(ufragOf(2, 5)));
    assert.equal(core.onEdgeDatagram(forPeer, EDGE.address, EDGE.port, 0, NOW_MS), 'wrong_cluster');
    assert.equal(core.flows.size, 0);
    assert.deepEqual(drops(counters), { edge_unknown_source: 1, edge_malformed: 1, wrong_cluster: 1 });
  });

  test('Redis recovery through the edge: the restored flow replies through the edge', () => {
    const { core } = clusterRelay(true);
    assert.ok(
      core.onEdgeDatagram(encodeTunnelPacket(CLIENT, RTP), EDGE.address, EDGE.port, 0, NOW_MS) instanceof
        LookupRequest,
    );
    const flow = core.recoverFlow(CLIENT.address, 4, CLIENT.port, 0, ufragOf(1, 5), NOW_MS, EDGE);
    assert.equal(typeof flow, 'object');
    assert.deepEqual((flow as Flow).via, EDGE);
    // A record for a peer's session is not followed through an edge (no chains).
    assert.equal(core.recoverFlow(CLIENT.address, 4, 1, 0, ufragOf(2, 5), NOW_MS, EDGE), 'redis_miss');
  });

  test('property: datagrams from sources that are not edge relays never create state, whatever they hold', () => {
    const { core, counters } = clusterRelay(true);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
        (bytes, [c, d]) => {
          const datagram = Buffer.concat([Buffer.from([0xe7]), Buffer.from(bytes)]);
          const source = `198.18.${c === 2 ? 1 : c}.${d}`;
          assert.equal(core.onEdgeDatagram(datagram, source, 4000, 0, NOW_MS), 'edge_unknown_source');
        },
      ),
    );
    assert.equal(core.flows.size, 0);
    assert.equal(counters[SLOT.packetsToTransceiver], 0);
  });

  test('property: garbage from a known edge is a counted drop or a lookup, never a throw or a flow', () => {
    const { core } = clusterRelay(true);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const decision = core.onEdgeDatagram(Buffer.from(bytes), EDGE.address, EDGE.port, 0, NOW_MS);
        assert.equal(typeof decision, 'string');
      }),
    );
    assert.equal(core.flows.size, 0);
  });
});

describe('ICE-TCP through the global tier', () => {
  test('an edge relay’s TCP client: to the peer relay as type 2, a TCP flow there, replies back through the edge', () => {
    const edge = edgeRelay();
    const tcpClient = { ...CLIENT, transport: 'tcp' as const };
    const request = bindingRequest(ufragOf(1, 5));
    const atEdge = asFlow(edge.core.onTcpPacket(undefined, request, CLIENT.address, 4, CLIENT.port, NOW_MS));
    assert.deepEqual(atEdge.route.tunnel, C1_RELAY);
    assert.equal(atEdge.header[1], 0x12, 'the edge names a TCP client to the cluster relay');

    const cluster = clusterRelay(true);
    const forwarded = Buffer.concat([atEdge.header, request]);
    const atCluster = asFlow(cluster.core.onEdgeDatagram(forwarded, EDGE.address, EDGE.port, 0, NOW_MS));
    assert.deepEqual(atCluster.client, tcpClient);
    assert.deepEqual(atCluster.via, EDGE);
    assert.equal(atCluster.header[1], 0x12, 'and the cluster relay to the transceiver');
    assert.deepEqual(cluster.core.takeUnrecorded(), [], 'no cache record for a TCP client');
    // The transceiver's reply names the TCP client: it goes back to the edge, then into the connection.
    const reply = encodeTunnelPacket(tcpClient, RTP);
    assert.equal(cluster.core.onTunnelPacket(reply, '10.0.0.5', 7000, 0), atCluster);
    assert.equal(edge.core.onTunnelPacket(reply, C1_RELAY.address, C1_RELAY.port, 0), atEdge);
    // Media of a TCP client the cluster relay does not know is never a cache lookup.
    const stranger = encodeTunnelPacket({ ...tcpClient, port: 1 }, RTP);
    assert.equal(cluster.core.onEdgeDatagram(stranger, EDGE.address, EDGE.port, 0, NOW_MS), 'unknown_flow');
  });
});

describe('NAT rebinding through the global tier', () => {
  test('a client rebound behind an edge relay: a candidate at the edge and at the cluster relay, flows made as the transceiver answers', () => {
    const withSsrc = (seq: number) => rtpPacket(52, { ssrc: 0xfeed, seq });
    const edge = edgeRelay();
    const cluster = clusterRelay();
    // The call as it was: client → edge → cluster relay → transceiver 5, RTP with SSRC 0xfeed.
    const request = bindingRequest(ufragOf(1, 5));
    const atEdge = asFlow(edge.core.onClientPacket(request, CLIENT.address, 4, CLIENT.port, 0, NOW_MS));
    asFlow(
      cluster.core.onEdgeDatagram(
        Buffer.concat([atEdge.header, request]),
        EDGE.address,
        EDGE.port,
        0,
        NOW_MS,
      ),
    );
    const first = withSsrc(1);
    assert.equal(edge.core.onClientPacket(first, CLIENT.address, 4, CLIENT.port, 0, NOW_MS), atEdge);
    asFlow(
      cluster.core.onEdgeDatagram(Buffer.concat([atEdge.header, first]), EDGE.address, EDGE.port, 0, NOW_MS),
    );
    // The client's NAT rebinds: the same SSRC from a new port reaches the edge.
    const moved = { ...CLIENT, port: 50_001 };
    const next = withSsrc(2);
    const edgeCandidate = edge.core.onClientPacket(next, moved.address, 4, moved.port, 0, NOW_MS + 20);
    assert.equal(typeof edgeCandidate, 'object');
    const { header, route } = edgeCandidate as Flow;
    assert.deepEqual(route.tunnel, C1_RELAY, "to the session's cluster relay");
    assert.equal(edge.core.flows.size, 1, 'no flow at the edge yet');
    const clusterCandidate = cluster.core.onEdgeDatagram(
      Buffer.concat([header, next]),
      EDGE.address,
      EDGE.port,
      0,
      NOW_MS + 21,
    );
    assert.equal(typeof clusterCandidate, 'object');
    assert.equal((clusterCandidate as Flow).route.transceiverId, 5);
    assert.equal(cluster.core.flows.size, 1, 'no flow at the cluster relay yet');
    // The transceiver verified it and challenges the new address: each relay makes its flow.
    const challenge = encodeTunnelPacket(moved, bindingRequest(ufragOf(1, 5)));
    const madeAtCluster = asFlow(cluster.core.onTunnelPacket(challenge, '10.0.0.5', 7000, NOW_MS + 22));
    assert.deepEqual(madeAtCluster.via, EDGE, 'back through the edge');
    const madeAtEdge = asFlow(
      edge.core.onTunnelPacket(challenge, C1_RELAY.address, C1_RELAY.port, NOW_MS + 23),
    );
    assert.deepEqual(madeAtEdge.client, moved);
    assert.equal(edge.counters[SLOT.flowsCreatedSsrc], 1);
    assert.equal(cluster.counters[SLOT.flowsCreatedSsrc], 1);
  });
});
