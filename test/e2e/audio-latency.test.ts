// How long audio spends in the edge, seen from a caller: a werift caller beeps every 200 ms through
// the whole edge (relay, transceiver, a zero-delay echo agent) and times each beep's echo. Then the
// transceiver is stopped for 300 ms (SIGSTOP) mid-call: the echo latency must come back to within
// 20 ms of its level before the stall within 2 s (docs/transceiver.md#audio: a standing backlog is
// shed), where a fixed playout queue used to keep the stall's delay for the rest of the call.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RTCPeerConnection, RtpHeader, RtpPacket, useOPUS } from 'werift';
import { OpusFrameDecoder, OpusFrameEncoder } from '../../transceiver/audio/opus-codec.ts';
import { Pacer } from '../../transceiver/audio/pacer.ts';
import { OpusRtpPacketizer } from '../../transceiver/audio/rtp-packetizer.ts';
import { rms, sine } from '../../transceiver/audio/tone.ts';
import { Edge } from '../support/edge.ts';

const RATE = 48_000;
const BEEP_EVERY_FRAMES = 10;

class BeepCaller {
  readonly pc = new RTCPeerConnection({
    iceServers: [],
    iceUseIpv4: true,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    bundlePolicy: 'max-bundle',
    codecs: { audio: [useOPUS()], video: [] },
  });
  readonly #audio = this.pc.addTransceiver('audio', { direction: 'sendrecv' });
  readonly #encoder = new OpusFrameEncoder(RATE);
  readonly #decoder = new OpusFrameDecoder(RATE);
  readonly #packetizer = new OpusRtpPacketizer();
  readonly #pacer = new Pacer(() => this.#send());
  readonly #beep = sine(1000, RATE, 20, 0.5);
  readonly #quiet = Buffer.alloc(1920);
  #frame = 0;
  /** When each beep was sent (ms, performance.now()). */
  readonly beepsSent: number[] = [];
  /** Echo latency of each beep heard: [heard at, latency ms]. */
  readonly echoes: [number, number][] = [];
  #loud = false;

  constructor() {
    this.#audio.onTrack.subscribe((track) =>
      track.onReceiveRtp.subscribe((rtp) => {
        const now = performance.now();
        const loud = rms(this.#decoder.decode(rtp.payload)) > 0.05;
        if (loud && !this.#loud) {
          const sent = this.beepsSent.findLast((at) => at <= now);
          if (sent !== undefined) this.echoes.push([now, now - sent]);
        }
        this.#loud = loud;
      }),
    );
  }

  async connect(whipUrl: string): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    while (this.pc.iceGatheringState !== 'complete') await sleep(20);
    const response = await fetch(whipUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: this.pc.localDescription!.sdp,
    });
    assert.equal(response.status, 201, await response.clone().text());
    await this.pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    const deadline = Date.now() + 15_000;
    while (this.pc.connectionState !== 'connected') {
      assert.ok(Date.now() < deadline, `not connected (${this.pc.connectionState})`);
      await sleep(10);
    }
    this.#pacer.start();
  }

  #send(): void {
    const beep = this.#frame++ % BEEP_EVERY_FRAMES === 0;
    if (beep) this.beepsSent.push(performance.now());
    const fields = this.#packetizer.packetize(this.#encoder.encode(beep ? this.#beep : this.#quiet));
    this.#audio.sender
      .sendRtp(
        new RtpPacket(
          new RtpHeader({
            sequenceNumber: fields.sequenceNumber,
            timestamp: fields.timestamp,
            marker: fields.marker,
            payloadType: fields.payloadType,
          }),
          fields.payload,
        ),
      )
      .catch(() => {});
  }

  async close(): Promise<void> {
    this.#pacer.stop();
    await this.pc.close().catch(() => {});
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

describe('audio latency through the edge', { timeout: 120_000 }, () => {
  let edge: Edge;
  let caller: BeepCaller;

  before(async () => {
    edge = await Edge.start({ echoDelayMs: 0 });
    caller = new BeepCaller();
    await caller.connect(edge.whipUrl);
  });

  after(async () => {
    await caller?.close();
    await edge?.stop();
  });

  test('the echo latency returns to its level within 2 s of a 300 ms stall of the transceiver', async () => {
    await sleep(3_000);
    const before = caller.echoes.filter(([at]) => at > performance.now() - 2_000).map(([, ms]) => ms);
    console.log(`# before the stall: ${before.map((ms) => ms.toFixed(0)).join(' ')}`);
    assert.ok(before.length >= 8, `only ${before.length} echoes heard before the stall`);
    const baseline = median(before);
    const pid = edge.transceivers[0]!.service.child.pid!;
    process.kill(pid, 'SIGSTOP');
    await sleep(300);
    process.kill(pid, 'SIGCONT');
    const resumedAt = performance.now();
    await sleep(4_000);
    const afterStall = caller.echoes.filter(([at]) => at > resumedAt);
    // Recovered: from this echo on, every one is within 20 ms of the baseline.
    let recoveredAt: number | undefined;
    for (let i = afterStall.length - 1; i >= 0; i--) {
      if (Math.abs(afterStall[i]![1] - baseline) > 20) break;
      recoveredAt = afterStall[i]![0];
    }
    const worst = Math.max(...afterStall.map(([, ms]) => ms));
    console.log(
      `# after the stall: ${afterStall.map(([at, ms]) => `${(at - resumedAt).toFixed(0)}:${ms.toFixed(0)}`).join(' ')}`,
    );
    console.log(
      `# echo latency (zero-delay agent, 1 call): ${baseline.toFixed(1)} ms p50 before the stall; worst after it ${worst.toFixed(0)} ms; back within 20 ms ${recoveredAt === undefined ? 'never' : `${(recoveredAt - resumedAt).toFixed(0)} ms after the stall`}`,
    );
    assert.ok(recoveredAt !== undefined, 'the latency never came back');
    assert.ok(recoveredAt - resumedAt <= 2_000, `recovered ${(recoveredAt - resumedAt).toFixed(0)} ms after`);
    assert.ok(afterStall.length >= 15, 'the echo went on after the stall');
  });
});
