// `npm run bench:transceiver [-- --quick]`: how many calls one transceiver process carries, and how
// long a call takes to set up through the edge against the same werift endpoint reached directly
// (docs/benchmarks.md).
//
// The edge runs as real processes (test/support/edge.ts): backend ← transceiver ← relay ←
// signaling. The transceiver is pinned alone to one core; everything else (load generator, relay,
// backend, signaling) shares the other. Callers are werift peer connections (caller.ts) that send
// pre-encoded Opus, 50 packets/s each. Two workloads (--workload): `conversation` (the default),
// callers and the benchmark agent (conversation-agent.ts) taking turns with speech made by
// espeak-ng; `tone`, the echo agent echoing a 440 Hz tone burst a second, whose echo the callers
// time. Echo latency at 10 calls is always measured in a short phase of its own with the tone.
//
// Output: progress on stderr; on stdout a table, then, as the very last line, one JSON object.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_OPUS_APPLICATION, OPUS_APPLICATIONS } from '../../audio/opus-application.ts';
import { Pacer } from '../../cli/pacer.ts';
import { isSampleRate, SAMPLE_RATES } from '../../protocol/backend.ts';
import { Edge, Service } from '../../test/support/edge.ts';
import { freeTcpPort } from '../../test/support/net.ts';
import { parsePrometheus, type Samples } from '../../test/support/prometheus.ts';
import { EVENT_LOOP_SAMPLING_MS } from '../../transceiver/metrics.ts';
import { coreSpeedMs } from '../common/core-speed.ts';
import { ForeignSampler, foreignLoadOver } from '../common/foreign-load.ts';
import { choiceOption, isQuick, numberReader, parseBenchArgs, usageError } from '../common/options.ts';
import {
  dropsBetween,
  foreignCpuSeconds,
  ksoftirqdPids,
  readAllProcessesCpu,
  readProcessCpuSeconds,
  readRssBytes,
  readStealSeconds,
  readUdpDrops,
  sampleThreads,
} from '../common/proc.ts';
import { type ProfileSummary, summarizeProfileDir } from '../relay/profile.ts';
import type { AgentStats } from './agent-session.ts';
import {
  fitLine,
  histogramBuckets,
  pacingDelays,
  type Summary,
  summarize,
  windowQuantile,
} from './analysis.ts';
import { Caller, type SetupTimes, type Signal, type WindowCounts } from './caller.ts';
import {
  BARGE_IN_DETECT_MS,
  type ConversationOptions,
  checkConversationOptions,
  DEFAULT_CONVERSATION,
} from './conversation.ts';
import { Metronome } from './metronome.ts';
import { breakdownDir, type ProfileBreakdown } from './profile.ts';
import { directSignal, whipSignal } from './signal.ts';
import { makeVoices, NOISE_DBFS, type Voices } from './speech.ts';
import { encodeStream, TONE_HZ } from './stream.ts';
import { TWILIO_RATE } from './twilio-agent-wire.ts';

const repoRoot = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

// ---- settings ---------------------------------------------------------------------------------

const usage = `usage: npm run bench:transceiver -- [options]
  --quick                short run (about 1 min; also VOICE_EDGE_BENCH_QUICK=1)
  --skip-setup           no setup-time comparison
  --skip-capacity        no capacity search
  --setup-calls N        measured calls per path for setup time (default 30; quick 10)
  --window-ms MS         measurement window of a capacity step (default 8000; quick 3000)
  --settle-ms MS         wait between the last call set up and the window (default 3000; quick 1500)
  --start-calls N        first step (default 10)
  --max-calls N          most calls tried (default 400)
  --precision N          stop bisecting when the bracket is this narrow (default 5; quick 10)
  --max-loss R           a step passes with loss <= R each way (default 0.001 = 0.1 %)
  --max-delay-ms MS      ... and p99 pacing delay (added latency) <= MS (default 20)
  --echo-delay-ms MS     the echo agent's delay (default 0)
  --backend-protocol P   what the benchmark agent speaks: voice-edge (default, PCM16 at --sample-rate)
                         or twilio-media-streams (8000 Hz μ-law in JSON, as Twilio agents); the
                         latter measures the conversation workload only (the echo agent of the
                         setup and echo phases speaks voice-edge)
  --sample-rate HZ       the voice-edge protocol's PCM16 rate: 8000, 16000 (default), 24000, 48000
  --workload W           conversation (default): callers and the benchmark agent take turns;
                         tone: a 440 Hz burst a second, echoed by the echo agent
  --speech S             conversation voices: speech (default, espeak-ng) or tone (440 Hz)
  --talk-share R         share of the time each side talks, (0, 0.5] (default 0.5)
  --barge-in-share R     share of the agent's turns cut by barge-in (clear) (default 0.3)
  --min-turn-ms MS       shortest turn (default 2000)
  --max-turn-ms MS       longest turn (default 6000)
  --caller-dtx on|off    the transceiver asks callers for Opus DTX (audio.callerDtx; default on):
                         callers then leave silence unsent, as a browser does
  --opus-application A   the transceiver's encoder (audio.opusApplication): restricted-lowdelay
                         (default; CELT, 64 kb/s) or voip (SILK, 32 kb/s)
  --opus-complexity N    its libopus complexity, 0–10 (default: by application, 0 or 5)
  --agent-lead-ms MS     audio the agent sends at once at the start of a turn, then 20 ms per
                         20 ms (default 0: every frame paced)
  --seed N               the conversations' seed (default 1)
  --echo-calls N         calls of the echo-latency phase (default 10; 0 = skip it)
  --concurrency N        calls set up at once while filling a step (default 4)
  --transceiver-cpu N    core of the transceiver (default 0)
  --load-cpu N           core of everything else (default 1)
  --profile              run the transceiver under node --cpu-prof and print where its CPU goes
  --transceiver-node-args "ARGS"  extra Node options for the transceiver (e.g. --single-threaded-gc)
  --keep                 keep the temporary directory (profiles)`;

const options = parseBenchArgs(usage, {
  quick: { type: 'boolean', default: false },
  'skip-setup': { type: 'boolean', default: false },
  'skip-capacity': { type: 'boolean', default: false },
  'setup-calls': { type: 'string' },
  'window-ms': { type: 'string' },
  'settle-ms': { type: 'string' },
  'start-calls': { type: 'string' },
  'max-calls': { type: 'string' },
  precision: { type: 'string' },
  'max-loss': { type: 'string' },
  'max-delay-ms': { type: 'string' },
  'echo-delay-ms': { type: 'string' },
  'backend-protocol': { type: 'string', default: 'voice-edge' },
  'sample-rate': { type: 'string' },
  workload: { type: 'string', default: 'conversation' },
  speech: { type: 'string', default: 'speech' },
  'talk-share': { type: 'string' },
  'barge-in-share': { type: 'string' },
  'min-turn-ms': { type: 'string' },
  'max-turn-ms': { type: 'string' },
  'agent-lead-ms': { type: 'string' },
  'caller-dtx': { type: 'string', default: 'on' },
  'opus-application': { type: 'string', default: DEFAULT_OPUS_APPLICATION },
  'opus-complexity': { type: 'string' },
  seed: { type: 'string' },
  'echo-calls': { type: 'string' },
  concurrency: { type: 'string' },
  'transceiver-cpu': { type: 'string' },
  'load-cpu': { type: 'string' },
  profile: { type: 'boolean', default: false },
  'transceiver-node-args': { type: 'string' },
  keep: { type: 'boolean', default: false },
});
const numberOption = numberReader(options);
const choice = <T extends string>(name: 'workload' | 'speech' | 'backend-protocol', allowed: readonly T[]) =>
  choiceOption(name, options[name], allowed);

const quick = isQuick(options.quick);
const workload = choice('workload', ['conversation', 'tone'] as const);
const backendProtocol = choice('backend-protocol', ['voice-edge', 'twilio-media-streams'] as const);
const twilio = backendProtocol === 'twilio-media-streams';
if (twilio && workload === 'tone') {
  usageError(
    '--backend-protocol twilio-media-streams: the conversation workload only (the echo agent speaks voice-edge)',
  );
}
const sampleRate = numberOption('sample-rate', twilio ? TWILIO_RATE : 16_000);
if (!isSampleRate(sampleRate) || (twilio && sampleRate !== TWILIO_RATE)) {
  usageError(
    `--sample-rate: one of ${SAMPLE_RATES.join(', ')}${twilio ? `, and ${TWILIO_RATE} with twilio-media-streams` : ''}, not ${sampleRate}`,
  );
}
const conversation: ConversationOptions = {
  talkShare: numberOption('talk-share', DEFAULT_CONVERSATION.talkShare),
  bargeInShare: numberOption('barge-in-share', DEFAULT_CONVERSATION.bargeInShare),
  minTurnMs: numberOption('min-turn-ms', DEFAULT_CONVERSATION.minTurnMs),
  maxTurnMs: numberOption('max-turn-ms', DEFAULT_CONVERSATION.maxTurnMs),
};
try {
  checkConversationOptions(conversation);
} catch (error) {
  usageError((error as Error).message);
}
const settings = {
  quick,
  setupCalls: Math.max(1, numberOption('setup-calls', quick ? 10 : 30)),
  setupWarmupCalls: 3,
  windowMs: Math.max(1000, numberOption('window-ms', quick ? 3000 : 8000)),
  settleMs: numberOption('settle-ms', quick ? 1500 : 3000),
  startCalls: Math.max(1, numberOption('start-calls', 10)),
  maxCalls: Math.max(1, numberOption('max-calls', 400)),
  precision: Math.max(1, numberOption('precision', quick ? 10 : 5)),
  maxLoss: numberOption('max-loss', 0.001),
  maxDelayMs: numberOption('max-delay-ms', 20),
  echoDelayMs: numberOption('echo-delay-ms', 0),
  workload,
  speech: choice('speech', ['speech', 'tone'] as const),
  conversation,
  agentLeadMs: numberOption('agent-lead-ms', 0),
  callerDtx: choiceOption('caller-dtx', options['caller-dtx'], ['on', 'off'] as const) === 'on',
  opusApplication: choiceOption('opus-application', options['opus-application'], OPUS_APPLICATIONS),
  opusComplexity: options['opus-complexity'] === undefined ? undefined : numberOption('opus-complexity', 0),
  seed: numberOption('seed', 1),
  // The echo phase needs the echo agent, which speaks voice-edge only.
  echoCalls: twilio ? 0 : numberOption('echo-calls', 10),
  backendProtocol,
  concurrency: Math.max(1, numberOption('concurrency', 4)),
  transceiverCpu: numberOption('transceiver-cpu', 0),
  loadCpu: numberOption('load-cpu', 1),
  /** Repeat a failing step once: one stall must not decide the search. */
  retryFailures: true,
  sampleRate,
  /** The capacity search stops bisecting after this long (s), whatever its precision. */
  budgetS: quick ? 45 : 240,
  /** Setting up one step's calls may take this long (ms) before the step fails. */
  rampLimitMs: quick ? 15_000 : 30_000,
  transceiverNodeArgs: (options['transceiver-node-args'] ?? '').split(/\s+/).filter((arg) => arg !== ''),
};

const runStarted = performance.now();
function log(message: string): void {
  const seconds = ((performance.now() - runStarted) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${seconds}s] ${message}\n`);
}

// ---- processes and pinning ----------------------------------------------------------------------

let tasksetWorks = false;
function pin(pid: number | undefined, cpu: number): void {
  if (pid === undefined || !tasksetWorks) return;
  // -a: every thread (libuv's pool, V8's helpers); threads started later inherit it.
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

function setUpPinning(): boolean {
  if (availableParallelism() < 2) {
    log('warning: fewer than 2 cores: nothing is pinned, and the figures mean little');
    return false;
  }
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    tasksetWorks = true;
  } catch {
    log('warning: taskset (util-linux) not found: processes run unpinned');
    return false;
  }
  // Ourselves first: every process we start inherits the load core; the transceiver (or the direct
  // endpoint) is then moved to its own core.
  pin(process.pid, settings.loadCpu);
  return true;
}

interface DirectEndpoint {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startDirectEndpoint(): Promise<DirectEndpoint> {
  const child = spawn(process.execPath, ['bench/transceiver/direct-endpoint.ts'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`direct endpoint not ready:\n${stderr}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`direct endpoint exited with ${code}:\n${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^listening (\d+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

// ---- setup time ---------------------------------------------------------------------------------

/** The burst cycle as a browser would send it: at 48 kHz, or at the backend's rate when the answer asks. */
const streams = [...new Set([48_000, settings.sampleRate] as const)].map((rate) => encodeStream(rate));

/** One call from offer to first echoed audio, then hung up. */
async function setupCall(signal: Signal): Promise<SetupTimes> {
  const caller = new Caller({ streams, echoDelayMs: settings.echoDelayMs, cyclePhase: 0 });
  // The caller speaks (the burst) from the moment it is connected, one packet per 20 ms.
  const pacer = new Pacer(() => caller.tick());
  try {
    await caller.connect(signal);
    pacer.start();
    await caller.firstAudio(10_000);
    return { ...caller.times };
  } finally {
    pacer.stop();
    await caller.close();
  }
}

interface SetupStats {
  readonly calls: number;
  readonly failed: number;
  /** Offer sent → first echoed audio (the headline), and its parts (ms). */
  readonly firstAudioMs: Summary & { p95: number };
  readonly answerMs: Summary;
  readonly iceConnectedMs: Summary;
  readonly connectedMs: Summary;
  /** DTLS connected → first echoed audio (ms): the media path's own delay. */
  readonly connectedToAudioMs: Summary;
  /** createOffer + ICE gathering on the caller, before the clock starts (ms). */
  readonly offerMs: Summary;
}

function p95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
}

function setupStats(times: SetupTimes[], failed: number): SetupStats {
  const first = times.map((t) => t.firstAudioMs);
  return {
    calls: times.length,
    failed,
    firstAudioMs: { ...summarize(first), p95: p95(first) },
    answerMs: summarize(times.map((t) => t.answerMs)),
    iceConnectedMs: summarize(times.map((t) => t.iceConnectedMs)),
    connectedMs: summarize(times.map((t) => t.connectedMs)),
    connectedToAudioMs: summarize(times.map((t) => t.firstAudioMs - t.connectedMs)),
    offerMs: summarize(times.map((t) => t.offerMs)),
  };
}

/** Sequential calls, alternating between the paths so that drifts of the machine hit both alike. */
async function measureSetup(
  paths: Record<'edge' | 'direct', Signal>,
): Promise<Record<'edge' | 'direct', SetupStats>> {
  const times: Record<'edge' | 'direct', SetupTimes[]> = { edge: [], direct: [] };
  const failed = { edge: 0, direct: 0 };
  const total = settings.setupWarmupCalls + settings.setupCalls;
  for (let i = 0; i < total; i++) {
    for (const path of ['edge', 'direct'] as const) {
      try {
        const result = await setupCall(paths[path]);
        if (i >= settings.setupWarmupCalls) times[path].push(result);
      } catch (error) {
        failed[path]++;
        log(`  ${path} call failed: ${(error as Error).message}`);
      }
      await sleep(50);
    }
  }
  return { edge: setupStats(times.edge, failed.edge), direct: setupStats(times.direct, failed.direct) };
}

// ---- capacity -----------------------------------------------------------------------------------

interface StepRecord {
  readonly calls: number;
  readonly verdict: 'ok' | 'loss' | 'latency' | 'saturated' | 'setup' | 'load side';
  readonly windowS: number;
  /**
   * Return path (transceiver → caller): missing sequence numbers, plus the packets of backend audio
   * the transceiver shed (`backendShedMs`, 20 ms a packet: not sent, so no gap), over expected.
   */
  readonly lossToCaller: number;
  /** Packets of backend audio shed by the transceiver (part of lossToCaller). */
  readonly packetsNotSent: number;
  /** Caller → transceiver: lost per the transceiver's RTCP receiver reports / sent. */
  readonly lossFromCaller: number;
  /** Delay of returned packets behind the call's RTP timeline (ms), from its on-time level (analysis.ts). */
  readonly pacingDelayMs: Summary;
  /** RTCP round trip caller → transceiver → caller, its processing delay removed by DLSR (ms). */
  readonly rtcpRttMs: Summary;
  /** Loop latency of the echoed bursts (ms, echo delay removed), and bursts not heard back. */
  readonly echoLatencyMs: Summary;
  readonly missedBursts: number;
  readonly transceiverCpu: number;
  readonly transceiverCpuPerCall: number;
  /** CPU (share of a core) of everything on the load core, and of the load generator alone. */
  readonly loadCoreCpu: number;
  readonly loadgenCpu: number;
  readonly relayCpu: number;
  /** The backend: the echo agent (tone workload) or the benchmark agent (conversation). */
  readonly backendCpu: number;
  /** Lateness of the load generator's own 5 ms ticks (ms): its health. */
  readonly loadgenLatenessMs: Summary;
  /**
   * Lateness of the benchmark agent's 5 ms ticks (ms; conversation workload): a late tick delays
   * its frames, which reach the callers late on their RTP timeline, so it shows in the pacing delay.
   */
  readonly agentLatenessMs: Summary;
  /**
   * The transceiver's event-loop delay over the window (ms; its /metrics' `nodejs_eventloop_lag_*`
   * less their sampling interval, `loopDelayMs`): how long a timer, or a datagram, waited for it.
   */
  readonly transceiverEventLoopLagP99Ms: number;
  readonly transceiverEventLoopLagMaxMs: number;
  readonly playoutQueueMaxMs: number;
  /**
   * Backend audio the transceiver dropped in the window to shed a standing delay (ms, all calls),
   * from its `backend_shed_seconds_total`: audio it never sent, with no gap in the sequence numbers.
   */
  readonly backendShedMs: number;
  readonly drops: { transceiver: number; relay: number; other: number };
  readonly setupFailures: number;
  /**
   * Per second of window: how long the transceiver's main thread waited for its core (ms), and the
   * CPU of its other threads (V8's GC and compiler helpers, libuv's pool) on that same core.
   */
  readonly transceiverMainThreadWaitMsPerS: number;
  readonly transceiverHelperThreadsCpu: number;
  /** Other processes' CPU (cores): averaged over the window, and in its busiest half second. */
  readonly foreignCores: number;
  readonly foreignPeakCores: number;
  readonly disturbed: boolean;
  readonly decodeCheck: { toneHz: number; level: number };
  /** The transceiver's resident set at the window's end (bytes, VmRSS of /proc/<pid>/status). */
  readonly transceiverRssBytes: number;
  /**
   * The transceiver's own count of calls at the window's end (its `sessions` gauge), and its V8 heap
   * in use: calls it still holds beyond the step's, or a heap that grows from step to step, cost CPU
   * the step's calls did not.
   */
  readonly transceiverSessions: number;
  readonly transceiverHeapUsedBytes: number;
  /**
   * Edge-added latency over the window, per direction, from the transceiver's histogram
   * `voice_edge_transceiver_audio_latency_seconds` (ms); null when it exports none.
   */
  readonly latencyToBackendMs: Quantiles | null;
  readonly latencyToClientMs: Quantiles | null;
  /** Conversation workload: what the benchmark agent did and heard during the window. */
  readonly agent: AgentWindow | undefined;
}

interface Quantiles {
  readonly p50: number;
  readonly p99: number;
}

interface AgentWindow {
  /** Agent turns started, and cut by barge-in (`clear` sent). */
  readonly turns: number;
  readonly clears: number;
  /** Caller frames the agent received per call per second (50 when none is missing). */
  readonly framesInPerCallPerS: number;
  /** Agent audio sent (s of audio per call per second of window: its talk share, about). */
  readonly talkShare: number;
  /** Mean level of the caller's frames inside its turns and between them (dBFS). */
  readonly callerSpeechDbfs: number;
  readonly callerNoiseDbfs: number;
  readonly errors: number;
}

const LATENCY_METRIC = 'voice_edge_transceiver_audio_latency_seconds';

/** Other processes using more than this (cores) during a window disturb it: it is measured again. */
const FOREIGN_LIMIT_CORES = 0.1;
const FOREIGN_PEAK_LIMIT_CORES = 0.3;
/** The load core counts as saturated from here (its figures are then a lower bound). */
const LOAD_SATURATED = 0.9;
/** A transceiver this busy (share of its core) fails the step whatever it measured. */
const SATURATED = 0.9;
let disturbedSteps = 0;
/** Total time a run may spend waiting for other processes to calm down (keeps a run bounded). */
let quietBudgetMs = settings.quick ? 5_000 : 45_000;

class CallPool {
  readonly callers: Caller[] = [];
  readonly metronome = new Metronome();
  /** The conversation workload's voices; undefined: the tone cycle, echoed and timed. */
  readonly voices: Voices | undefined;
  #created = 0;

  constructor(voices?: Voices) {
    this.voices = voices;
    this.metronome.start();
  }

  /** Sets up `count` more calls, `concurrency` at a time. Returns the errors of those that failed. */
  async add(count: number, signal: Signal): Promise<string[]> {
    const errors: string[] = [];
    let left = count;
    const deadline = performance.now() + settings.rampLimitMs;
    const worker = async () => {
      while (left > 0) {
        if (performance.now() > deadline) {
          errors.push(`${left} calls not set up within ${settings.rampLimitMs} ms`);
          left = 0;
          break;
        }
        // The first two callers of each batch also decode what they hear (the onset check).
        const decode = left > count - 2 && this.voices === undefined;
        left--;
        const index = this.#created++;
        const caller = new Caller({
          streams,
          echoDelayMs: settings.echoDelayMs,
          // Bursts spread over the cycle: the transceiver encodes tone and silence every tick.
          cyclePhase: index * 7,
          decode,
          conversation:
            this.voices === undefined
              ? undefined
              : { voices: this.voices.caller, options: settings.conversation, runSeed: settings.seed },
        });
        try {
          await caller.connect(signal, 10_000);
          this.callers.push(caller);
          this.metronome.add(caller);
        } catch (error) {
          errors.push((error as Error).message);
          await caller.close();
        }
      }
    };
    await Promise.all(Array.from({ length: settings.concurrency }, worker));
    return errors;
  }

  async clear(): Promise<void> {
    const callers = this.callers.splice(0);
    for (const caller of callers) this.metronome.remove(caller);
    for (let i = 0; i < callers.length; i += 16) {
      await Promise.all(callers.slice(i, i + 16).map((caller) => caller.close()));
    }
  }

  stop(): void {
    this.metronome.stop();
  }
}

function metricValue(samples: Samples, name: string): number {
  return samples.get(`voice_edge_transceiver_${name}`) ?? Number.NaN;
}

/**
 * The transceiver's /metrics, through `Edge.transceiverApi`: every request the benchmark makes to a
 * transceiver's internal API carries its bearer token (`api.tokens`), as signaling's do. /metrics is
 * open today; the token goes along anyway, so the benchmark does not depend on which routes are.
 */
async function scrape(edge: Edge): Promise<Samples> {
  try {
    const response = await edge.transceiverApi(0, '/metrics');
    if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
    return parsePrometheus(await response.text());
  } catch {
    return new Map();
  }
}

/** The benchmark agent's /stats (conversation workload), undefined on any failure. */
async function agentStats(): Promise<(AgentStats & { latenessMs: number[] }) | undefined> {
  if (agentStatsUrl === undefined) return undefined;
  try {
    return (await (await fetch(agentStatsUrl)).json()) as AgentStats & { latenessMs: number[] };
  } catch {
    return undefined;
  }
}
let agentStatsUrl: string | undefined;

function agentWindow(
  before: AgentStats | undefined,
  after: AgentStats | undefined,
  calls: number,
  seconds: number,
): AgentWindow | undefined {
  if (before === undefined || after === undefined) return undefined;
  const d = (key: keyof AgentStats) => after[key] - before[key];
  const dbfs = (sum: number, count: number) => (count > 0 ? 20 * Math.log10(sum / count) : Number.NaN);
  return {
    turns: d('turns'),
    clears: d('clears'),
    framesInPerCallPerS: d('framesIn') / Math.max(1, calls) / seconds,
    talkShare: d('bytesOut') / 2 / settings.sampleRate / Math.max(1, calls) / seconds,
    callerSpeechDbfs: dbfs(d('speechRmsSum'), d('speechFrames')),
    callerNoiseDbfs: dbfs(d('noiseRmsSum'), d('noiseFrames')),
    errors: d('errors'),
  };
}

/** p50 and p99 (ms) of one direction's latency between two scrapes; null without the histogram. */
function latencyBetween(before: Samples, after: Samples, direction: string): Quantiles | null {
  const end = histogramBuckets(after, LATENCY_METRIC, { direction });
  if (end === undefined) return null;
  const start = histogramBuckets(before, LATENCY_METRIC, { direction });
  return { p50: windowQuantile(start, end, 0.5) * 1000, p99: windowQuantile(start, end, 0.99) * 1000 };
}

interface Pids {
  transceiver: number;
  relay: number;
  backend: number;
  signaling: number;
  loadSoftirq: number | undefined;
  transceiverSoftirq: number | undefined;
}

function cpuOf(pid: number | undefined): number {
  return pid === undefined ? 0 : (readProcessCpuSeconds(pid) ?? 0);
}

async function measureStep(
  edge: Edge,
  pool: CallPool,
  pids: Pids,
  calls: number,
  ourPids: ReadonlySet<number>,
): Promise<StepRecord> {
  await pool.clear();
  await sleep(500);
  const rampStarted = performance.now();
  const errors = await pool.add(calls, whipSignal(edge.whipUrl));
  const rampS = (performance.now() - rampStarted) / 1000;
  log(
    `  ${pool.callers.length} calls set up in ${rampS.toFixed(1)} s${errors.length > 0 ? `, ${errors.length} failed (${errors[0]})` : ''}`,
  );
  await sleep(settings.settleMs);
  for (let attempt = 0; ; attempt++) {
    const step = await measureWindow(edge, pool, pids, ourPids, errors.length);
    if (!step.disturbed) return step;
    if (attempt === 1) {
      disturbedSteps++;
      return step;
    }
    if (quietBudgetMs <= 0) {
      disturbedSteps++;
      log('  disturbed by other processes (no time left to wait for quiet: kept, flagged)');
      return step;
    }
    log('  disturbed by other processes: waiting for quiet, then measuring again');
    const waitStarted = performance.now();
    await waitForQuiet(ourPids, Math.min(quietBudgetMs, settings.quick ? 5_000 : 15_000));
    quietBudgetMs -= performance.now() - waitStarted;
  }
}

/** Waits (up to `timeoutMs`) until other processes use less than FOREIGN_LIMIT_CORES over 1 s. */
async function waitForQuiet(ourPids: ReadonlySet<number>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { foreignCores: foreign, stealCores: steal } = await foreignLoadOver(ourPids, 1000, false);
    if (foreign + steal < FOREIGN_LIMIT_CORES) return true;
    if (Date.now() >= deadline) {
      log(
        `  machine still busy (other processes and steal: ${(foreign + steal).toFixed(2)} cores): going on`,
      );
      return false;
    }
  }
}

async function measureWindow(
  edge: Edge,
  pool: CallPool,
  pids: Pids,
  ourPids: ReadonlySet<number>,
  setupFailures: number,
): Promise<StepRecord> {
  const packets = Math.ceil((settings.windowMs / 20) * 1.05);
  const processesBefore = readAllProcessesCpu(false);
  const stealBefore = readStealSeconds();
  const dropsBefore = readUdpDrops();
  const cpu = () => ({
    transceiver: cpuOf(pids.transceiver) + cpuOf(pids.transceiverSoftirq),
    loadgen: cpuOf(process.pid),
    relay: cpuOf(pids.relay),
    backend: cpuOf(pids.backend),
    signaling: cpuOf(pids.signaling),
    softirq: cpuOf(pids.loadSoftirq),
  });
  // Also resets the event-loop lag statistics of the transceiver's /metrics.
  const metricsBefore = await scrape(edge);
  const agentBefore = await agentStats();
  const before = cpu();
  pool.metronome.takeLateness();
  const decoding = pool.callers.filter((caller) => caller.decodes);
  const checksBefore = decoding.map((caller) => caller.check.frequencies.length);
  const threadsBefore = sampleThreads(pids.transceiver);
  const sampler = new ForeignSampler(ourPids);
  for (const caller of pool.callers) caller.beginWindow(packets);
  const started = performance.now();
  await sleep(settings.windowMs);
  const counts: WindowCounts[] = pool.callers.map((caller) => caller.endWindow());
  const elapsed = (performance.now() - started) / 1000;
  const after = cpu();
  const threadsAfter = sampleThreads(pids.transceiver);
  const foreignPeakCores = await sampler.stop();
  const lateness = pool.metronome.takeLateness();
  const metrics = await scrape(edge);
  const agentAfter = await agentStats();
  const rss = readRssBytes(pids.transceiver);
  const dropsAfter = readUdpDrops();
  const foreignCores = foreignCpuSeconds(processesBefore, readAllProcessesCpu(false), ourPids) / elapsed;
  const stealCores = (readStealSeconds() - stealBefore) / elapsed;

  const delays: Float64Array[] = counts.map((c) => pacingDelays(c.offsetsMs, c.runStarts));
  const total = (pick: (c: WindowCounts) => number) => counts.reduce((sum, c) => sum + pick(c), 0);
  // Audio the transceiver shed is never sent and leaves no gap in the sequence numbers: the
  // transceiver counts it (its pacing is per call and sends every other frame it gets).
  const shedMs =
    (metricValue(metrics, 'backend_shed_seconds_total') -
      metricValue(metricsBefore, 'backend_shed_seconds_total')) *
    1000;
  const notSent = Number.isFinite(shedMs) ? Math.round(shedMs / 20) : 0;
  const expected = total((c) => c.expected) + notSent;
  const sent = total((c) => c.sent);
  const share = (key: keyof ReturnType<typeof cpu>) => (after[key] - before[key]) / elapsed;
  const transceiverCpu = share('transceiver');
  const loadCoreCpu =
    share('loadgen') + share('relay') + share('backend') + share('signaling') + share('softirq');
  const tunnelPort = edge.transceivers[0]!.tunnelPort;
  const checks = decoding.map((caller, i) => ({
    frequencies: caller.check.frequencies.slice(checksBefore[i]),
    levels: caller.check.levels.slice(checksBefore[i]),
  }));
  const frequencies = summarize(checks.flatMap((c) => c.frequencies));
  const levels = summarize(checks.flatMap((c) => c.levels));
  const record = {
    calls: pool.callers.length,
    windowS: elapsed,
    lossToCaller: expected > 0 ? Math.max(0, 1 - total((c) => c.received) / expected) : 1,
    packetsNotSent: notSent,
    lossFromCaller: sent > 0 ? total((c) => c.remoteLost) / sent : 1,
    pacingDelayMs: summarize(delays.flatMap((d) => Array.from(d))),
    rtcpRttMs: summarize(counts.flatMap((c) => c.rttsMs)),
    echoLatencyMs: summarize(counts.flatMap((c) => c.latenciesMs)),
    missedBursts: total((c) => c.missedBursts),
    transceiverCpu,
    transceiverCpuPerCall: pool.callers.length > 0 ? transceiverCpu / pool.callers.length : Number.NaN,
    loadCoreCpu,
    loadgenCpu: share('loadgen'),
    relayCpu: share('relay'),
    backendCpu: share('backend'),
    loadgenLatenessMs: summarize(lateness),
    // The agent's /stats hands over its lateness since the previous read (agentBefore's).
    agentLatenessMs: summarize(agentAfter?.latenessMs ?? []),
    transceiverEventLoopLagP99Ms: loopDelayMs(metricValue(metrics, 'nodejs_eventloop_lag_p99_seconds')),
    transceiverEventLoopLagMaxMs: loopDelayMs(metricValue(metrics, 'nodejs_eventloop_lag_max_seconds')),
    playoutQueueMaxMs: metricValue(metrics, 'playout_queue_max_seconds') * 1000,
    backendShedMs: shedMs,
    drops: {
      transceiver: dropsBetween(dropsBefore, dropsAfter, (port) => port === tunnelPort),
      relay: dropsBetween(dropsBefore, dropsAfter, (port) => port === edge.relayPort),
      other: dropsBetween(dropsBefore, dropsAfter, (port) => port !== tunnelPort && port !== edge.relayPort),
    },
    transceiverMainThreadWaitMsPerS: ((threadsAfter.mainWaitS - threadsBefore.mainWaitS) / elapsed) * 1000,
    transceiverHelperThreadsCpu: (threadsAfter.helpersCpuS - threadsBefore.helpersCpuS) / elapsed,
    setupFailures,
    foreignCores: foreignCores + stealCores,
    foreignPeakCores,
    disturbed: foreignCores + stealCores > FOREIGN_LIMIT_CORES || foreignPeakCores > FOREIGN_PEAK_LIMIT_CORES,
    decodeCheck: {
      toneHz: frequencies.p50,
      level: levels.p50,
    },
    transceiverRssBytes: rss,
    transceiverSessions: metricValue(metrics, 'sessions'),
    transceiverHeapUsedBytes: metricValue(metrics, 'memory_bytes{kind="heap_used"}'),
    latencyToBackendMs: latencyBetween(metricsBefore, metrics, 'to_backend'),
    latencyToClientMs: latencyBetween(metricsBefore, metrics, 'to_client'),
    agent: agentWindow(agentBefore, agentAfter, pool.callers.length, elapsed),
  };
  const loss = Math.max(record.lossToCaller, record.lossFromCaller);
  let verdict: StepRecord['verdict'] = 'ok';
  if (setupFailures > 0) verdict = 'setup';
  else if (loss > settings.maxLoss) verdict = 'loss';
  // A core that busy leaves no room for a burst of work: not sustainable.
  else if (transceiverCpu >= SATURATED) verdict = 'saturated';
  else if (!(addedLatencyP99(record) <= settings.maxDelayMs)) verdict = 'latency';
  if (verdict !== 'ok' && loadCoreCpu >= LOAD_SATURATED && transceiverCpu < LOAD_SATURATED)
    verdict = 'load side';
  const step: StepRecord = { ...record, verdict };
  log(
    `  ${String(step.calls).padStart(4)} calls: ${verdict.padEnd(9)} loss ${pct(record.lossToCaller)} / ${pct(record.lossFromCaller)}` +
      `  pacing p50 ${ms(record.pacingDelayMs.p50)} p99 ${ms(record.pacingDelayMs.p99)}` +
      `  rtcp rtt p99 ${ms(record.rtcpRttMs.p99)}  echo p50 ${ms(record.echoLatencyMs.p50)} p99 ${ms(record.echoLatencyMs.p99)}` +
      `  edge latency to backend ${quantiles(record.latencyToBackendMs)}, to client ${quantiles(record.latencyToClientMs)}  RSS ${mib(rss)}, heap ${mib(record.transceiverHeapUsedBytes)}, ${record.transceiverSessions} sessions` +
      `  transceiver ${(transceiverCpu * 100).toFixed(0)} %  load core ${(loadCoreCpu * 100).toFixed(0)} %` +
      `  main-thread wait ${record.transceiverMainThreadWaitMsPerS.toFixed(0)} ms/s  helpers ${(record.transceiverHelperThreadsCpu * 100).toFixed(0)} %` +
      `  loop lag p99 ${ms(record.transceiverEventLoopLagP99Ms)}, max: transceiver ${ms(record.transceiverEventLoopLagMaxMs)}, load generator ${ms(record.loadgenLatenessMs.max)}, agent ${ms(record.agentLatenessMs.max)}` +
      `  others ${(record.foreignCores * 100).toFixed(0)} % (peak ${(foreignPeakCores * 100).toFixed(0)} %)${record.disturbed ? ' disturbed' : ''}`,
  );
  return step;
}

/**
 * A reading of prom-client's `nodejs_eventloop_lag_*` (seconds) as the loop's delay (ms): Node's
 * monitor records the time between two samples of its timer, so the sampling interval is in every
 * reading (an idle loop reads 10 ms, EVENT_LOOP_SAMPLING_MS in transceiver/metrics.ts).
 */
function loopDelayMs(readingSeconds: number): number {
  return Math.max(0, readingSeconds * 1000 - EVENT_LOOP_SAMPLING_MS);
}

/**
 * The step's added latency, p99 (ms): what the transceiver adds to audio either way. Its own
 * histograms time a frame from the moment its JavaScript sees it, so the event loop's lag (a packet
 * waiting in the socket before the loop gets to it) is added to the backend-bound figure; the
 * client-bound one already includes it (a frame waits for a timer). The callers' pacing delay
 * (arrival against the RTP timeline) stands in when the histograms are missing.
 */
function addedLatencyP99(record: {
  latencyToBackendMs: Quantiles | null;
  latencyToClientMs: Quantiles | null;
  transceiverEventLoopLagP99Ms: number;
  pacingDelayMs: Summary;
}): number {
  const { latencyToBackendMs: toBackend, latencyToClientMs: toClient } = record;
  if (toBackend === null || toClient === null) return record.pacingDelayMs.p99;
  const lag = Number.isFinite(record.transceiverEventLoopLagP99Ms) ? record.transceiverEventLoopLagP99Ms : 0;
  return Math.max(toClient.p99, toBackend.p99 + lag);
}

function quantiles(value: Quantiles | null): string {
  return value === null ? '–' : `${value.p50.toFixed(1)} / ${value.p99.toFixed(1)} ms`;
}
function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : '–';
}
function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(3)} %`;
}
function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} ms` : '–';
}

interface CapacityResult {
  readonly calls: number;
  /** Highest passing and lowest failing count tried (the search stops when they are close). */
  readonly bracket: [number, number | undefined];
  readonly bound: string;
  readonly lowerBound: boolean;
  readonly idleCpu: number;
  readonly atCapacity: StepRecord | undefined;
  readonly firstFailure: StepRecord | undefined;
  readonly marginalCpuPerCall: number;
  /** The transceiver's RSS with no calls (bytes), before the first step. */
  readonly idleRssBytes: number;
  /**
   * RSS slope (bytes per call): least squares on (calls, RSS) of the idle point and of every step
   * with more calls than all before it (the doubling, up to the first failure). Steps after a
   * bigger one are left out: a process rarely gives memory back, so they would flatten the slope.
   */
  readonly memoryPerCallBytes: number;
  /** The same over every step (and the idle point), for comparison. */
  readonly memoryPerCallAllStepsBytes: number;
  readonly steps: StepRecord[];
  readonly durationS: number;
}

/** The RSS fits of CapacityResult (pure; exported for nothing but readability). */
function memorySlopes(idleRss: number, steps: readonly StepRecord[]): { rising: number; all: number } {
  const points = (list: readonly StepRecord[]) =>
    [[0, idleRss] as const, ...list.map((s) => [s.calls, s.transceiverRssBytes] as const)].filter(([, rss]) =>
      Number.isFinite(rss),
    );
  let highest = 0;
  const rising = steps.filter((s) => {
    if (s.calls <= highest) return false;
    highest = s.calls;
    return true;
  });
  return { rising: fitLine(points(rising)).slope, all: fitLine(points(steps)).slope };
}

async function measureCapacity(
  edge: Edge,
  pids: Pids,
  ourPids: ReadonlySet<number>,
  voices: Voices | undefined,
): Promise<CapacityResult> {
  const started = performance.now();
  // The transceiver with no calls: its fixed cost (pacer, signaling's status polls, metrics).
  const idleBefore = cpuOf(pids.transceiver);
  await sleep(2000);
  const idleCpu = (cpuOf(pids.transceiver) - idleBefore) / 2;
  const idleRssBytes = readRssBytes(pids.transceiver);
  log(`idle transceiver: ${(idleCpu * 100).toFixed(1)} % of a core, RSS ${mib(idleRssBytes)}`);

  const pool = new CallPool(voices);
  const steps: StepRecord[] = [];
  const tried = new Map<number, StepRecord>();
  const run = async (calls: number): Promise<StepRecord> => {
    log(`step: ${calls} calls`);
    let step = await measureStep(edge, pool, pids, calls, ourPids);
    steps.push(step);
    // A saturated transceiver fails for good; anything else may have been one stall.
    const clearly = step.verdict === 'saturated' || Math.max(step.lossToCaller, step.lossFromCaller) > 0.01;
    if (step.verdict !== 'ok' && settings.retryFailures && !clearly) {
      log('  failed: trying it once more');
      step = await measureStep(edge, pool, pids, calls, ourPids);
      steps.push(step);
    }
    tried.set(calls, step);
    return step;
  };
  try {
    let good = 0;
    let bad: number | undefined;
    let calls = settings.startCalls;
    // Double until a step fails (but not far past where the CPU per call says the core is full),
    // then bisect.
    const overBudget = () => (performance.now() - started) / 1000 > settings.budgetS;
    for (;;) {
      const step = await run(calls);
      if (step.verdict === 'ok') good = calls;
      else {
        bad = calls;
        break;
      }
      if (calls >= settings.maxCalls || overBudget()) break;
      const full = Math.ceil((calls * 1.05) / Math.max(step.transceiverCpu, 0.01));
      calls = Math.min(settings.maxCalls, calls * 2, Math.max(calls + settings.precision, full));
    }
    while (bad !== undefined && bad - good > settings.precision && !overBudget()) {
      const middle = Math.round((good + bad) / 2);
      const step = await run(middle);
      if (step.verdict === 'ok') good = middle;
      else bad = middle;
    }
    const atCapacity = tried.get(good);
    const firstFailure = bad !== undefined ? tried.get(bad) : undefined;
    const fit = fitLine(
      steps.filter((s) => s.verdict === 'ok').map((s) => [s.calls, s.transceiverCpu] as const),
    );
    let bound = 'max calls';
    if (firstFailure !== undefined) {
      bound =
        firstFailure.verdict === 'load side'
          ? 'load side'
          : firstFailure.verdict === 'setup'
            ? 'call setup failed'
            : firstFailure.verdict === 'loss'
              ? 'loss'
              : firstFailure.verdict === 'saturated'
                ? 'CPU (saturated)'
                : 'latency';
    }
    if (overBudget()) log(`capacity search stopped by its time budget (${settings.budgetS} s)`);
    const memory = memorySlopes(idleRssBytes, steps);
    return {
      idleRssBytes,
      memoryPerCallBytes: memory.rising,
      memoryPerCallAllStepsBytes: memory.all,
      calls: good,
      bracket: [good, bad],
      bound,
      lowerBound: bound === 'load side' || bound === 'max calls',
      idleCpu,
      atCapacity,
      firstFailure,
      marginalCpuPerCall: fit.slope,
      steps,
      durationS: (performance.now() - started) / 1000,
    };
  } finally {
    await pool.clear();
    pool.stop();
  }
}

// ---- report -------------------------------------------------------------------------------------

function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function roundDeep<T>(value: T): T {
  if (typeof value === 'number') return round(value, 4) as T;
  if (Array.isArray(value)) return value.map(roundDeep) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, roundDeep(v)])) as T;
  }
  return value;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')).join('\n');
}

function pair(a: number, b: number): string {
  return Number.isFinite(a) || Number.isFinite(b) ? `${a.toFixed(1)} / ${b.toFixed(1)}` : '–';
}

function printReport(
  capacity: CapacityResult | undefined,
  setup: Record<'edge' | 'direct', SetupStats> | undefined,
  echo: EchoPhase | undefined,
  profile: ProfileSummary[],
  components: ProfileBreakdown[],
): void {
  const out: string[] = [];
  if (capacity !== undefined) {
    out.push(
      `Capacity steps, ${settings.workload} workload, backend ${settings.backendProtocol} at ${settings.sampleRate} Hz (loss: to caller / from caller; delays in ms; edge latency: the transceiver's histogram; loop delay: its event loop's)`,
    );
    const tone = settings.workload === 'tone';
    const rows = [
      [
        'calls',
        'verdict',
        'loss',
        'pacing p50/p99',
        'rtcp rtt p50/p99',
        ...(tone ? ['echo p50/p99'] : []),
        'to backend p50/p99',
        'to client p50/p99',
        'loop delay p99',
        'transceiver CPU',
        'per call',
        'RSS',
        'load core',
      ],
    ];
    for (const s of capacity.steps) {
      rows.push([
        String(s.calls),
        s.verdict,
        `${pct(s.lossToCaller)} / ${pct(s.lossFromCaller)}`,
        pair(s.pacingDelayMs.p50, s.pacingDelayMs.p99),
        pair(s.rtcpRttMs.p50, s.rtcpRttMs.p99),
        ...(tone ? [pair(s.echoLatencyMs.p50, s.echoLatencyMs.p99)] : []),
        s.latencyToBackendMs === null ? '–' : pair(s.latencyToBackendMs.p50, s.latencyToBackendMs.p99),
        s.latencyToClientMs === null ? '–' : pair(s.latencyToClientMs.p50, s.latencyToClientMs.p99),
        Number.isFinite(s.transceiverEventLoopLagP99Ms) ? s.transceiverEventLoopLagP99Ms.toFixed(1) : '–',
        `${(s.transceiverCpu * 100).toFixed(0)} %`,
        `${(s.transceiverCpuPerCall * 100).toFixed(2)} %`,
        mib(s.transceiverRssBytes),
        `${(s.loadCoreCpu * 100).toFixed(0)} %`,
      ]);
    }
    out.push(table(rows));
    const at = capacity.atCapacity;
    const failed = capacity.firstFailure;
    out.push(
      '',
      `Capacity: ${capacity.lowerBound ? '≥ ' : ''}${capacity.calls} calls per transceiver process (bound: ${capacity.bound})` +
        (at
          ? `, ${(at.transceiverCpu * 100).toFixed(0)} % of its core there = ${(at.transceiverCpuPerCall * 100).toFixed(2)} % per call` +
            ` (marginal ${(capacity.marginalCpuPerCall * 100).toFixed(2)} % per call, idle ${(capacity.idleCpu * 100).toFixed(1)} %)`
          : ''),
    );
    if (at) {
      out.push(
        `  at ${at.calls} calls: pacing delay p99 ${ms(at.pacingDelayMs.p99)}, loss ${pct(at.lossToCaller)} / ${pct(at.lossFromCaller)}` +
          (settings.workload === 'tone'
            ? `, echo latency p50 ${ms(at.echoLatencyMs.p50)} p99 ${ms(at.echoLatencyMs.p99)}` +
              ` (at ${capacity.steps[0]!.calls} calls: ${ms(capacity.steps[0]!.echoLatencyMs.p50)} / ${ms(capacity.steps[0]!.echoLatencyMs.p99)})`
            : ''),
      );
      out.push(
        at.latencyToBackendMs === null && at.latencyToClientMs === null
          ? `  edge-added latency: not measured (the transceiver exports no ${LATENCY_METRIC})`
          : `  edge-added latency p50 / p99: caller → backend ${quantiles(at.latencyToBackendMs)}, backend → caller ${quantiles(at.latencyToClientMs)}`,
      );
      if (at.agent !== undefined) {
        const a = at.agent;
        out.push(
          `  the agent: ${a.turns} turns started, ${a.clears} cut by barge-in; talked ${(a.talkShare * 100).toFixed(0)} % of the time;` +
            ` heard ${a.framesInPerCallPerS.toFixed(1)} frames/s per call, the caller at ${a.callerSpeechDbfs.toFixed(1)} dBFS in its turns, ${a.callerNoiseDbfs.toFixed(1)} dBFS between`,
        );
      }
    }
    out.push(
      `  memory: ${(capacity.memoryPerCallBytes / 1024).toFixed(0)} KiB per call (RSS slope; over every step ${(capacity.memoryPerCallAllStepsBytes / 1024).toFixed(0)} KiB), idle ${mib(capacity.idleRssBytes)}`,
    );
    if (failed) {
      out.push(
        `  first failing step, ${failed.calls} calls (${failed.verdict}): pacing delay p99 ${ms(failed.pacingDelayMs.p99)},` +
          ` loss ${pct(failed.lossToCaller)} / ${pct(failed.lossFromCaller)} (backend audio shed: ${Math.round(failed.backendShedMs)} ms), transceiver ${(failed.transceiverCpu * 100).toFixed(0)} %,` +
          ` its main thread waited ${failed.transceiverMainThreadWaitMsPerS.toFixed(0)} ms/s for its core`,
      );
    }
  }
  if (echo !== undefined) {
    out.push(
      '',
      `Echo latency at ${echo.calls} calls (tone, echo agent delay ${settings.echoDelayMs} ms): p50 ${ms(echo.echoLatencyMs.p50)}, p99 ${ms(echo.echoLatencyMs.p99)}` +
        ` (${echo.echoLatencyMs.count} bursts, ${echo.missedBursts} missed; the tone came back at ${echo.toneHz.toFixed(1)} Hz)`,
    );
  }
  if (setup !== undefined) {
    const { edge, direct } = setup;
    out.push(
      '',
      'Setup time, offer sent → first echoed audio (ms)',
      table([
        ['path', 'calls', 'p50', 'p95', 'answer p50', 'ICE p50', 'DTLS p50', 'DTLS → audio p50'],
        ...(['edge', 'direct'] as const).map((path) => {
          const s = setup[path];
          return [
            path === 'edge'
              ? 'through the edge (WHIP, relay, transceiver, echo agent)'
              : 'direct werift endpoint',
            String(s.calls),
            s.firstAudioMs.p50.toFixed(0),
            s.firstAudioMs.p95.toFixed(0),
            s.answerMs.p50.toFixed(0),
            s.iceConnectedMs.p50.toFixed(0),
            s.connectedMs.p50.toFixed(0),
            s.connectedToAudioMs.p50.toFixed(0),
          ];
        }),
        [
          'edge / direct',
          '',
          `${(edge.firstAudioMs.p50 / direct.firstAudioMs.p50).toFixed(2)}×`,
          `${(edge.firstAudioMs.p95 / direct.firstAudioMs.p95).toFixed(2)}×`,
          '',
          '',
          '',
          '',
        ],
      ]),
    );
  }
  // A call's CPU per 20 ms at capacity, to turn shares into µs per call per tick.
  const perCallTickUs = (capacity?.atCapacity?.transceiverCpuPerCall ?? Number.NaN) * 20_000;
  for (const part of components) {
    out.push(
      '',
      `Transceiver CPU profile: where the busy time goes (${part.busyMs.toFixed(0)} ms busy; µs per call per 20 ms at capacity)`,
    );
    for (const component of part.components) {
      const us = component.share * perCallTickUs;
      out.push(
        `  ${(component.share * 100).toFixed(1).padStart(5)} %  ${Number.isFinite(us) ? `${us.toFixed(0).padStart(4)} µs` : ''}  ${component.name}`,
      );
    }
  }
  for (const summary of profile) {
    out.push('', 'Hottest functions (self time):');
    for (const entry of summary.top.slice(0, 12)) {
      out.push(`  ${(entry.share * 100).toFixed(1).padStart(5)} %  ${entry.function}`);
    }
  }
  if (disturbedSteps > 0) out.push('', `${disturbedSteps} step(s) disturbed by other processes (see JSON)`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---- main ---------------------------------------------------------------------------------------

interface EchoPhase {
  readonly calls: number;
  readonly windowS: number;
  /** Loop latency of the echoed bursts (ms, the echo delay removed). */
  readonly echoLatencyMs: Summary;
  readonly missedBursts: number;
  /** The decoding callers' check: the echoed burst is the tone that was sent. */
  readonly toneHz: number;
  readonly level: number;
}

/**
 * Echo latency through the whole edge at a few calls (10): the tone workload against the echo
 * agent (delay `--echo-delay-ms`, 0 by default), one window, no grid or bounds.
 */
async function measureEchoLatency(edge: Edge): Promise<EchoPhase> {
  const pool = new CallPool();
  try {
    const errors = await pool.add(settings.echoCalls, whipSignal(edge.whipUrl));
    if (errors.length > 0) log(`  ${errors.length} echo calls failed to set up (${errors[0]})`);
    await sleep(settings.settleMs);
    const decoding = pool.callers.filter((caller) => caller.decodes);
    const bursts = decoding.map((caller) => caller.check.frequencies.length);
    for (const caller of pool.callers) caller.beginWindow(Math.ceil((settings.windowMs / 20) * 1.05));
    const started = performance.now();
    await sleep(settings.windowMs);
    const counts = pool.callers.map((caller) => caller.endWindow());
    const windowS = (performance.now() - started) / 1000;
    const frequencies = decoding.flatMap((caller, i) => caller.check.frequencies.slice(bursts[i]));
    const levels = decoding.flatMap((caller, i) => caller.check.levels.slice(bursts[i]));
    return {
      calls: pool.callers.length,
      windowS,
      echoLatencyMs: summarize(counts.flatMap((c) => c.latenciesMs)),
      missedBursts: counts.reduce((sum, c) => sum + c.missedBursts, 0),
      toneHz: summarize(frequencies).p50,
      level: summarize(levels).p50,
    };
  } finally {
    await pool.clear();
    pool.stop();
  }
}

async function startEdge(backendUrl: string | undefined, nodeArgs: readonly string[]): Promise<Edge> {
  return Edge.start({
    transceivers: 1,
    capacity: settings.maxCalls + 50,
    echoDelayMs: settings.echoDelayMs,
    // The benchmark agent speaks --backend-protocol; the echo agent, voice-edge.
    ...(backendUrl === undefined ? {} : { backendUrl, backendProtocol: settings.backendProtocol }),
    sampleRate: settings.sampleRate,
    transceiverNodeArgs: [...settings.transceiverNodeArgs, ...nodeArgs],
    transceiver: {
      audio: {
        callerDtx: settings.callerDtx,
        opusApplication: settings.opusApplication,
        ...(settings.opusComplexity === undefined ? {} : { opusComplexity: settings.opusComplexity }),
      },
    },
    // Generous status polling: a busy transceiver must not look unreachable to signaling.
    signaling: { transceivers: { statusIntervalMs: 1000, statusTimeoutMs: 900, statusStaleMs: 5000 } },
  });
}

/** Pins the edge's transceiver to its core; the processes to measure, and those that are ours. */
function edgePids(edge: Edge, backendPid: number): { pids: Pids; ourPids: Set<number> } {
  const service = (name: string) => edge.services.find((s) => s.name.startsWith(name))!.child.pid!;
  const softirq = ksoftirqdPids();
  const pids: Pids = {
    transceiver: edge.transceivers[0]!.service.child.pid!,
    relay: service('relay'),
    backend: backendPid,
    signaling: service('signaling'),
    loadSoftirq: softirq.get(settings.loadCpu),
    transceiverSoftirq: softirq.get(settings.transceiverCpu),
  };
  pin(pids.transceiver, settings.transceiverCpu);
  // Our own (and npm's wrapper around us): their CPU is not interference.
  const ourPids = new Set<number>([
    process.pid,
    process.ppid,
    ...Object.values(pids).filter((p) => p !== undefined),
  ]);
  log(
    `edge up: transceiver pid ${pids.transceiver} on core ${settings.transceiverCpu}, the rest on core ${settings.loadCpu}`,
  );
  return { pids, ourPids };
}

/** The benchmark agent (conversation-agent.ts) as a process on the load core. */
async function startAgent(voices: Voices): Promise<{ service: Service; port: number }> {
  const port = await freeTcpPort();
  const c = settings.conversation;
  const service = await Service.start(
    'benchmark agent',
    [
      'bench/transceiver/conversation-agent.ts',
      ...['--port', String(port), '--pcm', voices.agentPcmFile, '--sample-rate', String(settings.sampleRate)],
      ...['--seed', String(settings.seed), '--talk-share', String(c.talkShare)],
      ...['--barge-in-share', String(c.bargeInShare), '--min-turn-ms', String(c.minTurnMs)],
      ...['--max-turn-ms', String(c.maxTurnMs), '--lead-ms', String(settings.agentLeadMs)],
      ...['--protocol', settings.backendProtocol],
    ],
    `http://127.0.0.1:${port}/healthz`,
  );
  return { service, port };
}

function describeWorkload(voices: Voices | undefined) {
  const c = settings.conversation;
  if (settings.workload === 'tone') {
    return {
      name: 'tone',
      caller: `${TONE_HZ} Hz tone 200 ms then 800 ms digital silence, every second, pre-encoded Opus at the answer's maxplaybackrate (${settings.sampleRate} Hz; 48 kHz without one), 50 packets/s`,
      backend: `echo agent, delay ${settings.echoDelayMs} ms: every frame back`,
    };
  }
  return {
    name: 'conversation',
    speech: settings.speech,
    source: voices?.source,
    talkShare: c.talkShare,
    bargeInShare: c.bargeInShare,
    turnMs: [c.minTurnMs, c.maxTurnMs],
    bargeInDetectMs: BARGE_IN_DETECT_MS,
    agentLeadMs: settings.agentLeadMs,
    seed: settings.seed,
    noiseDbfs: NOISE_DBFS,
    callerSeconds: voices?.callerSeconds,
    agentSeconds: voices?.agentSeconds,
    caller: `pre-encoded Opus at the answer's maxplaybackrate (${settings.sampleRate} Hz): speech in its turns, its noise floor between them (never digital silence); ${settings.callerDtx ? "the answer asks for DTX (usedtx=1): libopus's DTX frames after the first of a silence are not sent, as a browser does" : '50 packets/s always (no DTX asked for)'}`,
    callerDtx: settings.callerDtx,
    backendProtocol: settings.backendProtocol,
    backend: `benchmark agent: ${twilio ? 'Twilio Media Streams, μ-law in JSON, one message per 20 ms,' : 'PCM16'} at ${settings.sampleRate} Hz in its turns, ${settings.agentLeadMs > 0 ? `${settings.agentLeadMs} ms at once, then ` : ''}one 20 ms frame per 20 ms; nothing between turns; clear ${BARGE_IN_DETECT_MS} ms into the caller's barge-in`,
  };
}

async function main(): Promise<void> {
  const pinned = setUpPinning();
  const coreSpeed = { startMs: coreSpeedMs(settings.transceiverCpu), endMs: Number.NaN };
  log(
    `core speed: the fixed probe took ${coreSpeed.startMs.toFixed(1)} ms on the transceiver's core (bench/common/core-speed.ts)`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'voice-edge-bench-transceiver-'));
  const profileDir = join(dir, 'profile');
  const profileArgs = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  log(`settings: ${JSON.stringify(settings)}`);
  const conversationCapacity = settings.workload === 'conversation' && !options['skip-capacity'];
  let voices: Voices | undefined;
  if (conversationCapacity) {
    voices = makeVoices(settings.speech, settings.sampleRate, dir);
    log(
      `voices: ${voices.source}; caller ${voices.callerSeconds.toFixed(1)} s (${voices.caller[0]!.speech.length} frames; encoded at ${voices.caller.map((voice) => voice.rate).join(' and ')} Hz), agent ${voices.agentSeconds.toFixed(1)} s`,
    );
  }
  let direct: DirectEndpoint | undefined;
  let capacity: CapacityResult | undefined;
  let setup: Record<'edge' | 'direct', SetupStats> | undefined;
  let echo: EchoPhase | undefined;
  let profile: ProfileSummary[] = [];
  let components: ProfileBreakdown[] = [];
  const edges: Edge[] = [];
  let agent: Service | undefined;
  try {
    // The echo agent's edge: setup time, echo latency at 10 calls, and the tone workload's capacity.
    const toneCapacity = settings.workload === 'tone' && !options['skip-capacity'];
    const setupPhase = !options['skip-setup'] && !twilio;
    if (twilio && !options['skip-setup'])
      log('setup time: not measured with twilio-media-streams (the echo agent speaks voice-edge)');
    if (setupPhase || settings.echoCalls > 0 || toneCapacity) {
      const edge = await startEdge(undefined, toneCapacity ? profileArgs : []);
      edges.push(edge);
      const echoPid = edge.services.find((s) => s.name === 'echo agent')!.child.pid!;
      const { pids, ourPids } = edgePids(edge, echoPid);
      if (setupPhase) {
        direct = await startDirectEndpoint();
        pin(direct.pid, settings.transceiverCpu);
        ourPids.add(direct.pid);
        log(
          `setup time: ${settings.setupWarmupCalls} warm-up + ${settings.setupCalls} calls per path, alternating edge / direct`,
        );
        setup = await measureSetup({ edge: whipSignal(edge.whipUrl), direct: directSignal(direct.url) });
        log(
          `  edge p50 ${setup.edge.firstAudioMs.p50.toFixed(0)} ms p95 ${setup.edge.firstAudioMs.p95.toFixed(0)} ms; ` +
            `direct p50 ${setup.direct.firstAudioMs.p50.toFixed(0)} ms p95 ${setup.direct.firstAudioMs.p95.toFixed(0)} ms`,
        );
        await direct.stop();
        direct = undefined;
      }
      if (settings.echoCalls > 0) {
        log(`echo latency: ${settings.echoCalls} calls, tone, echo agent delay ${settings.echoDelayMs} ms`);
        echo = await measureEchoLatency(edge);
        log(
          `  echo p50 ${ms(echo.echoLatencyMs.p50)} p99 ${ms(echo.echoLatencyMs.p99)} (${echo.echoLatencyMs.count} bursts, ${echo.missedBursts} missed), tone back at ${echo.toneHz.toFixed(1)} Hz`,
        );
      }
      if (toneCapacity) {
        log('capacity (tone): doubling the number of calls until a step fails, then bisecting');
        capacity = await measureCapacity(edge, pids, ourPids, undefined);
        if (options.profile) {
          await edge.transceivers[0]!.service.stop('SIGTERM');
          profile = summarizeProfileDir(profileDir, repoRoot, 25);
          components = breakdownDir(profileDir);
        }
      }
      await edges.pop()!.stop();
    }
    if (conversationCapacity && voices !== undefined) {
      const started = await startAgent(voices);
      agent = started.service;
      agentStatsUrl = `http://127.0.0.1:${started.port}/stats`;
      const edge = await startEdge(`ws://127.0.0.1:${started.port}`, profileArgs);
      edges.push(edge);
      const { pids, ourPids } = edgePids(edge, agent.child.pid!);
      log('capacity (conversation): doubling the number of calls until a step fails, then bisecting');
      capacity = await measureCapacity(edge, pids, ourPids, voices);
      if (options.profile) {
        await edge.transceivers[0]!.service.stop('SIGTERM');
        profile = summarizeProfileDir(profileDir, repoRoot, 25);
        components = breakdownDir(profileDir);
      }
    }
  } finally {
    await direct?.stop();
    for (const edge of edges) await edge.stop();
    await agent?.stop('SIGKILL');
    if (!options.keep) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
  coreSpeed.endMs = coreSpeedMs(settings.transceiverCpu);
  log(
    `core speed: ${coreSpeed.startMs.toFixed(1)} ms at the start, ${coreSpeed.endMs.toFixed(1)} ms at the end (the same work: a slower host shows as more ms)`,
  );

  printReport(capacity, setup, echo, profile, components);
  const at = capacity?.atCapacity;
  const json = {
    benchmark: 'transceiver',
    version: 4,
    date: new Date().toISOString(),
    durationS: (performance.now() - runStarted) / 1000,
    host: { cpus: cpus().length, kernel: release(), node: process.version, pinned, coreSpeedMs: coreSpeed },
    settings,
    capacity:
      capacity === undefined
        ? undefined
        : {
            calls: capacity.calls,
            bracket: capacity.bracket,
            lowerBound: capacity.lowerBound,
            bound: capacity.bound,
            transceiverCpuAtCapacity: at?.transceiverCpu,
            cpuPerCall: at?.transceiverCpuPerCall,
            marginalCpuPerCall: capacity.marginalCpuPerCall,
            idleCpu: capacity.idleCpu,
            memoryPerCallBytes: capacity.memoryPerCallBytes,
            memoryPerCallAllStepsBytes: capacity.memoryPerCallAllStepsBytes,
            idleRssBytes: capacity.idleRssBytes,
            atCapacity: at,
            firstFailure: capacity.firstFailure,
            durationS: capacity.durationS,
            steps: capacity.steps.map((s) => ({
              calls: s.calls,
              verdict: s.verdict,
              loss: [s.lossToCaller, s.lossFromCaller],
              pacingMs: [s.pacingDelayMs.p50, s.pacingDelayMs.p99],
              rtcpRttMs: [s.rtcpRttMs.p50, s.rtcpRttMs.p99],
              echoMs: [s.echoLatencyMs.p50, s.echoLatencyMs.p99],
              toBackendMs: s.latencyToBackendMs && [s.latencyToBackendMs.p50, s.latencyToBackendMs.p99],
              toClientMs: s.latencyToClientMs && [s.latencyToClientMs.p50, s.latencyToClientMs.p99],
              cpu: s.transceiverCpu,
              rssBytes: s.transceiverRssBytes,
              heapUsedBytes: s.transceiverHeapUsedBytes,
              sessions: s.transceiverSessions,
              loadCore: s.loadCoreCpu,
              waitMsPerS: s.transceiverMainThreadWaitMsPerS,
              lagP99Ms: s.transceiverEventLoopLagP99Ms,
              lagMaxMs: [s.transceiverEventLoopLagMaxMs, s.loadgenLatenessMs.max, s.agentLatenessMs.max],
              disturbed: s.disturbed,
            })),
          },
    setup:
      setup === undefined
        ? undefined
        : {
            edge: setup.edge,
            direct: setup.direct,
            ratio: {
              p50: setup.edge.firstAudioMs.p50 / setup.direct.firstAudioMs.p50,
              p95: setup.edge.firstAudioMs.p95 / setup.direct.firstAudioMs.p95,
            },
          },
    profile:
      components.length === 0
        ? undefined
        : {
            busyMs: components[0]!.busyMs,
            components: components[0]!.components,
            top: profile[0]?.top.slice(0, 15),
          },
    workload: describeWorkload(voices),
    latency:
      capacity === undefined
        ? undefined
        : {
            atCalls: at?.calls,
            toBackendMs: at?.latencyToBackendMs ?? null,
            toClientMs: at?.latencyToClientMs ?? null,
            ...(at !== undefined && at.latencyToBackendMs === null && at.latencyToClientMs === null
              ? { note: `the transceiver exports no ${LATENCY_METRIC} histogram: not measured` }
              : {}),
          },
    echoLatencyMs:
      echo === undefined
        ? undefined
        : {
            p50: echo.echoLatencyMs.p50,
            p99: echo.echoLatencyMs.p99,
            calls: echo.calls,
            bursts: echo.echoLatencyMs.count,
            missedBursts: echo.missedBursts,
            echoDelayMs: settings.echoDelayMs,
            toneHz: echo.toneHz,
          },
    toneHz: TONE_HZ,
    disturbedSteps,
  };
  process.stdout.write(`${JSON.stringify(roundDeep(json))}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:transceiver failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
