// The relay's ICE-TCP port on real loopback sockets (docs/reaching-the-edge.md): clients are TCP
// connections speaking RFC 4571 frames, the transceiver a tunnel endpoint that answers through the
// tunnel. What a connection must prove, and what it can cost when it does not.
import assert from 'node:assert/strict';
import { type Socket, connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameReader, frame } from '../../protocol/rfc4571.ts';
import { decodeTunnelPacket, encodeTunnelPacket } from '../../protocol/tunnel.ts';
import { bindingRequest, dtlsPacket, rtpPacket } from '../support/ice.ts';
import { freeTcpPort, freeUdpPort, UdpEndpoint } from '../support/net.ts';
import { credentialsFor, RelayFixture, RelayProcess } from '../support/relay-process.ts';
import { waitUntil } from '../support/wait.ts';

const CLUSTER = 1;
const TRANSCEIVER_ID = 7;

interface Rig {
  relay: RelayProcess;
  fixture: RelayFixture;
  tcpPort: number;
  transceiver: UdpEndpoint;
  close(): Promise<void>;
}

async function startRig(
  tcp: Record<string, unknown> = {},
  config: Record<string, unknown> = {},
): Promise<Rig> {
  const transceiver = await UdpEndpoint.open();
  const tcpPort = await freeTcpPort();
  const fixture = new RelayFixture({
    httpPort: await freeTcpPort(),
    listen: [`127.0.0.1:${await freeUdpPort()}`],
    routing: {
      clusterId: CLUSTER,
      generation: 1,
      transceivers: [
        { id: TRANSCEIVER_ID, tunnel: `127.0.0.1:${transceiver.address.port}`, state: 'active' },
      ],
    },
    config: { tcp: { listen: [`127.0.0.1:${tcpPort}`, `[::1]:${tcpPort}`], ...tcp }, ...config },
  });
  const relay = await RelayProcess.start(fixture);
  return {
    relay,
    fixture,
    tcpPort,
    transceiver,
    async close() {
      await relay.stop('SIGKILL');
      await transceiver.close();
      fixture.remove();
    },
  };
}

/** A TCP client: frames out, frames in, and when the relay closed the connection. */
class TcpClient {
  readonly socket: Socket;
  readonly received: Buffer[] = [];
  readonly closed: Promise<number>;
  readonly #reader = new FrameReader();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const packet of this.#reader.push(chunk)) this.received.push(Buffer.from(packet));
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve(Date.now())));
  }

  static open(port: number, host = '127.0.0.1'): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect({ host, port }, () => resolve(new TcpClient(socket)));
      socket.once('error', reject);
    });
  }

  send(packet: Buffer): void {
    this.socket.write(frame(packet));
  }

  get localPort(): number {
    return this.socket.localPort!;
  }

  /** True when the relay closed the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), sleep(ms).then(() => false)]);
  }
}

/** Opens a connection whose first packet is a valid check: a TCP flow to the transceiver. */
async function openFlow(rig: Rig, host = '127.0.0.1') {
  const client = await TcpClient.open(rig.tcpPort, host);
  const credentials = credentialsFor(rig.fixture.keyring.keyring, CLUSTER, TRANSCEIVER_ID);
  const request = bindingRequest(credentials.ufrag, credentials.password);
  client.send(request);
  const arrived = await rig.transceiver.next(2_000);
  const decoded = decodeTunnelPacket(arrived.data);
  assert.ok(decoded.ok);
  return { client, arrived, tunnelClient: decoded.packet.client, request };
}

describe('relay: ICE-TCP', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig({ firstPacketTimeoutMs: 500, maxConnectionsPerSource: 6, sendBufferBytes: 16_384 });
  });
  after(() => rig.close());

  test('a valid first check makes a flow: frames go to the transceiver as TCP clients, replies come back framed', async () => {
    const { client, arrived, tunnelClient, request } = await openFlow(rig);
    assert.deepEqual(tunnelClient, {
      family: 4,
      address: '127.0.0.1',
      port: client.localPort,
      transport: 'tcp',
    });
    assert.equal(arrived.data[1], 0x12, 'tunnel message type 2');
    assert.deepEqual(decodeTunnelPacket(arrived.data).ok && decodeTunnelPacket(arrived.data), {
      ok: true,
      packet: { client: tunnelClient, payload: request },
    });
    // Upstream: several frames in one write, and one frame split over writes, arrive whole, in order.
    const upstream = [dtlsPacket(), rtpPacket(), rtpPacket(1200)];
    client.socket.write(Buffer.concat(upstream.slice(0, 2).map(frame)));
    const split = frame(upstream[2]!);
    client.socket.write(split.subarray(0, 7));
    await sleep(20);
    client.socket.write(split.subarray(7));
    for (const packet of upstream) {
      const next = decodeTunnelPacket((await rig.transceiver.next(2_000)).data);
      assert.ok(next.ok);
      assert.deepEqual(Buffer.from(next.packet.payload), packet);
    }
    // Downstream: the transceiver answers the TCP client; the client reads RFC 4571 frames.
    const answers = [rtpPacket(), rtpPacket(400)];
    for (const packet of answers)
      await rig.transceiver.send(encodeTunnelPacket(tunnelClient, packet), arrived.port, arrived.address);
    await waitUntil(async () => client.received.length === 2, 2_000, 'both frames');
    assert.deepEqual(client.received, answers);
    // The same address and port as a UDP client is another client: nothing reaches the TCP one.
    const { transport: _tcp, ...asUdp } = tunnelClient;
    await rig.transceiver.send(encodeTunnelPacket(asUdp, rtpPacket()), arrived.port, arrived.address);
    await sleep(100);
    assert.equal(client.received.length, 2);
    // Closed by the client: the flow ends with the connection.
    client.socket.end();
    await rig.relay.waitFor('voice_edge_relay_tcp_connections', {}, (v) => v === 0);
  });

  test('over IPv6 the same: the tunnel names the client with family 6 and TCP', async () => {
    const { client, arrived, tunnelClient } = await openFlow(rig, '::1');
    assert.deepEqual(tunnelClient, { family: 6, address: '::1', port: client.localPort, transport: 'tcp' });
    const answer = rtpPacket();
    await rig.transceiver.send(encodeTunnelPacket(tunnelClient, answer), arrived.port, arrived.address);
    await waitUntil(async () => client.received.length === 1, 2_000, 'the answer');
    assert.deepEqual(client.received, [answer]);
    client.socket.destroy();
    await rig.relay.waitFor('voice_edge_relay_tcp_connections', {}, (v) => v === 0);
  });

  test('a first packet that is not a valid check closes the connection at once, counted', async () => {
    const credentials = credentialsFor(rig.fixture.keyring.keyring, CLUSTER, TRANSCEIVER_ID);
    const cases: [string, Buffer][] = [
      ['tcp_not_stun', dtlsPacket()],
      ['bad_integrity', bindingRequest(credentials.ufrag, 'not-the-password-0123456')],
    ];
    for (const [reason, packet] of cases) {
      const before = await rig.relay.drops(reason);
      const client = await TcpClient.open(rig.tcpPort);
      client.send(packet);
      assert.ok(await client.closedWithin(1_000), `${reason}: closed`);
      await rig.relay.waitFor('voice_edge_relay_drops_total', { reason }, (v) => v === before + 1);
    }
    assert.ok(await rig.transceiver.silentFor(100), 'nothing reached the transceiver');
  });

  test('silence, or a first packet trickled too slowly (slowloris), is closed after firstPacketTimeoutMs', async () => {
    const before = await rig.relay.drops('tcp_handshake_timeout');
    const silent = await TcpClient.open(rig.tcpPort);
    const trickling = await TcpClient.open(rig.tcpPort);
    const started = Date.now();
    const trickle = setInterval(() => trickling.socket.write(Buffer.from([0])), 100);
    try {
      trickling.socket.write(Buffer.from([0x04])); // announces a 1024+ byte packet, then a byte at a time
      const [silentAt, tricklingAt] = await Promise.all([silent.closed, trickling.closed]);
      for (const at of [silentAt, tricklingAt])
        assert.ok(at - started >= 400 && at - started < 2_000, `${at - started} ms`);
    } finally {
      clearInterval(trickle);
    }
    await rig.relay.waitFor(
      'voice_edge_relay_drops_total',
      { reason: 'tcp_handshake_timeout' },
      (v) => v === before + 2,
    );
  });

  test('a packet longer than any ICE agent sends closes the connection', async () => {
    const { client } = await openFlow(rig);
    const before = await rig.relay.drops('tcp_frame_too_large');
    client.socket.write(Buffer.from([0xff, 0xff]));
    assert.ok(await client.closedWithin(1_000));
    assert.equal(await rig.relay.drops('tcp_frame_too_large'), before + 1);
  });

  test('connections from one address are capped; the others are refused at accept', async () => {
    const before = await rig.relay.drops('tcp_source_limit');
    const open: TcpClient[] = [];
    for (let i = 0; i < 6; i++) open.push(await TcpClient.open(rig.tcpPort));
    const refused = await TcpClient.open(rig.tcpPort);
    assert.ok(await refused.closedWithin(1_000), 'the 7th is closed');
    assert.equal(await rig.relay.drops('tcp_source_limit'), before + 1);
    for (const client of open) client.socket.destroy();
    await rig.relay.waitFor('voice_edge_relay_tcp_connections', {}, (v) => v === 0);
    const again = await TcpClient.open(rig.tcpPort);
    assert.equal(await again.closedWithin(200), false, 'slots free again');
    again.socket.destroy();
  });

  test('a client that does not read: its packets are dropped past the send buffer, nothing grows', async () => {
    const { client, arrived, tunnelClient } = await openFlow(rig);
    client.socket.pause();
    const before = await rig.relay.drops('tcp_send_buffer_full');
    // 12 MB of media at a client that reads nothing: the kernel buffers take some (a few MB on
    // loopback), then the relay's 16 KiB, then every packet is a counted drop.
    for (let i = 0; i < 12_000; i++) {
      await rig.transceiver.send(
        encodeTunnelPacket(tunnelClient, rtpPacket(1000)),
        arrived.port,
        arrived.address,
      );
      if (i % 200 === 0) await sleep(1);
    }
    await rig.relay.waitFor(
      'voice_edge_relay_drops_total',
      { reason: 'tcp_send_buffer_full' },
      (v) => v > before + 1_000,
    );
    // The client reads again: the connection still works, and what it gets are whole frames.
    client.socket.resume();
    await waitUntil(async () => client.received.length > 10, 5_000, 'frames after resuming');
    assert.ok(client.received.every((packet) => packet.length === 1000 && packet[0] === 0x80));
    client.socket.destroy();
  });
});

describe('relay: ICE-TCP limits that need their own relay', () => {
  test('the global connection cap refuses connections from any address', async () => {
    const rig = await startRig({ maxConnections: 3 });
    try {
      const open = [
        await TcpClient.open(rig.tcpPort),
        await TcpClient.open(rig.tcpPort),
        await TcpClient.open(rig.tcpPort),
      ];
      const refused = await TcpClient.open(rig.tcpPort);
      assert.ok(await refused.closedWithin(1_000));
      assert.equal(await rig.relay.drops('tcp_connection_limit'), 1);
      assert.equal(await rig.relay.value('voice_edge_relay_tcp_connections'), 3);
      for (const client of open) client.socket.destroy();
    } finally {
      await rig.close();
    }
  });

  test('every worker listens (SO_REUSEPORT): connections spread, and each gets its replies through its own worker', async () => {
    const rig = await startRig({}, { workers: 2 });
    try {
      const flows = [];
      for (let i = 0; i < 16; i++) flows.push(await openFlow(rig));
      // The tunnel datagrams come from each accepting worker's own tunnel socket.
      const workers = new Set(flows.map((flow) => flow.arrived.port));
      assert.equal(workers.size, 2, 'both workers accepted connections');
      for (const flow of flows) {
        const answer = rtpPacket();
        await rig.transceiver.send(
          encodeTunnelPacket(flow.tunnelClient, answer),
          flow.arrived.port,
          flow.arrived.address,
        );
        await waitUntil(async () => flow.client.received.length === 1, 2_000, 'the answer');
        assert.deepEqual(flow.client.received, [answer]);
      }
      assert.equal(await rig.relay.value('voice_edge_relay_tcp_connections'), 16);
      for (const flow of flows) flow.client.socket.destroy();
      await rig.relay.waitFor('voice_edge_relay_tcp_connections', {}, (v) => v === 0);
    } finally {
      await rig.close();
    }
  });

  test('an idle flow ends its connection (a half-open peer cannot hold a slot); a relay stop closes the rest', async () => {
    const rig = await startRig({}, { flows: { idleTimeoutMs: 1_000, newFlowsPerSourcePerSecond: 10_000 } });
    try {
      const idle = await openFlow(rig);
      const started = Date.now();
      const closedAt = await idle.client.closed;
      assert.ok(closedAt - started < 4_000, `closed ${closedAt - started} ms after its last packet`);
      await rig.relay.waitFor('voice_edge_relay_tcp_connections', {}, (v) => v === 0);
      const live = await openFlow(rig);
      await rig.relay.stop('SIGTERM');
      assert.ok(await live.client.closedWithin(3_000), 'closed by the stopping relay');
    } finally {
      await rig.close();
    }
  });
});
