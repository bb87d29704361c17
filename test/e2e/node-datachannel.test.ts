// A third kind of WebRTC client, libdatachannel (node-datachannel's native API), makes a WHIP call to
// the whole edge: it builds its own offer (Opus on payload type 111, a data channel, BUNDLE,
// rtcp-mux), packetizes its Opus frames itself with libdatachannel's RtpPacketizer, depacketizes
// what it receives with werift's RtpPacket, and hangs up with DELETE.
//
// Unlike libwebrtc there is no audio device layer here: the test encodes and decodes Opus itself,
// so it also checks the edge with a client that has no jitter buffer, no NetEq, no RTX and no
// header extensions of any kind.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Decoder, Encoder } from '@evan/opus';
import nodeDataChannel, {
  type DataChannel,
  type PeerConnection,
  type RtpPacketizationConfig,
  type Track,
} from 'node-datachannel';
import { RtpPacket } from 'werift';
import { dominantFrequency, rms, sine } from '../../audio/tone.ts';
import { Edge } from '../support/edge.ts';

const ECHO_DELAY_MS = 200;
const RATE = 48_000;
const FRAME_MS = 20;
const FRAME_SAMPLES = (RATE * FRAME_MS) / 1000; // 960: the RTP timestamp step (Opus clock is 48 kHz)
const TONE_HZ = 440;
const TONE_MS = 3_000;
const FRAMES = TONE_MS / FRAME_MS;
const OPUS_PT = 111;
/** A decoded frame louder than this carries the tone (sent at 0.5 full scale, rms ≈ 0.35). */
const TONE_RMS = 0.05;

/** Polls `condition` every 10 ms until it holds; rejects naming `what` after `timeoutMs`. */
async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** The `a=fmtp` parameters of `payloadType` in `sdp` (first occurrence), keys lower-cased. */
function fmtpOf(sdp: string, payloadType: number): Map<string, string> {
  const line = sdp.split(/\r?\n/).find((l) => l.startsWith(`a=fmtp:${payloadType} `));
  const params = new Map<string, string>();
  for (const pair of line?.slice(line.indexOf(' ') + 1).split(';') ?? []) {
    const [key, value = ''] = pair.trim().split('=');
    if (key) params.set(key.toLowerCase(), value.trim());
  }
  return params;
}

interface Received {
  readonly at: number;
  readonly seq: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly payloadType: number;
  /** Decoded, downmixed to mono PCM16LE at 48 kHz. */
  readonly pcm: Buffer;
  readonly level: number;
}

describe('a libdatachannel (node-datachannel) client over WHIP', () => {
  let edge: Edge | undefined;
  let pc: PeerConnection | undefined;
  let track: Track | undefined;
  let channel: DataChannel | undefined;
  let rtpConfig: RtpPacketizationConfig | undefined;
  let answer = '';
  let location = '';
  const received: Received[] = [];
  const messages: string[] = [];
  const decodeErrors: string[] = [];
  const states: string[] = [];
  let connectedAt = Number.NaN;

  before(async () => {
    edge = await Edge.start({ echoDelayMs: ECHO_DELAY_MS });
  });

  afterEach((t) => {
    // The services' own logs are what tells an edge failure from a client one. (`passed` is there
    // at run time since Node 21, not yet in @types/node.)
    if ((t as { passed?: boolean }).passed === false && edge) t.diagnostic(`edge output:\n${edge.output}`);
  });

  after(async () => {
    try {
      channel?.close();
      track?.close();
      pc?.close();
      nodeDataChannel.cleanup();
    } finally {
      await edge?.stop();
    }
  });

  test('offers Opus/111 sendrecv + a data channel, gets an ICE-lite answer and connects via the relay', {
    timeout: 30_000,
  }, async (t) => {
    pc = new nodeDataChannel.PeerConnection('voice-edge-e2e', {
      iceServers: [],
      disableAutoNegotiation: true,
    });
    pc.onStateChange((state) => {
      states.push(state);
      if (state === 'connected' && Number.isNaN(connectedAt)) connectedAt = performance.now();
    });

    const ssrc = randomInt(1, 2 ** 32 - 1);
    const audio = new nodeDataChannel.Audio('0', 'SendRecv');
    audio.addOpusCodec(OPUS_PT);
    audio.addSSRC(ssrc, 'ndc-e2e', 'ndc-stream', 'ndc-audio');
    track = pc.addTrack(audio);
    // libdatachannel's generic RtpPacketizer turns each message into one RTP packet: our SSRC and
    // payload type, a sequence number it increments, the timestamp we set in rtpConfig per frame.
    rtpConfig = new nodeDataChannel.RtpPacketizationConfig(ssrc, 'ndc-e2e', OPUS_PT, RATE);
    const packetizer = new nodeDataChannel.RtpPacketizer(rtpConfig);
    packetizer.addToChain(new nodeDataChannel.RtcpSrReporter(rtpConfig));
    packetizer.addToChain(new nodeDataChannel.RtcpReceivingSession());
    track.setMediaHandler(packetizer);

    channel = pc.createDataChannel('events');
    channel.onMessage((message) => messages.push(String(message)));

    pc.setLocalDescription('offer');
    await waitFor('local ICE gathering to complete', () => pc!.gatheringState() === 'complete', 5_000);
    const offer = pc.localDescription()!.sdp;
    assert.match(offer, /^a=group:BUNDLE 0 1\r?$/m);
    assert.match(offer, /^a=rtcp-mux\r?$/m);
    assert.match(offer, /^a=rtpmap:111 opus\/48000\/2\r?$/m);
    assert.match(offer, /^a=sendrecv\r?$/m);
    assert.match(offer, /^m=application \d+ UDP\/DTLS\/SCTP webrtc-datachannel\r?$/m);

    // Decoder channels as the answer signals (sprop-stereo); set once the answer is in.
    let decoder: Decoder | undefined;
    track.onMessage((message) => {
      const at = performance.now();
      try {
        const packet = RtpPacket.deSerialize(Buffer.from(message));
        const { payloadType } = packet.header;
        // RTCP (types 200-206, 72-78 once the marker bit is masked off) is consumed by
        // RtcpReceivingSession; skip it anyway should any get through.
        if (packet.header.version !== 2 || (payloadType >= 72 && payloadType <= 78) || !decoder) return;
        const decoded = decoder.decode(packet.payload);
        const samples = new Int16Array(decoded.buffer, decoded.byteOffset, decoded.byteLength >> 1);
        const frames = samples.length / decoder.channels;
        if (frames !== FRAME_SAMPLES)
          decodeErrors.push(`seq ${packet.header.sequenceNumber}: ${frames} samples`);
        const pcm = Buffer.alloc(frames * 2);
        for (let i = 0; i < frames; i++) pcm.writeInt16LE(samples[i * decoder.channels]!, i * 2);
        received.push({
          at,
          seq: packet.header.sequenceNumber,
          timestamp: packet.header.timestamp,
          ssrc: packet.header.ssrc,
          payloadType,
          pcm,
          level: rms(pcm),
        });
      } catch (error) {
        decodeErrors.push(`${message.length} bytes: ${(error as Error).message}`);
      }
    });

    const posted = performance.now();
    const response = await fetch(edge!.whipUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: offer,
      signal: AbortSignal.timeout(10_000),
    });
    answer = await response.text();
    assert.equal(response.status, 201, answer);
    assert.match(response.headers.get('content-type') ?? '', /^application\/sdp/);
    location = response.headers.get('location') ?? '';
    assert.match(location, /^\/whip\/sessions\/100\./);

    assert.match(answer, /^a=ice-lite\r?$/m);
    assert.match(answer, /^a=rtpmap:111 opus\/48000\/2\r?$/m);
    const candidates = answer.match(/^a=candidate:.*$/gm) ?? [];
    assert.ok(candidates.length > 0, 'the answer has candidates');
    for (const candidate of candidates) {
      assert.match(candidate, new RegExp(` 127\\.0\\.0\\.1 ${edge!.relayPort} typ host`), candidate);
    }
    decoder = new Decoder({
      channels: fmtpOf(answer, OPUS_PT).get('sprop-stereo') === '1' ? 2 : 1,
      sample_rate: RATE,
    });

    pc.setRemoteDescription(answer, 'answer');
    await waitFor(
      'the peer connection to connect',
      () => {
        const state = pc!.state();
        if (state === 'failed' || state === 'closed') throw new Error(`peer connection ${state}`);
        return state === 'connected' && track!.isOpen();
      },
      15_000,
    );
    const setupMs = connectedAt - posted;
    const pair = pc.getSelectedCandidatePair();
    assert.equal(pair?.remote.address, '127.0.0.1');
    assert.equal(pair?.remote.port, edge!.relayPort);
    assert.equal((await edge!.status(0)).sessions, 1);
    t.diagnostic(`setup (offer POST → connected): ${setupMs.toFixed(0)} ms`);
  });

  // The round trip measured here is ~1 s rather than a few ms: werift 0.25.2's DTLS sends its
  // Finished as epoch 1 with the handshake's running record number (6) and only then restarts the
  // count at 0 (lib/dtls/src/flight/client/flight5.js and server/flight6.js, sendFinished), so its
  // 6th application-data record reuses (epoch 1, seq 6) and libdatachannel's OpenSSL drops it as a
  // replay. That record is the first echo; werift's SCTP retransmits it after its RTO (~900 ms).
  test('data channel messages come back prefixed "echo: "', { timeout: 15_000 }, async (t) => {
    assert.ok(channel, 'connected');
    await waitFor('the data channel to open', () => channel!.isOpen(), 10_000);
    const text = `hello from libdatachannel ${randomInt(1e9)}`;
    const sent = performance.now();
    assert.ok(channel.sendMessage(text));
    await waitFor(`"echo: ${text}"`, () => messages.includes(`echo: ${text}`), 10_000);
    t.diagnostic(`data channel round trip: ${(performance.now() - sent).toFixed(1)} ms`);
  });

  test('a 440 Hz tone sent as Opus RTP comes back as 440 Hz after the echo delay', {
    timeout: 30_000,
  }, async (t) => {
    assert.ok(track && rtpConfig, 'connected');
    // Stereo if the answer asks to receive stereo (RFC 7587 `stereo`); the same tone in both channels.
    const channels = fmtpOf(answer, OPUS_PT).get('stereo') === '1' ? 2 : 1;
    const encoder = new Encoder({ channels, sample_rate: RATE, application: 'audio' });
    const tone = sine(TONE_HZ, RATE, TONE_MS);
    const frame = Buffer.alloc(FRAME_SAMPLES * 2 * channels);
    const receivedBefore = received.length;

    const firstSent = performance.now();
    for (let i = 0; i < FRAMES; i++) {
      const wait = firstSent + i * FRAME_MS - performance.now();
      if (wait > 0) await sleep(wait);
      for (let s = 0; s < FRAME_SAMPLES; s++) {
        const sample = tone.readInt16LE((i * FRAME_SAMPLES + s) * 2);
        for (let c = 0; c < channels; c++) frame.writeInt16LE(sample, (s * channels + c) * 2);
      }
      if (i > 0) rtpConfig.timestamp = (rtpConfig.timestamp + FRAME_SAMPLES) >>> 0;
      assert.ok(track.sendMessageBinary(Buffer.from(encoder.encode(frame))), `frame ${i} sent`);
    }
    const sendMs = performance.now() - firstSent;

    const echoed = () => received.slice(receivedBefore).filter((r) => r.level > TONE_RMS);
    // Everything sent is back, or the echo has ended (silence for a while after the last tone frame).
    await waitFor(
      'the echoed tone',
      () => {
        const tones = echoed();
        if (tones.length >= FRAMES) return true;
        const last = tones.at(-1);
        return last !== undefined && performance.now() - last.at > 1_000;
      },
      ECHO_DELAY_MS + TONE_MS + 10_000,
    );

    assert.deepEqual(decodeErrors, [], 'every received payload is a valid 20 ms Opus frame');
    const mine = received.slice(receivedBefore);
    assert.ok(
      mine.every((r) => r.payloadType === OPUS_PT),
      'all RTP is Opus/111',
    );
    assert.equal(new Set(mine.map((r) => r.ssrc)).size, 1, 'one SSRC from the server');
    const answerSsrc = answer.match(/^a=ssrc:(\d+) /m)?.[1];
    if (answerSsrc !== undefined)
      assert.equal(mine[0]!.ssrc, Number(answerSsrc), 'the SSRC the answer announced');

    const tones = echoed();
    const firstEchoMs = tones[0]!.at - firstSent;
    // The echo agent holds audio for ECHO_DELAY_MS after it gets it: nothing can come back sooner.
    assert.ok(firstEchoMs >= ECHO_DELAY_MS, `first echoed audio after ${firstEchoMs.toFixed(0)} ms`);
    assert.ok(firstEchoMs < ECHO_DELAY_MS + 2_000, `first echoed audio after ${firstEchoMs.toFixed(0)} ms`);
    assert.ok(tones.length >= FRAMES * 0.9, `${tones.length} of ${FRAMES} tone frames echoed`);
    // Leave out onset and tail (codec and resampler transients), measure the rest.
    const steady = Buffer.concat(tones.slice(5, -5).map((r) => r.pcm));
    const frequency = dominantFrequency(steady, RATE);
    assert.ok(Math.abs(frequency - TONE_HZ) <= 10, `echoed ${frequency.toFixed(1)} Hz`);

    // Sequence numbers over the whole call so far: how many the server sent that never arrived.
    let lost = 0;
    for (let i = 1; i < received.length; i++)
      lost += ((received[i]!.seq - received[i - 1]!.seq) & 0xffff) - 1;
    t.diagnostic(`sent ${FRAMES} frames (${channels} ch) in ${sendMs.toFixed(0)} ms`);
    t.diagnostic(`time to first echoed audio: ${firstEchoMs.toFixed(0)} ms (echo delay ${ECHO_DELAY_MS} ms)`);
    t.diagnostic(
      `echoed ${tones.length}/${FRAMES} tone frames at ${frequency.toFixed(1)} Hz, level ${rms(steady).toFixed(3)}; ` +
        `${received.length} RTP packets received, ${lost} missing`,
    );
  });

  test('DELETE on the Location ends the session on the transceiver', { timeout: 15_000 }, async (t) => {
    assert.ok(location, 'connected');
    const url = new URL(location, edge!.whipUrl);
    const response = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(5_000) });
    assert.equal(response.status, 200, await response.text());
    const deleted = performance.now();
    let sessions = -1;
    const poll = async () => {
      sessions = (await edge!.status(0)).sessions;
    };
    await poll();
    const deadline = deleted + 10_000;
    while (sessions !== 0 && performance.now() < deadline) {
      await sleep(20);
      await poll();
    }
    assert.equal(sessions, 0, 'the transceiver still counts the session');
    const ended = performance.now();
    t.diagnostic(`sessions back to 0 ${(ended - deleted).toFixed(0)} ms after DELETE`);
    // Media stops with the session. An absence can only be watched for a while: 500 ms (25 frames).
    await sleep(500);
    const late = received.filter((r) => r.at > ended + 50).length;
    assert.equal(late, 0, `${late} RTP packets arrived more than 50 ms after the session ended`);
    const again = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(5_000) });
    assert.equal(again.status, 404, 'a second DELETE finds nothing');
    await again.text();
    t.diagnostic(`client peer connection states: ${states.join(' → ')}`);
  });
});
