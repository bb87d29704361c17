import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTransceiverMetrics, EVENT_LOOP_SAMPLING_MS, type TransceiverGauges } from './metrics.ts';

function gaugesWith(sessions: () => number): TransceiverGauges {
  return {
    sessions,
    capacity: () => 200,
    draining: () => false,
    queuedMs: () => [],
    tunnelSendDrops: () => new Map(),
    pathsValidated: () => 0,
    mediaPathsBound: () => 0,
    callerAudio: () => ({ decodedByBandwidth: [0, 0, 7, 0, 1], dtxFrames: 42 }),
  };
}

const value = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1]);

test('memory: rss, heap and the idle baseline reported; per session = growth over idle / sessions', async () => {
  let sessions = 0;
  const metrics = createTransceiverMetrics(gaugesWith(() => sessions));
  const idle = await metrics.registry.metrics();
  const idleRss = value(idle, /voice_edge_transceiver_memory_bytes\{kind="idle_rss"\} (\d+)/);
  assert.ok(value(idle, /voice_edge_transceiver_memory_bytes\{kind="rss"\} (\d+)/) >= idleRss);
  assert.ok(value(idle, /voice_edge_transceiver_memory_bytes\{kind="heap_used"\} (\d+)/) > 0);
  assert.equal(value(idle, /^voice_edge_transceiver_memory_per_session_bytes (\S+)$/m), 0);
  // 64 MiB held while 4 "sessions" are live: each is charged about a quarter of the growth.
  const held = Buffer.alloc(64 * 1024 * 1024, 1);
  sessions = 4;
  const busy = await metrics.registry.metrics();
  const perSession = value(busy, /^voice_edge_transceiver_memory_per_session_bytes (\S+)$/m);
  const rss = value(busy, /voice_edge_transceiver_memory_bytes\{kind="rss"\} (\d+)/);
  assert.equal(value(busy, /voice_edge_transceiver_memory_bytes\{kind="idle_rss"\} (\d+)/), idleRss);
  assert.ok(perSession >= 16 * 1024 * 1024 * 0.9, `per session ${perSession}`);
  assert.ok(Math.abs(perSession - (rss - idleRss) / 4) < 4 * 1024 * 1024);
  assert.equal(held[held.length - 1], 1);
});

test('frames callers did not send in DTX are counted', async () => {
  const text = await createTransceiverMetrics(gaugesWith(() => 0)).registry.metrics();
  assert.equal(value(text, /^voice_edge_transceiver_caller_dtx_frames_total (\d+)$/m), 42);
});

test('Opus packets decoded are counted by bandwidth', async () => {
  const text = await createTransceiverMetrics(gaugesWith(() => 0)).registry.metrics();
  assert.equal(
    value(text, /voice_edge_transceiver_opus_packets_decoded_total\{bandwidth="wideband"\} (\d+)/),
    7,
  );
  assert.equal(
    value(text, /voice_edge_transceiver_opus_packets_decoded_total\{bandwidth="fullband"\} (\d+)/),
    1,
  );
  assert.equal(
    value(text, /voice_edge_transceiver_opus_packets_decoded_total\{bandwidth="narrowband"\} (\d+)/),
    0,
  );
});

test('the event-loop lag gauges read the sampling interval on an idle loop (readers subtract it)', async () => {
  const metrics = createTransceiverMetrics(gaugesWith(() => 0));
  await metrics.registry.metrics(); // resets the monitor's histogram
  await sleep(EVENT_LOOP_SAMPLING_MS * 30);
  const idle = await metrics.registry.metrics();
  const p50Ms = value(idle, /^voice_edge_transceiver_nodejs_eventloop_lag_p50_seconds (\S+)$/m) * 1000;
  // An idle loop delays nothing: were the monitor's readings delays, p50 would be near 0 and the
  // benchmark's subtraction (bench/transceiver/run.ts, loopDelayMs) would understate the lag.
  assert.ok(p50Ms >= EVENT_LOOP_SAMPLING_MS * 0.8, `idle p50 ${p50Ms} ms`);
  // A loop held for 40 ms: the sample after it spans the hold (a timer due within the interval
  // waited 30-40 ms of it).
  await metrics.registry.metrics();
  await sleep(EVENT_LOOP_SAMPLING_MS * 3);
  const until = performance.now() + 40;
  while (performance.now() < until);
  await sleep(EVENT_LOOP_SAMPLING_MS * 3);
  const held = await metrics.registry.metrics();
  const maxMs = value(held, /^voice_edge_transceiver_nodejs_eventloop_lag_max_seconds (\S+)$/m) * 1000;
  assert.ok(maxMs >= 40, `max ${maxMs} ms after a 40 ms hold`);
});
