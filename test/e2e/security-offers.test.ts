// Bounded cost per offer and per client, against the one-command local edge (`npm start`, one
// process): the attack of issue 10 (4 senders of ~700-audio-section offers that fit the 64 KiB body
// limit, for 15 s; before the shape limits the edge grew from 187 MiB to 3.4 GiB and stalled) plus a
// burst from one client into its rate and session caps, while a normal call connects and hears its
// echo. The edge runs the production defaults. Also: every socket of the local edge, the relay's
// tunnel socket included, is bound to the host it was given, not 0.0.0.0.
//
// Attack clients are told apart by their source address: Linux routes all of 127.0.0.0/8 to
// loopback, so each sender rotates through addresses of its own (as an attacker with many addresses,
// or one IPv6 /48, would) and the shape limits alone must hold; the one-client burst uses one.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CHROME_AUDIO_OFFER, manyAudioSectionsOffer } from '../../protocol/testdata/offers.ts';
import { freeTcpPort, freeUdpPort } from '../support/net.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The bound: the attack once took the edge to 3.4 GiB. An idle local edge holds ~180 MiB; refusing
 * ~3,000 offers of 60 KiB a second leaves ~200 MiB of garbage between collections (peak ~400 MiB).
 */
const RSS_BOUND_MIB = 600;
const ATTACK_MS = 15_000;

interface Answer {
  status: number;
  code: string | undefined;
  location: string | undefined;
  retryAfter: string | undefined;
  ms: number;
}

/** One WHIP request from a chosen loopback source address. */
function whip(url: string, method: 'POST' | 'DELETE', from: string, body?: string): Promise<Answer> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        localAddress: from,
        agent: false,
        headers: body === undefined ? {} : { 'content-type': 'application/sdp' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let code: string | undefined;
          if (/problem\+json/.test(String(res.headers['content-type'])))
            code = (JSON.parse(text) as { code?: string }).code;
          resolve({
            status: res.statusCode ?? 0,
            code,
            location: res.headers.location,
            retryAfter: res.headers['retry-after'] as string | undefined,
            ms: performance.now() - began,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Resident memory of a process, MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) / 1024;
}

/** The local addresses of a process's UDP sockets (Linux /proc: socket inodes → /proc/net/udp*). */
function udpBindings(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const bound: string[] = [];
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9]!)) continue;
      const [hex, port] = fields[1]!.split(':');
      const address =
        hex!.length === 8
          ? hex!
              .match(/../g)!
              .reverse()
              .map((byte) => Number.parseInt(byte, 16))
              .join('.')
          : `[${hex}]`;
      bound.push(`${address}:${Number.parseInt(port!, 16)}`);
    }
  }
  return bound;
}

const percentile = (values: number[], p: number) =>
  values.length === 0 ? Number.NaN : [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * p)]!;

describe('bounded cost per offer and per client (local edge, production defaults)', () => {
  let edge: ChildProcess;
  let whipUrl = '';
  let output = '';

  before(async () => {
    const httpPort = await freeTcpPort();
    const relayPort = await freeUdpPort();
    edge = spawn(
      process.execPath,
      ['local/main.ts', '--http-port', String(httpPort), '--relay-port', String(relayPort)],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    edge.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    edge.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const deadline = Date.now() + 30_000;
    while (!/^\s*WHIP\s+http:/m.test(output)) {
      assert.ok(Date.now() < deadline && edge.exitCode === null, `the local edge did not start:\n${output}`);
      await sleep(50);
    }
    whipUrl = /^\s*WHIP\s+(http:\/\/\S+)/m.exec(output)![1]!;
  });
  after(() => {
    edge?.kill('SIGKILL');
  });

  test('every UDP socket of the local edge, the relay tunnel too, is bound to --host (127.0.0.1)', () => {
    const bound = udpBindings(edge.pid!);
    // The relay's public socket, its tunnel socket and the transceiver's tunnel socket at least.
    assert.ok(bound.length >= 3, `UDP sockets: ${bound.join(', ')}`);
    for (const address of bound) assert.match(address, /^127\.0\.0\.1:\d+$/, `bound: ${bound.join(', ')}`);
  });

  test('700-section offers from 4 senders for 15 s, a one-client burst into its caps, a normal call meanwhile', async (t) => {
    const pid = edge.pid!;
    const idle = rssMiB(pid);
    let peak = idle;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB(pid));
    }, 100);

    // 4 senders, each from its own range of source addresses, as fast as answers come.
    const offer = manyAudioSectionsOffer(700);
    assert.ok(Buffer.byteLength(offer) < 64 * 1024, 'the offer fits the body limit');
    const stopAt = Date.now() + ATTACK_MS;
    const codes = new Map<string, number>();
    const attackMs: number[] = [];
    const senders = [1, 2, 3, 4].map(async (sender) => {
      for (let n = 0; Date.now() < stopAt; n++) {
        const from = `127.${sender}.${Math.floor(n / 250) % 250}.${(n % 250) + 1}`;
        const answer = await whip(whipUrl, 'POST', from, offer);
        const key = `${answer.status} ${answer.code}`;
        codes.set(key, (codes.get(key) ?? 0) + 1);
        attackMs.push(answer.ms);
      }
    });

    // A normal call from 127.0.0.1, 2 s into the attack: the werift command-line caller.
    await sleep(2_000);
    const call = spawn(process.execPath, ['cli/call.ts', '--url', whipUrl, '--duration', '3', '--json'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let callOut = '';
    call.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      callOut += chunk;
    });
    call.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      callOut += chunk;
    });
    const callExit = new Promise<number | null>((resolve) => call.once('exit', resolve));

    // One client (127.0.0.9) meanwhile: valid offers until its session cap (10 by default), a
    // DELETE that frees a slot at once, then offers until its rate (burst 20) runs out.
    const client = '127.0.0.9';
    const burst: Answer[] = [];
    for (let i = 0; i < 30; i++) burst.push(await whip(whipUrl, 'POST', client, CHROME_AUDIO_OFFER));
    const placed = burst.filter((answer) => answer.status === 201);
    const capped = burst.findIndex((answer) => answer.code === 'too-many-sessions');
    assert.equal(
      placed.length,
      10,
      `statuses: ${burst.map((answer) => answer.code ?? answer.status).join(' ')}`,
    );
    assert.equal(capped, 10, 'the 11th offer meets the session cap');
    assert.equal(burst[capped]!.status, 429);
    assert.equal(burst[capped]!.retryAfter, '5');
    const limited = burst.find((answer) => answer.code === 'rate-limited');
    assert.ok(limited, 'the burst runs into the rate limit');
    assert.ok(Number(limited.retryAfter) >= 1);
    assert.equal(burst.filter((answer) => answer.status === 201 || answer.status === 429).length, 30);
    // The rate's tokens come back at one a second; a DELETE through signaling frees a slot at once.
    const location = new URL(placed[0]!.location!, whipUrl).toString();
    assert.equal((await whip(location, 'DELETE', client)).status, 200);
    await sleep(1_100);
    const again = await whip(whipUrl, 'POST', client, CHROME_AUDIO_OFFER);
    assert.equal(again.status, 201, `after the DELETE: ${again.status} ${again.code}`);

    const exit = await callExit;
    await Promise.all(senders);
    clearInterval(sampler);
    peak = Math.max(peak, rssMiB(pid));

    const figures = JSON.parse(callOut.trimEnd().split('\n').at(-1)!) as {
      connected: boolean;
      echoDetected: boolean;
      setupMs: number;
    };
    const attacks = attackMs.length;
    t.diagnostic(
      `RSS: idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB during the attack (bound ${RSS_BOUND_MIB} MiB)`,
    );
    t.diagnostic(
      `700-section offers: ${attacks} in ${ATTACK_MS / 1000} s from 4 senders (${[...codes].map(([key, count]) => `${key}: ${count}`).join(', ')}); answered in p50 ${percentile(attackMs, 0.5).toFixed(1)} ms, p99 ${percentile(attackMs, 0.99).toFixed(1)} ms`,
    );
    t.diagnostic(
      `normal call during the attack: connected ${figures.connected}, echo ${figures.echoDetected}, setup ${figures.setupMs} ms`,
    );
    t.diagnostic(
      `one-client burst: ${burst.map((answer) => answer.code ?? answer.status).join(' ')}, then DELETE and 201`,
    );
    assert.equal(exit, 0, `the normal call failed:\n${callOut}`);
    assert.equal(figures.connected, true);
    assert.equal(figures.echoDetected, true);
    assert.ok(attacks > 100, `the senders kept sending (${attacks} offers)`);
    assert.equal(
      codes.get('400 offer-too-complex'),
      attacks,
      'every 700-section offer refused as offer-too-complex',
    );
    assert.ok(peak < RSS_BOUND_MIB, `peak RSS ${peak.toFixed(0)} MiB`);
  });
});
