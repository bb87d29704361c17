// Attacks on a live call's media, as docs/security.md lists them, against the whole edge as real
// processes on loopback: a werift caller (its packets through a UDP proxy that stands for the network
// path), the relay, a transceiver, signaling and a backend that streams audio to the caller.
//
// - a captured check replayed from another address (anyone on the path could);
// - checks with a spoofed source: the caller's own valid checks sent "from" a victim's address;
// - tunnel datagrams naming the live client, sent to the transceiver from a host that is not a relay;
// - a flood of valid checks at 5,000/s;
// - a caller gone silent whose session forged checks try to keep alive.
//
// The figures (amplification, loss, memory) are printed; the bounds are the issue's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RTCPeerConnection } from 'werift';
import { newCallerPeerConnection } from '../../cli/caller-peer.ts';
import { encodeTunnelPacket } from '../../protocol/tunnel.ts';
import { Edge } from '../support/edge.ts';
import { bindingRequest } from '../support/ice.ts';
import { type ScriptedBackend, startScriptedBackend } from '../support/scripted-backend.ts';
import { lossBetween, type ProxiedClient, UdpProxy } from '../support/udp-proxy.ts';

interface Caller {
  readonly pc: RTCPeerConnection;
  /** The proxied address its media flows on. */
  readonly client: ProxiedClient;
  /** Every address of the caller (werift checks from each of its host candidates). */
  readonly addresses: readonly ProxiedClient[];
  readonly serverUfrag: string;
  readonly serverPassword: string;
  readonly clientUfrag: string;
}

function sdpValue(sdp: string, name: string): string {
  const match = new RegExp(`^a=${name}:(.+)$`, 'm').exec(sdp);
  assert.ok(match, `no a=${name}`);
  return match[1]!.trim();
}

/** A valid check of the caller's session (what the caller itself can always make). */
function checkOf(caller: Caller): Buffer {
  return bindingRequest(caller.serverUfrag, caller.serverPassword, caller.clientUfrag);
}

async function openSocket(host = '127.0.0.1'): Promise<{ socket: Socket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (data) => received.push(data));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return { socket, received };
}

function bytesOf(packets: readonly Buffer[]): number {
  return packets.reduce((total, packet) => total + packet.length, 0);
}

function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

describe('media goes only where it is wanted', { timeout: 180_000 }, () => {
  let backend: ScriptedBackend;
  let edge: Edge;
  let proxy: UdpProxy;
  const callers: Caller[] = [];

  /** Places a werift call whose packets go through the proxy; resolves once audio arrives. */
  async function call(): Promise<Caller> {
    const pc = newCallerPeerConnection();
    pc.addTransceiver('audio', { direction: 'sendrecv' });
    pc.createDataChannel('events');
    await pc.setLocalDescription(await pc.createOffer());
    while (pc.iceGatheringState !== 'complete') await sleep(20);
    const offer = pc.localDescription!.sdp;
    const response = await fetch(edge.whipUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: offer,
    });
    assert.equal(response.status, 201, await response.clone().text());
    const answer = await response.text();
    const known = new Set(proxy.clients.keys());
    // The path to the relay goes through the proxy.
    await pc.setRemoteDescription({
      type: 'answer',
      sdp: answer.replaceAll(` ${edge.relayPort} typ host`, ` ${proxy.port} typ host`),
    });
    const deadline = Date.now() + 15_000;
    let client: ProxiedClient | undefined;
    while (Date.now() < deadline) {
      client = [...proxy.clients.entries()].find(
        ([key, candidate]) => !known.has(key) && candidate.received.length >= 10,
      )?.[1];
      if (client !== undefined) break;
      await sleep(50);
    }
    assert.ok(client, `no audio reached the caller within 15 s\n${edge.output}`);
    const caller = {
      pc,
      client,
      addresses: [...proxy.clients.entries()].filter(([key]) => !known.has(key)).map(([, entry]) => entry),
      serverUfrag: sdpValue(answer, 'ice-ufrag'),
      serverPassword: sdpValue(answer, 'ice-pwd'),
      clientUfrag: sdpValue(offer, 'ice-ufrag'),
    };
    callers.push(caller);
    return caller;
  }

  const relay = () => ({ port: edge.relayPort, address: '127.0.0.1' });

  before(async () => {
    backend = await startScriptedBackend({ toneHz: 440, toneMs: 120_000 });
    // The backend queues its 120 s of tone at once: the queue must hold it all, or the calls' audio
    // (what the tests count) would stop when the default 20 s ran out.
    edge = await Edge.start({
      backendUrl: backend.url,
      mediaTimeoutMs: 3_000,
      transceiver: { audio: { maxQueueSeconds: 120 } },
    });
    proxy = await UdpProxy.start(relay());
  });

  after(async () => {
    for (const caller of callers) await caller.pc.close().catch(() => {});
    proxy?.close();
    await edge?.stop();
    await backend?.close();
  });

  test('a captured check replayed at 100/s from another address for 5 s: no media there, caller unharmed', async () => {
    const caller = await call();
    const captured = caller.client.checks.at(-1);
    assert.ok(captured, 'the proxy captured a check of the caller');
    const replayer = await openSocket();
    const started = Date.now();
    for (let i = 0; i < 500; i++) {
      replayer.socket.send(captured, relay().port, relay().address);
      await sleep(10);
    }
    const ended = Date.now();
    await sleep(300);
    const loss = lossBetween(caller.client, started + 200, ended);
    console.log(
      `# replay: ${loss.expected} packets expected at the caller, ${loss.lost} lost; the replaying socket received ${replayer.received.length} packets`,
    );
    assert.equal(replayer.received.length, 0, 'the replaying socket received something');
    assert.ok(loss.expected >= 200, `only ${loss.expected} packets in 5 s`);
    assert.ok(loss.lost / loss.expected < 0.001, `${loss.lost} of ${loss.expected} lost`);
    // The relay lets 100 + 50/s of one address's STUN through (the rest are flow_stun_rate_limited
    // there); every one that reached the transceiver was recognised as a replay.
    const metrics = await edge.transceiverMetrics();
    const replayed = metrics.get('voice_edge_transceiver_tunnel_drops_total{reason="stun_replayed"}') ?? 0;
    assert.ok(replayed >= 300, `${replayed} counted as stun_replayed`);
    replayer.socket.close();
  });

  test('checks with a spoofed source: the victim gets ≤ 3× the bytes sent in its name, and no media', async () => {
    const caller = callers[0]!;
    for (const [count, gapMs] of [
      [20, 50],
      [10, 500],
    ] as const) {
      // The test's socket is the victim's address: it sends what a spoofing caller would send with
      // the victim's source address, and counts what comes back to it. It never answers.
      const victim = await openSocket();
      const sent: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const check = checkOf(caller);
        sent.push(check);
        victim.socket.send(check, relay().port, relay().address);
        await sleep(gapMs);
      }
      await sleep(1_000);
      const ratio = bytesOf(victim.received) / bytesOf(sent);
      const media = victim.received.filter((packet) => packet[0]! >= 20).length;
      console.log(
        `# spoofed source, ${count} checks ${gapMs} ms apart: ${bytesOf(sent)} bytes sent in the victim's name, ${bytesOf(victim.received)} received (${ratio.toFixed(2)}×), ${media} media packets`,
      );
      assert.ok(ratio <= 3, `amplification ${ratio.toFixed(2)}×`);
      assert.equal(media, 0);
      victim.socket.close();
    }
  });

  test('tunnel datagrams naming the live client from a host that is not a relay are dropped', async () => {
    const caller = callers[0]!;
    const stranger = await openSocket('127.0.0.2');
    const before = await edge.transceiverMetrics();
    const started = Date.now();
    const client = { ...caller.client.relaySide, family: 4 as const };
    for (let i = 0; i < 100; i++) {
      stranger.socket.send(
        encodeTunnelPacket(client, Buffer.from([23, 0xfe, 0xfd, ...randomBytes(30)])),
        edge.transceivers[0]!.tunnelPort,
        '127.0.0.1',
      );
      await sleep(20);
    }
    const ended = Date.now();
    await sleep(300);
    const after = await edge.transceiverMetrics();
    const key = 'voice_edge_transceiver_tunnel_drops_total{reason="tunnel_unknown_source"}';
    const dropped = (after.get(key) ?? 0) - (before.get(key) ?? 0);
    const loss = lossBetween(caller.client, started + 200, ended);
    console.log(
      `# tunnel injection: ${dropped} of 100 dropped as tunnel_unknown_source; caller ${loss.lost} of ${loss.expected} lost; the injector received ${stranger.received.length}`,
    );
    assert.equal(dropped, 100);
    assert.equal(stranger.received.length, 0);
    assert.ok(loss.lost / loss.expected < 0.001, `${loss.lost} of ${loss.expected} lost`);
    stranger.socket.close();
  });

  test('valid checks at 5,000/s from 50 addresses for 5 s: transceiver memory bounded, the other call unharmed', async () => {
    const victimCall = callers[0]!;
    const attacker = await call();
    const pid = edge.transceivers[0]!.service.child.pid!;
    const flooders = await Promise.all(Array.from({ length: 50 }, () => openSocket()));
    try {
      await sleep(500);
      const rssBefore = residentBytes(pid);
      const started = Date.now();
      let sent = 0;
      while (Date.now() - started < 5_000) {
        // 100 checks every 20 ms: 5,000 a second, spread over 50 source addresses.
        for (let i = 0; i < 100; i++) {
          flooders[i % 50]!.socket.send(checkOf(attacker), relay().port, relay().address);
          sent++;
        }
        await sleep(20);
      }
      const ended = Date.now();
      await sleep(500);
      const rssAfter = residentBytes(pid);
      const loss = lossBetween(victimCall.client, started + 200, ended);
      const metrics = await edge.transceiverMetrics();
      const limited =
        metrics.get('voice_edge_transceiver_tunnel_drops_total{reason="stun_rate_limited"}') ?? 0;
      console.log(
        `# check flood: ${sent} valid checks in ${ended - started} ms; transceiver RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB; ${limited} rate-limited at the transceiver; other call ${loss.lost} of ${loss.expected} lost`,
      );
      assert.ok(loss.expected >= 200);
      assert.ok(loss.lost / loss.expected <= 0.001, `${loss.lost} of ${loss.expected} lost`);
      // Unbounded, the flood would keep ~75 B per check in werift alone (~2 MiB here) and grow without end.
      assert.ok(
        rssAfter - rssBefore < 24 * 2 ** 20,
        `RSS grew ${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB`,
      );
      assert.ok(limited > 0, 'the per-session check limit took effect');
    } finally {
      // Even when an assertion fails: open sockets would keep the test process alive.
      for (const flooder of flooders) flooder.socket.close();
    }
  });

  test('a caller gone silent ends on time although forged checks keep arriving', async () => {
    const silent = callers[1]!;
    const endedBefore = (await edge.transceiverMetrics()).get(
      'voice_edge_transceiver_sessions_ended_total{reason="media-timeout"}',
    );
    // The caller's paths stop: nothing more passes between it and the relay, from any of its addresses.
    for (const address of silent.addresses) address.cut = true;
    const forger = await openSocket();
    const started = Date.now();
    let endedAt: number | undefined;
    while (Date.now() - started < 10_000) {
      forger.socket.send(checkOf(silent), relay().port, relay().address);
      await sleep(250);
      const ended = (await edge.transceiverMetrics()).get(
        'voice_edge_transceiver_sessions_ended_total{reason="media-timeout"}',
      );
      if ((ended ?? 0) > (endedBefore ?? 0)) {
        endedAt = Date.now();
        break;
      }
    }
    console.log(
      `# silent caller with forged checks every 250 ms: ended ${endedAt === undefined ? 'never' : `after ${endedAt - started} ms`} (media timeout 3000 ms)`,
    );
    assert.ok(endedAt !== undefined && endedAt - started < 3_000 + 2_000, 'the session did not end on time');
    forger.socket.close();
  });
});
