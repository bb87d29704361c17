// Prometheus metrics of a transceiver.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { OPUS_BANDWIDTHS } from '../audio/opus-codec.ts';
import type { CallQuality } from './call.ts';

export interface TransceiverMetrics {
  readonly registry: Registry;
  readonly sessionsCreated: Counter;
  readonly sessionsEnded: Counter<'reason'>;
  readonly sessionsFailed: Counter<'code'>;
  readonly setupSeconds: Histogram;
  readonly tunnelDrops: Counter<'reason'>;
  readonly backendDrops: Counter<'reason'>;
  readonly backendClears: Counter;
  readonly backendClearedSeconds: Counter;
  /** Backend audio dropped to shed a standing delay toward callers. */
  readonly backendShedSeconds: Counter;
  /** Time a frame spends inside the transceiver, by direction (to_backend, to_client). */
  readonly audioLatency: Histogram<'direction'>;
  observeQuality(quality: CallQuality): void;
}

/** Counts of callers' audio since start, summed over calls (audio-bridge.ts stats). */
export interface CallerAudioCounts {
  /** Packets decoded, by Opus bandwidth (OPUS_BANDWIDTHS order). */
  decodedByBandwidth: number[];
  /** Frames callers did not send, in DTX, made up for their backends. */
  dtxFrames: number;
}

export function emptyCallerAudio(): CallerAudioCounts {
  return { decodedByBandwidth: OPUS_BANDWIDTHS.map(() => 0), dtxFrames: 0 };
}

/** Adds `counts` into `totals`. */
export function addCallerAudio(totals: CallerAudioCounts, counts: CallerAudioCounts): void {
  counts.decodedByBandwidth.forEach((count, index) => {
    totals.decodedByBandwidth[index]! += count;
  });
  totals.dtxFrames += counts.dtxFrames;
}

export interface TransceiverGauges {
  sessions(): number;
  capacity(): number;
  draining(): boolean;
  /** Milliseconds of backend audio queued for clients, per call. */
  queuedMs(): number[];
  /** Session packets not sent to clients, by reason (tunnel-router.ts), and paths validated. */
  tunnelSendDrops(): ReadonlyMap<string, number>;
  pathsValidated(): number;
  /** Client addresses bound by the client's verified SRTP (NAT rebinding found by its media). */
  mediaPathsBound(): number;
  callerAudio(): CallerAudioCounts;
}

/**
 * How often the event loop's delay is sampled for `nodejs_eventloop_lag_*` (prom-client's default,
 * stated here because readers must subtract it): Node's `monitorEventLoopDelay` records the time
 * between two samples of its timer, so an idle loop reads this much, not 0, and a loop that let a
 * timer wait 5 ms reads 15 ms (prom-client issue #370). The loop's own delay is the reading minus
 * this.
 */
export const EVENT_LOOP_SAMPLING_MS = 10;

export function createTransceiverMetrics(gauges: TransceiverGauges): TransceiverMetrics {
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: 'voice_edge_transceiver_',
    eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLING_MS,
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('voice_edge_transceiver_sessions', 'Calls in progress (including ones being negotiated)', () =>
    gauges.sessions(),
  );
  gauge('voice_edge_transceiver_capacity', 'Most calls this process takes', () => gauges.capacity());
  gauge('voice_edge_transceiver_draining', '1 while draining (no new calls)', () =>
    gauges.draining() ? 1 : 0,
  );
  gauge(
    'voice_edge_transceiver_playout_queue_max_seconds',
    'Longest backend audio queue of any call',
    () => Math.max(0, ...gauges.queuedMs()) / 1000,
  );
  gauge(
    'voice_edge_transceiver_playout_queue_seconds',
    'Backend audio queued for all calls',
    () => gauges.queuedMs().reduce((total, ms) => total + ms, 0) / 1000,
  );
  new Gauge({
    name: 'voice_edge_transceiver_tunnel_send_drops',
    help: 'Packets of sessions not sent to a client address since start, by reason (amplification_limit: an unvalidated path spent its budget)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      for (const [reason, count] of gauges.tunnelSendDrops()) this.set({ reason }, count);
    },
  });
  gauge(
    'voice_edge_transceiver_paths_validated',
    'Client paths validated by an answered challenge since start (first paths and moves)',
    () => gauges.pathsValidated(),
  );
  gauge(
    'voice_edge_transceiver_media_paths_bound',
    "Client addresses bound by the client's verified SRTP since start (a NAT rebinding found by its media, then challenged)",
    () => gauges.mediaPathsBound(),
  );
  new Counter({
    name: 'voice_edge_transceiver_opus_packets_decoded_total',
    help: "Callers' Opus packets decoded, by the audio bandwidth they carried: wider than the backend's rate means a caller ignored the answer's maxplaybackrate (decoded at a cost, then thrown away)",
    labelNames: ['bandwidth'],
    registers: [registry],
    collect() {
      this.reset();
      gauges.callerAudio().decodedByBandwidth.forEach((count, index) => {
        this.inc({ bandwidth: OPUS_BANDWIDTHS[index]! }, count);
      });
    },
  });
  new Counter({
    name: 'voice_edge_transceiver_caller_dtx_frames_total',
    help: "20 ms frames callers did not send while their user was silent (Opus DTX, asked for by the answer's usedtx=1): made up for the backend as silence, not counted as loss",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gauges.callerAudio().dtxFrames);
    },
  });
  // Memory per session, estimated: the process's resident memory above what it held with no session
  // (the lowest figure seen while idle), shared out over the live sessions. What bounds it: the
  // offer shape limits (a few m= sections, docs/whip.md#limits), the playout queue per call and the
  // STUN limits per session (docs/transceiver.md#memory).
  let idleRss = process.memoryUsage.rss();
  new Gauge({
    name: 'voice_edge_transceiver_memory_bytes',
    help: 'Process memory: rss (resident), heap_used (V8), external (buffers outside the heap), idle_rss (lowest rss seen with no session)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const usage = process.memoryUsage();
      if (gauges.sessions() === 0) idleRss = Math.min(idleRss, usage.rss);
      this.set({ kind: 'rss' }, usage.rss);
      this.set({ kind: 'heap_used' }, usage.heapUsed);
      this.set({ kind: 'external' }, usage.external);
      this.set({ kind: 'idle_rss' }, idleRss);
    },
  });
  gauge(
    'voice_edge_transceiver_memory_per_session_bytes',
    'Estimated memory per live session: (rss - idle rss) / sessions; 0 with no session',
    () => {
      const sessions = gauges.sessions();
      return sessions === 0 ? 0 : Math.max(0, process.memoryUsage.rss() - idleRss) / sessions;
    },
  );
  const rtt = new Histogram({
    name: 'voice_edge_transceiver_rtt_seconds',
    help: 'Round-trip time to clients from RTCP receiver reports, sampled per call',
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
    registers: [registry],
  });
  const jitter = new Histogram({
    name: 'voice_edge_transceiver_jitter_seconds',
    help: 'Interarrival jitter of client audio (RTCP), sampled per call',
    buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1],
    registers: [registry],
  });
  const loss = new Histogram({
    name: 'voice_edge_transceiver_loss_ratio',
    help: 'Fraction of client audio packets lost, sampled per call',
    buckets: [0.001, 0.01, 0.02, 0.05, 0.1, 0.2],
    registers: [registry],
  });
  return {
    registry,
    audioLatency: new Histogram({
      name: 'voice_edge_transceiver_audio_latency_seconds',
      help: 'Time audio spends in the transceiver: to_backend, client packet arrived → its PCM sent to the backend; to_client, backend audio arrived → its RTP sent',
      labelNames: ['direction'],
      buckets: [
        0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1,
        0.2, 0.5,
      ],
      registers: [registry],
    }),
    sessionsCreated: new Counter({
      name: 'voice_edge_transceiver_sessions_created_total',
      help: 'Calls answered',
      registers: [registry],
    }),
    sessionsEnded: new Counter({
      name: 'voice_edge_transceiver_sessions_ended_total',
      help: 'Calls ended, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    sessionsFailed: new Counter({
      name: 'voice_edge_transceiver_sessions_failed_total',
      help: 'Offers that did not become calls, by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    setupSeconds: new Histogram({
      name: 'voice_edge_transceiver_setup_seconds',
      help: 'Offer received to DTLS connected',
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    tunnelDrops: new Counter({
      name: 'voice_edge_transceiver_tunnel_drops_total',
      help: 'Tunnel datagrams not delivered to a call, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    backendDrops: new Counter({
      name: 'voice_edge_transceiver_backend_drops_total',
      help: 'What a backend sent that was not played or acted on, by reason: bad-message, bad-audio (invalid, dropped), queue-overflow (audio beyond the playout queue, oldest dropped; counted once per overflow)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    backendClears: new Counter({
      name: 'voice_edge_transceiver_backend_clears_total',
      help: "Backend clear messages (barge-in): each drops the backend's audio queued for the caller",
      registers: [registry],
    }),
    backendClearedSeconds: new Counter({
      name: 'voice_edge_transceiver_backend_cleared_seconds_total',
      help: 'Backend audio dropped by clear before the caller heard it (seconds)',
      registers: [registry],
    }),
    backendShedSeconds: new Counter({
      name: 'voice_edge_transceiver_backend_shed_seconds_total',
      help: 'Backend audio dropped to shed a standing delay toward callers (seconds): audio that was going out late for good, after a stall of this process or of the backend',
      registers: [registry],
    }),
    observeQuality(quality) {
      if (quality.rttMs !== undefined) rtt.observe(quality.rttMs / 1000);
      if (quality.jitterMs !== undefined) jitter.observe(quality.jitterMs / 1000);
      if (quality.lossRatio !== undefined) loss.observe(quality.lossRatio);
    },
  };
}
