// Relay limits, timeouts, hot reload, configuration errors, shutdown, IPv6 and several workers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { decodeTunnelPacket, encodeTunnelPacket } from '../../protocol/tunnel.ts';
import { bindingRequest, rtpPacket } from '../support/ice.ts';
import { freeTcpPort, freeUdpPort, UdpEndpoint } from '../support/net.ts';
import { credentialsFor, RelayFixture, RelayProcess } from '../support/relay-process.ts';

const MAIN = fileURLToPath(new URL('../../relay/main.ts', import.meta.url));

async function setup(config: Record<string, unknown> = {}, transceiverCount = 1) {
  const transceivers = await Promise.all(Array.from({ length: transceiverCount }, () => UdpEndpoint.open()));
  const relayPort = await freeUdpPort();
  // A draining transceiver here began draining a minute ago.
  const drainingSince = Math.floor(Date.now() / 1000) - 60;
  const routing = (states: string[], generation = 1) => ({
    clusterId: 1,
    generation,
    transceivers: transceivers.map((t, i) => ({
      id: 7 + i,
      tunnel: `127.0.0.1:${t.address.port}`,
      state: states[i],
      ...(states[i] === 'draining' ? { drainingSince } : {}),
    })),
  });
  const fixture = new RelayFixture({
    httpPort: await freeTcpPort(),
    listen: [`127.0.0.1:${relayPort}`],
    routing: routing(transceivers.map(() => 'active')),
    config,
  });
  const relay = await RelayProcess.start(fixture);
  const open = async (
    host: string,
    transceiverId = 7,
    credentials = credentialsFor(fixture.keyring.keyring, 1, transceiverId),
  ) => {
    const client = await UdpEndpoint.open(host);
    await client.send(bindingRequest(credentials.ufrag, credentials.password), relayPort, '127.0.0.1');
    return { client, ...credentials };
  };
  return {
    relay,
    fixture,
    relayPort,
    transceivers,
    transceiver: transceivers[0]!,
    open,
    routing,
    async close() {
      await relay.stop('SIGKILL');
      await Promise.all(transceivers.map((t) => t.close()));
      fixture.remove();
    },
  };
}

describe('relay limits and timeouts', () => {
  test('the flow table has a hard cap', async () => {
    const rig = await setup({ flows: { maxFlows: 3, newFlowsPerSourcePerSecond: 1000 } });
    try {
      for (let i = 0; i < 3; i++) {
        await rig.open('127.0.0.1');
        await rig.transceiver.next();
      }
      await rig.open('127.0.0.1');
      await rig.relay.waitFor('voice_edge_relay_drops_total', { reason: 'flow_table_full' }, (v) => v === 1);
      assert.equal(await rig.relay.value('voice_edge_relay_flows'), 3);
      assert.ok(await rig.transceiver.silentFor(100));
    } finally {
      await rig.close();
    }
  });

  test('new flows per source IP per second are limited, other sources are not', async () => {
    const rig = await setup({ flows: { newFlowsPerSourcePerSecond: 2 } });
    try {
      for (let i = 0; i < 3; i++) await rig.open('127.0.0.4');
      await rig.relay.waitFor('voice_edge_relay_drops_total', { reason: 'rate_limited' }, (v) => v === 1);
      await rig.open('127.0.0.5');
      await rig.relay.waitFor('voice_edge_relay_flows', {}, (v) => v === 3);
    } finally {
      await rig.close();
    }
  });

  test('idle flows expire; their packets are then dropped', async () => {
    const rig = await setup({ flows: { idleTimeoutMs: 1000, newFlowsPerSourcePerSecond: 100 } });
    try {
      const { client } = await rig.open('127.0.0.1');
      await rig.transceiver.next();
      assert.equal(await rig.relay.value('voice_edge_relay_flows'), 1);
      await rig.relay.waitFor('voice_edge_relay_flows_expired_total', {}, (v) => v === 1, 4_000);
      assert.equal(await rig.relay.value('voice_edge_relay_flows'), 0);
      await client.send(rtpPacket(), rig.relayPort, '127.0.0.1');
      await rig.relay.waitFor('voice_edge_relay_drops_total', { reason: 'unknown_flow' }, (v) => v === 1);
      assert.ok(await rig.transceiver.silentFor(100));
    } finally {
      await rig.close();
    }
  });
});

describe('routing table hot reload', () => {
  test('draining keeps existing flows and refuses new ones; removal ends flows; bad tables are ignored', async () => {
    const rig = await setup({}, 2);
    try {
      // A session that began before the drain (its ufrag was issued two minutes ago).
      const earlier = credentialsFor(rig.fixture.keyring.keyring, 1, 7, Date.now() - 120_000);
      const existing = await rig.open('127.0.0.1', 7, earlier);
      const first = await rig.transceiver.next();
      rig.fixture.writeRouting(rig.routing(['draining', 'active'], 2));
      await rig.relay.waitFor('voice_edge_relay_routing_table_generation', {}, (v) => v === 2);

      const media = rtpPacket();
      await existing.client.send(media, rig.relayPort, '127.0.0.1');
      const forwarded = decodeTunnelPacket((await rig.transceiver.next()).data);
      assert.ok(forwarded.ok);
      assert.deepEqual(Buffer.from(forwarded.packet.payload), media, 'an existing flow keeps forwarding');

      // A session issued now, after the drain began, gets no flow.
      await rig.open('127.0.0.1', 7);
      await rig.relay.waitFor(
        'voice_edge_relay_drops_total',
        { reason: 'transceiver_draining' },
        (v) => v === 1,
      );
      // The session already on the draining transceiver may still move to a new address (any worker, any relay).
      await rig.open('127.0.0.6', 7, existing);
      const moved = decodeTunnelPacket((await rig.transceiver.next()).data);
      assert.ok(moved.ok && moved.packet.client.address === '127.0.0.6');
      // The active one still takes new sessions.
      await rig.open('127.0.0.1', 8);
      await rig.transceivers[1]!.next();

      rig.fixture.writeRouting('clusterId: 1\ntransceivers: [{ id: 7, tunnel: nowhere, state: active }]\n');
      await rig.relay.waitFor('voice_edge_relay_routing_table_errors_total', {}, (v) => v === 1);
      rig.fixture.writeRouting({ ...rig.routing(['active', 'active'], 5), clusterId: 2 });
      await rig.relay.waitFor('voice_edge_relay_routing_table_errors_total', {}, (v) => v === 2);
      assert.equal(
        await rig.relay.value('voice_edge_relay_routing_table_generation'),
        2,
        'previous table kept',
      );

      rig.fixture.writeRouting({
        clusterId: 1,
        generation: 3,
        transceivers: [rig.routing(['active', 'active']).transceivers[1]],
      });
      await rig.relay.waitFor('voice_edge_relay_flows_removed_total', {}, (v) => v === 2);
      await existing.client.send(rtpPacket(), rig.relayPort, '127.0.0.1');
      await rig.relay.waitFor('voice_edge_relay_drops_total', { reason: 'unknown_flow' }, (v) => v === 1);
      // Replies from the removed transceiver are no longer accepted.
      await rig.transceiver.send(
        encodeTunnelPacket(
          { family: 4, address: '127.0.0.1', port: existing.client.address.port },
          rtpPacket(),
        ),
        first.port,
        first.address,
      );
      await rig.relay.waitFor(
        'voice_edge_relay_drops_total',
        { reason: 'tunnel_unknown_source' },
        (v) => v === 1,
      );
    } finally {
      await rig.close();
    }
  });
});

describe('relay process', () => {
  test('an invalid config fails with one message naming the field', () => {
    const fixture = new RelayFixture({ httpPort: 1, listen: ['127.0.0.1:3478'], routing: { clusterId: 1 } });
    try {
      writeFileSync(
        fixture.configFile,
        'clusterId: 1\nlisten: ["127.0.0.1:99999"]\nroutingTable: { file: routing.yaml }\nroutingKeys: { file: keys.yaml }\n',
      );
      const bad = spawnSync(process.execPath, [MAIN, '--config', fixture.configFile], { encoding: 'utf8' });
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /listen\.0: "127\.0\.0\.1:99999" is not an address/);
      writeFileSync(
        fixture.configFile,
        'clusterId: 1\nlisten: ["127.0.0.1:3478"]\nroutingTable: { file: routing.yaml }\nroutingKeys: { file: keys.yaml }\nflows: { maxFlow: 3 }\n',
      );
      const unknown = spawnSync(process.execPath, [MAIN, '--config', fixture.configFile], {
        encoding: 'utf8',
      });
      assert.equal(unknown.status, 2);
      assert.match(unknown.stderr, /flows: Unrecognized key: "maxFlow"/);
      const missing = spawnSync(process.execPath, [MAIN, '--config', join(fixture.dir, 'nope.yaml')], {
        encoding: 'utf8',
      });
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /cannot read config file/);
      const envBad = spawnSync(process.execPath, [MAIN, '--config', fixture.configFile], {
        encoding: 'utf8',
        env: { ...process.env, VOICE_EDGE_RELAY_FLOWS: '{}', VOICE_EDGE_RELAY_WORKERS: 'many' },
      });
      assert.equal(envBad.status, 2);
      assert.match(envBad.stderr, /workers/);
    } finally {
      fixture.remove();
    }
  });

  test('a busy UDP port gives a clear error and a non-zero exit', async () => {
    const squatter = await UdpEndpoint.open('127.0.0.1');
    const fixture = new RelayFixture({
      httpPort: await freeTcpPort(),
      listen: [`127.0.0.1:${squatter.address.port}`],
      routing: { clusterId: 1 },
    });
    try {
      await assert.rejects(
        RelayProcess.start(fixture),
        /exited with 1[\s\S]*EADDRINUSE[\s\S]*is another process using/,
      );
    } finally {
      await squatter.close();
      fixture.remove();
    }
  });

  test('SIGTERM: unready at once, no new flows, existing flows forward until the drain ends, exit 0', async () => {
    const rig = await setup({ shutdown: { drainMs: 1500 } });
    try {
      const { client } = await rig.open('127.0.0.1');
      await rig.transceiver.next();
      rig.relay.child.kill('SIGTERM');
      for (let i = 0; i < 50; i++) {
        const ready = await fetch(`http://127.0.0.1:${rig.fixture.httpPort}/readyz`);
        if (ready.status === 503) break;
        await sleep(20);
      }
      const readyz = await fetch(`http://127.0.0.1:${rig.fixture.httpPort}/readyz`);
      assert.equal(readyz.status, 503);
      assert.deepEqual(await readyz.json(), { status: 'draining' });
      await rig.open('127.0.0.1');
      await rig.relay.waitFor('voice_edge_relay_drops_total', { reason: 'relay_draining' }, (v) => v === 1);
      const media = rtpPacket();
      await client.send(media, rig.relayPort, '127.0.0.1');
      const forwarded = decodeTunnelPacket((await rig.transceiver.next()).data);
      assert.ok(forwarded.ok);
      assert.deepEqual(Buffer.from(forwarded.packet.payload), media);
      assert.equal(await rig.relay.exited, 0);
    } finally {
      await rig.close();
    }
  });
});

/**
 * A client's check for transceiver 7 through the relay at `relayAddress`:`relayPort`, and the
 * transceiver's answer back through the tunnel: what reached the transceiver, its tunnel packet, and
 * what came back to the client (the answer, byte for byte).
 */
async function checkAndAnswer(
  fixture: RelayFixture,
  transceiver: UdpEndpoint,
  client: UdpEndpoint,
  relayAddress: string,
  relayPort: number,
) {
  const { ufrag, password } = credentialsFor(fixture.keyring.keyring, 1, 7);
  await client.send(bindingRequest(ufrag, password), relayPort, relayAddress);
  const arrived = await transceiver.next();
  const decoded = decodeTunnelPacket(arrived.data);
  assert.ok(decoded.ok);
  const answer = rtpPacket();
  await transceiver.send(encodeTunnelPacket(decoded.packet.client, answer), arrived.port, arrived.address);
  const back = await client.next();
  assert.deepEqual(back.data, answer);
  return { arrived, tunnel: decoded.packet, back };
}

describe('relay sockets', () => {
  test('IPv6 clients are tunnelled with their IPv6 address', async (t) => {
    const probe = await UdpEndpoint.open('::1').catch(() => undefined);
    if (probe === undefined) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    await probe.close();
    const transceiver = await UdpEndpoint.open();
    const relayPort = await freeUdpPort('::1');
    const fixture = new RelayFixture({
      httpPort: await freeTcpPort(),
      listen: [`[::1]:${relayPort}`],
      routing: {
        clusterId: 1,
        transceivers: [{ id: 7, tunnel: `127.0.0.1:${transceiver.address.port}`, state: 'active' }],
      },
    });
    const relay = await RelayProcess.start(fixture);
    const client = await UdpEndpoint.open('::1');
    try {
      const { arrived, tunnel, back } = await checkAndAnswer(fixture, transceiver, client, '::1', relayPort);
      assert.equal(arrived.data.length - tunnel.payload.length, 22, 'IPv6 header is 22 bytes');
      assert.deepEqual(tunnel.client, { family: 6, address: '::1', port: client.address.port });
      assert.equal(back.port, relayPort);
    } finally {
      await relay.stop('SIGKILL');
      await Promise.all([client.close(), transceiver.close()]);
      fixture.remove();
    }
  });

  test('dual stack: IPv4 and IPv6 clients on one port number reach an IPv6 transceiver over the IPv6 tunnel (tunnel.bindV6)', async (t) => {
    const probe = await UdpEndpoint.open('::1').catch(() => undefined);
    if (probe === undefined) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    await probe.close();
    // The relay's model: one listen address per family (its IPv6 sockets are IPv6-only), the same port.
    const relayPort = await freeUdpPort('::1');
    const transceiver = await UdpEndpoint.open('::1');
    const fixture = new RelayFixture({
      httpPort: await freeTcpPort(),
      listen: [`127.0.0.1:${relayPort}`, `[::1]:${relayPort}`],
      config: { tunnel: { bindV4: '127.0.0.1', bindV6: '::1' } },
      routing: {
        clusterId: 1,
        transceivers: [{ id: 7, tunnel: `[::1]:${transceiver.address.port}`, state: 'active' }],
      },
    });
    const relay = await RelayProcess.start(fixture);
    const clients = [await UdpEndpoint.open('127.0.0.1'), await UdpEndpoint.open('::1')];
    try {
      for (const [index, client] of clients.entries()) {
        const [family, address] = index === 0 ? [4, '127.0.0.1'] : [6, '::1'];
        const { arrived, tunnel, back } = await checkAndAnswer(
          fixture,
          transceiver,
          client,
          address,
          relayPort,
        );
        // From the relay's IPv6 tunnel socket, naming the client in its own family.
        assert.equal(arrived.address, '::1');
        assert.deepEqual(tunnel.client, { family, address, port: client.address.port });
        assert.deepEqual([back.address, back.port], [address, relayPort], 'from the port the client sent to');
      }
    } finally {
      await relay.stop('SIGKILL');
      await Promise.all([...clients.map((client) => client.close()), transceiver.close()]);
      fixture.remove();
    }
  });

  test('several workers share the port (SO_REUSEPORT); every flow works both ways', async () => {
    const rig = await setup({ workers: 2 });
    try {
      assert.equal(await rig.relay.value('voice_edge_relay_workers'), 2);
      const clients = [];
      for (let i = 0; i < 16; i++) clients.push(await rig.open(`127.0.0.${10 + i}`));
      const tunnelSources = new Set<number>();
      for (let i = 0; i < 16; i++) {
        const arrived = await rig.transceiver.next();
        tunnelSources.add(arrived.port);
        const decoded = decodeTunnelPacket(arrived.data);
        assert.ok(decoded.ok);
        await rig.transceiver.send(
          encodeTunnelPacket(decoded.packet.client, Buffer.from([0x80, i])),
          arrived.port,
          arrived.address,
        );
      }
      for (const { client } of clients) assert.equal((await client.next()).data[0], 0x80);
      assert.equal(await rig.relay.value('voice_edge_relay_flows'), 16);
      assert.ok(tunnelSources.size >= 1 && tunnelSources.size <= 2);
    } finally {
      await rig.close();
    }
  });
});
