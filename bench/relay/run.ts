// `npm run bench:relay [-- --quick]`: voice-edge's relay against coturn and against no forwarder at
// all, in one run, on loopback, with the same load generator (docs/benchmarks.md).
//
// Topology (every packet makes a round trip; the forwarder handles it twice):
//   direct  loadgen ─────────────────────────────▶ reflector ─▶ back
//   coturn  loadgen ─ChannelData▶ turnserver ─UDP▶ reflector ─▶ back the same way
//   relay   loadgen ─RTP-like──▶ relay ─tunnel──▶ reflector ─▶ back the same way
//   relay-tcp  the same over ICE-TCP (RFC 4571 frames on one TCP connection per flow), with
//           --transport tcp: beside the UDP relay in the same run
// The forwarder runs alone on one core (taskset), load generator and reflector on the other.
//
// Output: progress on stderr; on stdout a table, then, as the very last line, one JSON object.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { foreignLoadOver } from '../common/foreign-load.ts';
import { isQuick, numberReader, parseBenchArgs, usageError } from '../common/options.ts';
import {
  dropsBetween,
  foreignCpuSeconds,
  ksoftirqdPids,
  readAllProcessesCpu,
  readProcessCpuSeconds,
  readStealSeconds,
  readUdpDrops,
} from '../common/proc.ts';
import { buildNative } from './native.ts';
import {
  bindingRequestForNewSession,
  type Coturn,
  hasTaskset,
  killAllChildren,
  Loadgen,
  type LoadgenStep,
  type Relay,
  type Spawned,
  startCoturn,
  startReflector,
  startRelay,
} from './processes.ts';
import { type ProfileSummary, summarizeProfileDir } from './profile.ts';
import {
  isLossless,
  type SearchOptions,
  type StepFailure,
  type StepVerdict,
  searchMaxLossless,
} from './search.ts';

const repoRoot = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');

// ---- settings ---------------------------------------------------------------------------------

const usage = `usage: npm run bench:relay -- [options]
  --quick                 short smoke run (~1 min; also VOICE_EDGE_BENCH_QUICK=1)
  --targets LIST          comma-separated subset of direct,coturn,relay,relay-tcp
                          (default: direct,coturn,relay)
  --transport tcp         the relay's ICE-TCP path beside its UDP path: --targets direct,relay,relay-tcp
  --flows N               client sockets (flows) per target (default 16)
  --size BYTES            application packet size (default 200)
  --step-ms MS            duration of one throughput step (default 2000; quick 500)
  --drain-ms MS           wait for late echoes after a step (default 300; quick 200)
  --loss-threshold R      lossless = loss ratio <= R (default 0.0001 = 0.01 %)
  --max-p50-us US         ... and median RTT <= US during the step (default 1000: no queue build-up)
  --precision R           stop bisecting when hi/lo <= 1+R (default 0.03; quick 0.10)
  --start-rate PPS        first rate tried (default 50000)
  --max-rate PPS          highest rate tried (default 1600000)
  --latency-rate PPS      rate of the latency steps (default 20000)
  --latency-ms MS         duration of one latency step (default 3000; quick 700)
  --rounds N              latency rounds, interleaved over targets (default 3)
  --forwarder-cpu N       core of the forwarder (default 0)
  --load-cpu N            core of load generator + reflector (default 1)
  --relay-workers N       workers of voice-edge's relay (default 1)
  --coturn-threads N      coturn relay-threads (default 1)
  --profile-relay         run the relay under node --cpu-prof and print its hottest functions
  --keep                  keep the temporary directory (configs, logs, profiles)`;

const options = parseBenchArgs(usage, {
  quick: { type: 'boolean', default: false },
  targets: { type: 'string' },
  transport: { type: 'string' },
  flows: { type: 'string' },
  size: { type: 'string' },
  'step-ms': { type: 'string' },
  'drain-ms': { type: 'string' },
  'loss-threshold': { type: 'string' },
  'max-p50-us': { type: 'string' },
  precision: { type: 'string' },
  'start-rate': { type: 'string' },
  'max-rate': { type: 'string' },
  'latency-rate': { type: 'string' },
  'latency-ms': { type: 'string' },
  rounds: { type: 'string' },
  'forwarder-cpu': { type: 'string' },
  'load-cpu': { type: 'string' },
  'relay-workers': { type: 'string' },
  'coturn-threads': { type: 'string' },
  'profile-relay': { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
});
const numberOption = numberReader(options);

const quick = isQuick(options.quick);
const ALL_TARGETS = ['direct', 'coturn', 'relay', 'relay-tcp'] as const;
type TargetName = (typeof ALL_TARGETS)[number];
if (options.transport !== undefined && options.transport !== 'tcp' && options.transport !== 'udp') {
  usageError(`--transport: udp or tcp, not ${options.transport}`);
}
const defaultTargets = options.transport === 'tcp' ? 'direct,relay,relay-tcp' : 'direct,coturn,relay';
const wanted = (options.targets ?? defaultTargets).split(',').map((name) => name.trim());
for (const name of wanted) {
  if (!(ALL_TARGETS as readonly string[]).includes(name)) {
    usageError(`--targets: unknown target ${name}`);
  }
}

const settings = {
  quick,
  flows: numberOption('flows', 16),
  packetBytes: numberOption('size', 200),
  stepMs: numberOption('step-ms', quick ? 500 : 2000),
  drainMs: numberOption('drain-ms', quick ? 200 : 300),
  lossThreshold: numberOption('loss-threshold', 1e-4),
  maxP50Us: numberOption('max-p50-us', 1000),
  precision: numberOption('precision', quick ? 0.1 : 0.03),
  startRate: numberOption('start-rate', 50_000),
  minRate: 1_000,
  maxRate: numberOption('max-rate', 1_600_000),
  throughputTickUs: 200,
  latencyRate: numberOption('latency-rate', 20_000),
  latencyMs: numberOption('latency-ms', quick ? 700 : 3000),
  latencyTickUs: 50,
  warmupMs: quick ? 500 : 1500,
  rounds: Math.max(1, numberOption('rounds', 3)),
  forwarderCpu: numberOption('forwarder-cpu', 0),
  loadCpu: numberOption('load-cpu', 1),
  relayWorkers: Math.max(1, numberOption('relay-workers', 1)),
  coturnThreads: Math.max(1, numberOption('coturn-threads', 1)),
};

// ---- measured step ----------------------------------------------------------------------------

interface Target {
  readonly name: TargetName;
  readonly loadgen: Loadgen;
  /** The forwarder process (none for the direct path). */
  readonly forwarder: Spawned | undefined;
}

interface StepRecord extends StepVerdict {
  readonly durationMs: number;
  readonly sent: number;
  readonly received: number;
  readonly lossRatio: number;
  readonly failure: StepFailure | undefined;
  readonly rttUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** Forwarder CPU time per forwarded datagram (two per round trip), µs. */
  readonly forwarderUsPerDatagram: number | undefined;
  /** Busy share (0–1) of the forwarder's core and of the load core during the step. */
  readonly forwarderCoreBusy: number;
  readonly loadCoreBusy: number;
  /** Receive-buffer drops during the step, by the socket's owner. */
  readonly drops: { loadgen: number; reflector: number; other: number };
  /** CPU used meanwhile by processes that are not part of the benchmark, and hypervisor steal (cores). */
  readonly foreignCores: number;
  readonly stealCores: number;
  readonly disturbed: boolean;
  readonly raw: LoadgenStep;
}

let reflectorPort = 0;
const loadgenPorts = new Set<number>();
/** The benchmark's own processes (and the kernel's softirq threads): their CPU is not interference. */
const ourPids = new Set<number>([process.pid]);
/** Processes pinned to the load core (reflector, load generators, that core's ksoftirqd). */
const loadCorePids = new Set<number>();
/** The forwarder core's ksoftirqd, counted with the forwarder. */
let forwarderSoftirqPid: number | undefined;
const FOREIGN_LIMIT_CORES = 0.05;
/** A core at least this busy during a step counts as saturated. */
const SATURATED = 0.95;

type Bound = 'forwarder' | 'load side' | 'max rate' | 'unclear';

/**
 * What stopped the search: judged on the lowest rate that failed (its last try). Receive-buffer
 * drops say where packets were lost; without drops (queueing), the saturated core does.
 */
function boundOf(steps: readonly StepRecord[], maxRate: number, hasForwarder: boolean): Bound {
  const failed = steps.filter((step) => !step.lossless && step.rate > maxRate);
  if (failed.length === 0) return 'max rate';
  if (!hasForwarder) return 'load side';
  const lowest = Math.min(...failed.map((step) => step.rate));
  const step = failed.filter((candidate) => candidate.rate === lowest).at(-1)!;
  if (step.failure === 'loadgen') return 'load side';
  const loadDrops = step.drops.loadgen + step.drops.reflector;
  if (step.drops.other > 0 && step.drops.other >= loadDrops) return 'forwarder';
  if (loadDrops > 0) return 'load side';
  if (step.forwarderCoreBusy >= SATURATED) return 'forwarder';
  if (step.loadCoreBusy >= SATURATED) return 'load side';
  return 'unclear';
}
const STEAL_LIMIT_CORES = 0.05;
let disturbedSteps = 0;

function cpuOf(pids: Iterable<number | undefined>): number {
  let sum = 0;
  for (const pid of pids) if (pid !== undefined) sum += readProcessCpuSeconds(pid) ?? 0;
  return sum;
}

/** Waits (up to `timeoutMs`) until other processes use less than 5 % of a core over 500 ms. */
async function waitForQuiet(timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { foreignCores: foreign, stealCores: steal } = await foreignLoadOver(ourPids, 500, true);
    if (foreign < 0.05 && steal < STEAL_LIMIT_CORES) return true;
    if (Date.now() >= deadline) {
      log(
        `  machine still busy (other processes ${foreign.toFixed(2)} cores, steal ${steal.toFixed(2)}): going on`,
      );
      return false;
    }
  }
}

/** A step, repeated (after waiting for quiet) when other processes disturbed it. */
async function measureUndisturbed(
  target: Target,
  rate: number,
  durationMs: number,
  tickUs: number,
): Promise<StepRecord> {
  for (let attempt = 0; ; attempt++) {
    const record = await measure(target, rate, durationMs, tickUs);
    if (!record.disturbed) return record;
    if (attempt === 2) {
      disturbedSteps++;
      return record;
    }
    log('  disturbed by other processes: waiting for quiet, then repeating the step');
    await waitForQuiet(settings.quick ? 10_000 : 30_000);
  }
}

async function measure(
  target: Target,
  rate: number,
  durationMs: number,
  tickUs: number,
): Promise<StepRecord> {
  const forwarderPids = [target.forwarder?.pid, forwarderSoftirqPid];
  const forwarderBefore = cpuOf(forwarderPids);
  const loadBefore = cpuOf(loadCorePids);
  const processesBefore = readAllProcessesCpu(true);
  const stealBefore = readStealSeconds();
  const dropsBefore = readUdpDrops();
  const startedAt = performance.now();
  const raw = await target.loadgen.step({ rate, durationMs, drainMs: settings.drainMs, tickUs });
  const elapsed = (performance.now() - startedAt) / 1000;
  const dropsAfter = readUdpDrops();
  const foreignCores = foreignCpuSeconds(processesBefore, readAllProcessesCpu(true), ourPids) / elapsed;
  const stealCores = (readStealSeconds() - stealBefore) / elapsed;
  const forwarderSeconds = cpuOf(forwarderPids) - forwarderBefore;
  const loadSeconds = cpuOf(loadCorePids) - loadBefore;
  const verdict = isLossless(raw, durationMs, settings.lossThreshold, settings.maxP50Us);
  // Shares of the sending window (the drain after it is nearly idle).
  const window = durationMs / 1000;
  const us = (ns: number) => ns / 1000;
  const forwarded = 2 * raw.received;
  const record: StepRecord = {
    rate: raw.rate,
    durationMs,
    sent: raw.sent,
    received: raw.received,
    lossless: verdict.lossless,
    lossRatio: verdict.lossRatio,
    failure: verdict.failure,
    loadgenLimited: verdict.loadgenLimited,
    rttUs: {
      p50: us(raw.rtt_ns.p50),
      p90: us(raw.rtt_ns.p90),
      p99: us(raw.rtt_ns.p99),
      p999: us(raw.rtt_ns.p999),
      max: us(raw.rtt_ns.max),
      mean: us(raw.rtt_ns.mean),
    },
    forwarderUsPerDatagram:
      target.forwarder && forwarded > 0 ? (forwarderSeconds * 1e6) / forwarded : undefined,
    forwarderCoreBusy: Math.min(1, forwarderSeconds / window),
    loadCoreBusy: Math.min(1, loadSeconds / window),
    drops: {
      loadgen: dropsBetween(dropsBefore, dropsAfter, (port) => loadgenPorts.has(port)),
      reflector: dropsBetween(dropsBefore, dropsAfter, (port) => port === reflectorPort),
      other: dropsBetween(
        dropsBefore,
        dropsAfter,
        (port) => port !== reflectorPort && !loadgenPorts.has(port),
      ),
    },
    foreignCores,
    stealCores,
    disturbed: foreignCores > FOREIGN_LIMIT_CORES || stealCores > STEAL_LIMIT_CORES,
    raw,
  };
  log(
    `  ${target.name.padEnd(6)} ${fmtInt(record.rate).padStart(9)} pps: ` +
      `loss ${(record.lossRatio * 100).toFixed(4)} % ${record.failure === undefined ? 'ok      ' : record.failure.toUpperCase().padEnd(8)}` +
      ` rtt p50 ${record.rttUs.p50.toFixed(1)} µs ` +
      `p99 ${record.rttUs.p99.toFixed(1)} µs, cpu fwd ${pct(record.forwarderCoreBusy)} load ${pct(record.loadCoreBusy)}` +
      `${record.forwarderUsPerDatagram === undefined ? '' : `, ${record.forwarderUsPerDatagram.toFixed(2)} µs/dgram`}` +
      ` drops l/r/o ${record.drops.loadgen}/${record.drops.reflector}/${record.drops.other}` +
      `${record.disturbed ? ` DISTURBED (others ${record.foreignCores.toFixed(2)} cores, steal ${record.stealCores.toFixed(2)})` : ''}`,
  );
  return record;
}

// ---- formatting -------------------------------------------------------------------------------

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
const fmtInt = (value: number) => Math.round(value).toLocaleString('en-US');
const pct = (share: number) => `${Math.round(share * 100)}%`;
const round1 = (value: number) => Math.round(value * 10) / 10;
const round3 = (value: number) => Math.round(value * 1000) / 1000;
const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

// ---- main -------------------------------------------------------------------------------------

interface TargetResult {
  maxLosslessPps: number;
  confirmed: boolean;
  hitCeiling: boolean;
  loadgenLimited: boolean;
  /** What limited the rate (see boundOf). */
  bound: Bound;
  forwardedDatagramsPerSecond: number;
  cpuUsPerDatagramAtMax: number | undefined;
  coreBusyAtMax: { forwarder: number; load: number } | undefined;
  rttUs: { p50: number; p99: number; p999: number; mean: number };
  rttRoundsUs: { p50: number; p99: number }[];
  latencyLossRatio: number;
  addedRttUs: { p50: number; p99: number } | undefined;
  search: [rate: number, lossPercent: number, rttP50Us: number, verdict: 'ok' | StepFailure][];
}

async function main(): Promise<void> {
  const started = Date.now();
  if (process.platform !== 'linux')
    throw new Error('the relay benchmark needs Linux (/proc, sendmmsg, taskset)');
  const cpus = availableParallelism();
  const pinning = hasTaskset() && cpus >= 2;
  if (!pinning)
    log(`warning: ${cpus < 2 ? 'fewer than 2 cores' : 'taskset missing'}: processes are not pinned`);
  const forwarderCpu = pinning ? settings.forwarderCpu : undefined;
  const loadCpu = pinning ? settings.loadCpu : undefined;

  log('building loadgen and reflector…');
  const loadgenBinary = buildNative('loadgen');
  const reflectorBinary = buildNative('reflector');
  const dir = mkdtempSync(join(tmpdir(), 'voice-edge-bench-'));
  const skipped: Record<string, string> = {};
  const targets: Target[] = [];
  let coturn: Coturn | undefined;
  let relay: Relay | undefined;
  const profileDir = join(dir, 'relay-profile');

  try {
    const softirqThreads = ksoftirqdPids();
    for (const pid of softirqThreads.values()) ourPids.add(pid);
    forwarderSoftirqPid = softirqThreads.get(settings.forwarderCpu);
    const loadSoftirq = softirqThreads.get(settings.loadCpu);
    if (loadSoftirq !== undefined) loadCorePids.add(loadSoftirq);
    const reflector = await startReflector(reflectorBinary, loadCpu);
    reflectorPort = reflector.port;
    ourPids.add(reflector.pid);
    loadCorePids.add(reflector.pid);
    const common = ['--flows', String(settings.flows), '--size', String(settings.packetBytes)];
    const addLoadgen = async (name: TargetName, args: string[], forwarder: Spawned | undefined) => {
      const loadgen = await Loadgen.start(loadgenBinary, [...args, ...common], loadCpu, `loadgen-${name}`);
      for (const port of loadgen.ready.ports) loadgenPorts.add(port);
      ourPids.add(loadgen.spawned.pid);
      loadCorePids.add(loadgen.spawned.pid);
      if (forwarder) ourPids.add(forwarder.pid);
      targets.push({ name, loadgen, forwarder });
    };

    if (wanted.includes('direct')) {
      await addLoadgen('direct', ['--mode', 'udp', '--target', `127.0.0.1:${reflector.port}`], undefined);
    }
    if (wanted.includes('coturn')) {
      try {
        coturn = await startCoturn({
          dir,
          cpu: forwarderCpu,
          relayThreads: settings.coturnThreads,
          flows: settings.flows,
        });
        log(`coturn ${coturn.version} on 127.0.0.1:${coturn.port}`);
        await addLoadgen(
          'coturn',
          ['--mode', 'turn', '--target', `127.0.0.1:${coturn.port}`, '--peer', `127.0.0.1:${reflector.port}`],
          coturn,
        );
      } catch (error) {
        skipped.coturn = (error as Error).message;
        log(`skipping coturn: ${skipped.coturn}`);
      }
    }
    if (wanted.includes('relay') || wanted.includes('relay-tcp')) {
      if (!existsSync(join(repoRoot, 'relay/main.ts'))) {
        skipped.relay = 'relay/main.ts does not exist';
        log(`skipping relay: ${skipped.relay}`);
      } else {
        relay = await startRelay({
          dir,
          repoRoot,
          cpu: forwarderCpu,
          reflectorPort: reflector.port,
          workers: settings.relayWorkers,
          nodeArgs: options['profile-relay'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
        });
        log(`voice-edge relay on 127.0.0.1:${relay.port} (tcp ${relay.tcpPort}, http ${relay.httpPort})`);
        const requests = () =>
          Array.from({ length: settings.flows }, () =>
            bindingRequestForNewSession(relay!.keyring).toString('hex'),
          ).join(',');
        if (wanted.includes('relay')) {
          await addLoadgen(
            'relay',
            ['--mode', 'relay', '--target', `127.0.0.1:${relay.port}`, '--stun-hex', requests()],
            relay,
          );
        }
        if (wanted.includes('relay-tcp')) {
          await addLoadgen(
            'relay-tcp',
            ['--mode', 'relay-tcp', '--target', `127.0.0.1:${relay.tcpPort}`, '--stun-hex', requests()],
            relay,
          );
        }
      }
    }
    if (targets.length === 0) throw new Error('no target to measure');

    if (!(await waitForQuiet(settings.quick ? 5_000 : 30_000))) {
      log('warning: other processes are using the CPU; figures may be disturbed');
    }
    // Warm-up (JIT, caches, allocations): not reported.
    log('warm-up…');
    for (const target of targets)
      await measure(target, settings.latencyRate, settings.warmupMs, settings.latencyTickUs);

    // Latency: rounds interleaved over the targets, so slow drifts of the machine hit all alike.
    log(
      `latency at ${fmtInt(settings.latencyRate)} pps, ${settings.rounds} round(s) of ${settings.latencyMs} ms…`,
    );
    const latency = new Map<TargetName, StepRecord[]>(targets.map((target) => [target.name, []]));
    for (let round = 0; round < settings.rounds; round++) {
      for (const target of targets) {
        latency
          .get(target.name)!
          .push(
            await measureUndisturbed(
              target,
              settings.latencyRate,
              settings.latencyMs,
              settings.latencyTickUs,
            ),
          );
      }
    }

    // Throughput: the lossless search, one target after the other.
    const searchOptions: SearchOptions = {
      startRate: settings.startRate,
      minRate: settings.minRate,
      maxRate: settings.maxRate,
      precision: settings.precision,
      granularity: 1000,
      confirmations: 2,
      retries: 1,
    };
    const searches = new Map<TargetName, Awaited<ReturnType<typeof searchMaxLossless<StepRecord>>>>();
    for (const target of targets) {
      log(`highest lossless rate: ${target.name}…`);
      searches.set(
        target.name,
        await searchMaxLossless(
          (rate) => measureUndisturbed(target, rate, settings.stepMs, settings.throughputTickUs),
          searchOptions,
        ),
      );
    }

    let relayMetrics: Record<string, number> | undefined;
    if (relay) relayMetrics = await scrapeRelayMetrics(relay.httpPort);

    // Results.
    const results: Partial<Record<TargetName, TargetResult>> = {};
    for (const target of targets) {
      const rounds = latency.get(target.name)!;
      const search = searches.get(target.name)!;
      const atMax = [...search.steps]
        .reverse()
        .find((step) => step.lossless && step.rate === search.maxLosslessRate);
      const latencySent = rounds.reduce((sum, step) => sum + step.sent, 0);
      const latencyReceived = rounds.reduce((sum, step) => sum + step.received, 0);
      results[target.name] = {
        maxLosslessPps: search.maxLosslessRate,
        confirmed: search.confirmed,
        hitCeiling: search.hitCeiling,
        bound: boundOf(search.steps, search.maxLosslessRate, target.forwarder !== undefined),
        loadgenLimited: search.loadgenLimited,
        forwardedDatagramsPerSecond: target.forwarder ? 2 * search.maxLosslessRate : 0,
        cpuUsPerDatagramAtMax:
          atMax?.forwarderUsPerDatagram === undefined ? undefined : round3(atMax.forwarderUsPerDatagram),
        coreBusyAtMax: atMax
          ? { forwarder: round3(atMax.forwarderCoreBusy), load: round3(atMax.loadCoreBusy) }
          : undefined,
        rttUs: {
          p50: round1(median(rounds.map((step) => step.rttUs.p50))),
          p99: round1(median(rounds.map((step) => step.rttUs.p99))),
          p999: round1(median(rounds.map((step) => step.rttUs.p999))),
          mean: round1(median(rounds.map((step) => step.rttUs.mean))),
        },
        rttRoundsUs: rounds.map((step) => ({ p50: round1(step.rttUs.p50), p99: round1(step.rttUs.p99) })),
        latencyLossRatio: latencySent > 0 ? (latencySent - latencyReceived) / latencySent : 0,
        addedRttUs: undefined,
        search: search.steps.map((step) => [
          step.rate,
          Math.round(step.lossRatio * 1e6) / 1e4,
          Math.round(step.rttUs.p50),
          step.failure ?? 'ok',
        ]),
      };
    }
    const direct = results.direct;
    for (const name of ['coturn', 'relay', 'relay-tcp'] as const) {
      const result = results[name];
      if (result && direct) {
        result.addedRttUs = {
          p50: round1(result.rttUs.p50 - direct.rttUs.p50),
          p99: round1(result.rttUs.p99 - direct.rttUs.p99),
        };
      }
    }
    const ratio = (a: number | undefined, b: number | undefined) =>
      a !== undefined && b !== undefined && b !== 0 ? round3(a / b) : undefined;
    const ratios =
      results.relay && results.coturn
        ? {
            maxLosslessPps: ratio(results.relay.maxLosslessPps, results.coturn.maxLosslessPps),
            cpuUsPerDatagram: ratio(
              results.relay.cpuUsPerDatagramAtMax,
              results.coturn.cpuUsPerDatagramAtMax,
            ),
            addedRttP50: ratio(results.relay.addedRttUs?.p50, results.coturn.addedRttUs?.p50),
            addedRttP99: ratio(results.relay.addedRttUs?.p99, results.coturn.addedRttUs?.p99),
          }
        : undefined;
    const tcpRatios =
      results['relay-tcp'] && results.relay
        ? {
            maxLosslessPps: ratio(results['relay-tcp'].maxLosslessPps, results.relay.maxLosslessPps),
            cpuUsPerDatagram: ratio(
              results['relay-tcp'].cpuUsPerDatagramAtMax,
              results.relay.cpuUsPerDatagramAtMax,
            ),
            addedRttP50: ratio(results['relay-tcp'].addedRttUs?.p50, results.relay.addedRttUs?.p50),
            addedRttP99: ratio(results['relay-tcp'].addedRttUs?.p99, results.relay.addedRttUs?.p99),
          }
        : undefined;

    // Stop the forwarders before reading profiles (V8 writes them on exit).
    await Promise.all(targets.map((target) => target.loadgen.close()));
    await relay?.stop(10_000);
    await coturn?.stop();
    await reflector.stop();
    let profiles: ProfileSummary[] | undefined;
    if (options['profile-relay']) profiles = summarizeProfileDir(profileDir, repoRoot, 25);

    printReport(
      results,
      { 'relay / coturn': ratios, 'relay TCP / relay UDP': tcpRatios },
      skipped,
      relayMetrics,
      profiles,
      coturn?.version,
    );
    const report = {
      benchmark: 'relay',
      version: 1,
      date: new Date().toISOString(),
      durationS: Math.round((Date.now() - started) / 100) / 10,
      host: {
        cpus,
        kernel: release(),
        node: process.version,
        coturn: coturn?.version,
        pinned: pinning,
      },
      settings: { ...settings, pinning },
      units: {
        maxLosslessPps:
          'client packets per second, each echoed back (round trip); the forwarder handles it twice',
        rtt: 'microseconds, round trip, median over latency rounds of each round percentile',
      },
      results,
      ratios: ratios || tcpRatios ? { relayOverCoturn: ratios, relayTcpOverUdp: tcpRatios } : undefined,
      relayMetrics,
      disturbedSteps,
      relayProfile: profiles
        ?.filter((profile) => profile.busyMs >= 100)
        .map((profile) => ({
          busyMs: Math.round(profile.busyMs),
          top: profile.top.slice(0, 10).map((entry) => [entry.function, round3(entry.share)]),
        })),
      skipped: Object.keys(skipped).length ? skipped : undefined,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    killAllChildren();
    if (options.keep || options['profile-relay']) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function scrapeRelayMetrics(port: number): Promise<Record<string, number> | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await response.text();
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || !line.startsWith('voice_edge_relay_')) continue;
      const space = line.lastIndexOf(' ');
      const value = Number(line.slice(space + 1));
      if (!Number.isFinite(value) || value === 0) continue;
      if (!/packets|drop|flows_created|send_error/.test(line)) continue;
      out[line.slice(0, space)] = value;
    }
    return out;
  } catch {
    return undefined;
  }
}

function printReport(
  results: Partial<Record<TargetName, TargetResult>>,
  ratioRows: Record<string, Record<string, number | undefined> | undefined>,
  skipped: Record<string, string>,
  relayMetrics: Record<string, number> | undefined,
  profiles: ProfileSummary[] | undefined,
  coturnVersion: string | undefined,
): void {
  const out: string[] = [];
  const labels: Record<TargetName, string> = {
    direct: 'direct (no forwarder)',
    coturn: `coturn ${coturnVersion ?? ''} TURN ChannelData`.replace('  ', ' '),
    relay: 'voice-edge relay',
    'relay-tcp': 'voice-edge relay, ICE-TCP',
  };
  out.push('');
  out.push(
    `relay benchmark: ${settings.packetBytes}-byte packets, ${settings.flows} flows, loopback; forwarder on core ` +
      `${settings.forwarderCpu}, load generator + reflector on core ${settings.loadCpu}`,
  );
  out.push(
    `lossless = loss <= ${settings.lossThreshold * 100} % and RTT p50 <= ${settings.maxP50Us} µs over a ${settings.stepMs} ms step (+${settings.drainMs} ms drain); ` +
      `latency at ${fmtInt(settings.latencyRate)} pps, ${settings.rounds} x ${settings.latencyMs} ms${settings.quick ? ' (QUICK RUN)' : ''}`,
  );
  out.push('');
  const header = [
    'path'.padEnd(34),
    'lossless pps'.padStart(13),
    'fwd dgram/s'.padStart(12),
    'CPU µs/dgram'.padStart(13),
    'RTT p50'.padStart(10),
    'RTT p99'.padStart(10),
    'added p50'.padStart(10),
    'added p99'.padStart(10),
  ];
  out.push(header.join(' '));
  out.push('-'.repeat(header.join(' ').length));
  for (const name of ALL_TARGETS) {
    const result = results[name];
    if (!result) {
      if (skipped[name]) out.push(`${labels[name].padEnd(34)} skipped: ${skipped[name]!.split('\n')[0]}`);
      continue;
    }
    const lowerBound = name !== 'direct' && result.bound !== 'forwarder';
    const flags = `${lowerBound ? '≥' : ''}${result.confirmed ? '' : '?'}`;
    out.push(
      [
        labels[name].padEnd(34),
        `${flags}${fmtInt(result.maxLosslessPps)}`.padStart(13),
        (result.forwardedDatagramsPerSecond ? fmtInt(result.forwardedDatagramsPerSecond) : '–').padStart(12),
        (result.cpuUsPerDatagramAtMax === undefined ? '–' : result.cpuUsPerDatagramAtMax.toFixed(2)).padStart(
          13,
        ),
        `${result.rttUs.p50.toFixed(1)} µs`.padStart(10),
        `${result.rttUs.p99.toFixed(1)} µs`.padStart(10),
        (result.addedRttUs ? `${result.addedRttUs.p50.toFixed(1)} µs` : '–').padStart(10),
        (result.addedRttUs ? `${result.addedRttUs.p99.toFixed(1)} µs` : '–').padStart(10),
      ].join(' '),
    );
  }
  for (const [label, ratios] of Object.entries(ratioRows)) {
    if (!ratios) continue;
    const show = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(2)}x`);
    out.push('-'.repeat(header.join(' ').length));
    out.push(
      [
        label.padEnd(34),
        show(ratios.maxLosslessPps).padStart(13),
        ''.padStart(12),
        show(ratios.cpuUsPerDatagram).padStart(13),
        ''.padStart(10),
        ''.padStart(10),
        show(ratios.addedRttP50).padStart(10),
        show(ratios.addedRttP99).padStart(10),
      ].join(' '),
    );
  }
  out.push('');
  if (disturbedSteps > 0) {
    out.push(
      `WARNING: ${disturbedSteps} step(s) ran while other processes used the CPU, even after retries.`,
    );
  }
  out.push('lossless pps: client packets/s, each echoed back, so a forwarder moves 2 datagrams per packet.');
  out.push(
    '≥ a lower bound: the search was not stopped by the forwarder (load side or --max-rate, see "bound");',
  );
  out.push('? not confirmed by a repeat. added = RTT percentile minus the direct path’s.');
  for (const name of ALL_TARGETS) {
    const result = results[name];
    if (!result) continue;
    out.push(
      `  ${name}: search ${result.search.map(([rate, loss, p50, verdict]) => `${Math.round(rate / 1000)}k${verdict === 'ok' ? '' : verdict === 'loss' ? `(loss ${loss}%)` : verdict === 'queueing' ? `(p50 ${p50}µs)` : '(loadgen)'}`).join(' ')}` +
        `; bound: ${result.bound}` +
        (result.coreBusyAtMax
          ? `; CPU at max ${pct(result.coreBusyAtMax.forwarder)} fwd / ${pct(result.coreBusyAtMax.load)} load`
          : '') +
        `; latency rounds p50/p99 µs ${result.rttRoundsUs.map((round) => `${round.p50}/${round.p99}`).join(', ')}`,
    );
  }
  if (relayMetrics) {
    const interesting = Object.entries(relayMetrics)
      .map(([key, value]) => `${key.replace('voice_edge_relay_', '')}=${fmtInt(value)}`)
      .join(', ');
    out.push(`  relay metrics (non-zero): ${interesting}`);
  }
  if (profiles) {
    for (const profile of profiles) {
      if (profile.busyMs < 100) continue;
      out.push('');
      out.push(
        `relay CPU profile ${profile.file}: busy ${fmtInt(profile.busyMs)} ms of ${fmtInt(profile.totalMs)} ms`,
      );
      for (const entry of profile.top) {
        out.push(
          `  ${(entry.share * 100).toFixed(1).padStart(5)} %  ${fmtInt(entry.selfMs).padStart(7)} ms  ${entry.function}`,
        );
      }
    }
  }
  out.push('');
  process.stdout.write(`${out.join('\n')}\n`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
process.on('exit', killAllChildren);

main().catch((error: unknown) => {
  killAllChildren();
  process.stderr.write(
    `bench:relay failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
