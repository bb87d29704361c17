// `npm run bench:global [-- --quick]`: what the first hop is worth (docs/global-tier.md,
// docs/benchmarks.md). In simulated regions (test/support/global-net.ts: network namespaces, a NAT,
// a userspace delay/loss element on a TUN device) a user calls the same cluster twice over:
// directly (60 ms ±12 each way, 3 % loss each way: the public internet from far away) and through an
// edge relay 5 ms away that reaches the cluster over a clean 35 ms backbone. The caller is
// `npm run call` (cli/call.ts, werift) run in the user's namespace; RTT comes from the RTCP reports
// on its stream, jitter and loss from the stream the edge sends back, the echo delay from the tone.
// Needs root.
//
// Output: progress on stderr; on stdout a table, then, as the very last line, one JSON object.

import type { CallFigures } from '../../cli/caller.ts';
import { GlobalEdge } from '../../test/support/global-edge.ts';
import { DEFAULT_DISTANCES, type Distances } from '../../test/support/global-net.ts';
import { isQuick, parseBenchArgs, usageError } from '../common/options.ts';

const usage = `usage: npm run bench:global -- [options]
  --quick          short run: 1 round of 8 s calls (also VOICE_EDGE_BENCH_QUICK=1)
  --duration S     seconds of tone per call (default 20)
  --rounds N       calls per path, alternating direct and via the edge (default 2)
  --seed N         seed of the delay/loss element (default ${DEFAULT_DISTANCES.seed})`;

function parseOptions() {
  const values = parseBenchArgs(usage, {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    seed: { type: 'string' },
  });
  const quick = isQuick(values.quick);
  const integer = (name: string, text: string | undefined, fallback: number, min: number, max: number) => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      usageError(`--${name} must be an integer from ${min} to ${max}\n${usage}`);
    }
    return value;
  };
  return {
    durationS: integer('duration', values.duration, quick ? 8 : 20, 3, 600),
    rounds: integer('rounds', values.rounds, quick ? 1 : 2, 1, 20),
    seed: integer('seed', values.seed, DEFAULT_DISTANCES.seed, 0, 0xffffffff),
  };
}

type Path = 'direct' | 'edge';

interface PathSummary {
  readonly calls: number;
  /** Means over the calls (null if no call measured it). */
  readonly rttMs: number | null;
  readonly jitterMs: number | null;
  readonly lossRatio: number | null;
  readonly setupMs: number | null;
  readonly echoDelayMs: number | null;
  /** The emulated network's own round trip for this path (twice the mean one-way delay). */
  readonly emulatedRttMs: number;
  readonly emulatedLossRatio: number;
  readonly figures: CallFigures[];
}

function mean(values: Array<number | null>): number | null {
  const present = values.filter((value): value is number => value !== null);
  if (present.length === 0) return null;
  return Number((present.reduce((sum, value) => sum + value, 0) / present.length).toFixed(2));
}

function summarize(path: Path, figures: CallFigures[], distances: Distances): PathSummary {
  const legs = path === 'direct' ? [distances.userCluster] : [distances.userEdge, distances.edgeCluster];
  const oneWay = legs.reduce((sum, leg) => sum + leg.delayMs + leg.jitterMs / 2, 0);
  const delivered = legs.reduce((product, leg) => product * (1 - leg.lossPercent / 100), 1);
  return {
    calls: figures.length,
    rttMs: mean(figures.map((f) => f.rttMs)),
    jitterMs: mean(figures.map((f) => f.jitterMs)),
    lossRatio: mean(figures.map((f) => f.lossRatio)),
    setupMs: mean(figures.map((f) => f.setupMs)),
    echoDelayMs: mean(figures.map((f) => f.echoDelayMs)),
    emulatedRttMs: Number((2 * oneWay).toFixed(1)),
    emulatedLossRatio: Number((1 - delivered).toFixed(4)),
    figures,
  };
}

const options = parseOptions();
const distances: Distances = { ...DEFAULT_DISTANCES, seed: options.seed };
const say = (line: string) => process.stderr.write(`${line}\n`);

say(`bench:global: ${options.rounds} round(s) of ${options.durationS} s calls, direct and via the edge`);
const edge = await GlobalEdge.start({ distances });
const calls: Record<Path, CallFigures[]> = { direct: [], edge: [] };
let failure: string | undefined;
try {
  for (let round = 1; round <= options.rounds; round++) {
    for (const path of ['direct', 'edge'] as const) {
      // Region us-east has no edge relay: signaling answers with cluster 1's own relay. Without a
      // header the user's address puts it in region eu, whose edge relay the answer names.
      const result = await edge.callFromUser({
        durationS: options.durationS,
        ...(path === 'direct' ? { region: 'us-east' } : {}),
      });
      const f = result.figures;
      say(
        `round ${round} ${path.padEnd(6)}: RTT ${f.rttMs} ms, jitter ${f.jitterMs} ms, loss ${f.lossRatio}, ` +
          `setup ${f.setupMs} ms, echo ${f.echoDelayMs} ms${result.code === 0 ? '' : ` (failed: ${f.error})`}`,
      );
      if (result.code !== 0) throw new Error(`the ${path} call failed: ${f.error ?? result.stderr}`);
      calls[path].push(f);
    }
  }
} catch (error) {
  failure = (error as Error).message;
  say(`bench:global: ${failure}\n${edge.output}`);
} finally {
  await edge.stop();
}

const direct = summarize('direct', calls.direct, distances);
const viaEdge = summarize('edge', calls.edge, distances);
const cell = (value: number | null, unit = '') => (value === null ? 'n/a' : `${value}${unit}`);
const percent = (value: number | null) => (value === null ? 'n/a' : `${(value * 100).toFixed(2)} %`);
const rows = [
  ['path', 'RTT', 'jitter', 'loss', 'setup', 'echo delay', 'emulated RTT / loss'],
  ...(
    [
      ['direct', direct],
      ['via edge', viaEdge],
    ] as const
  ).map(([name, s]) => [
    name,
    cell(s.rttMs, ' ms'),
    cell(s.jitterMs, ' ms'),
    percent(s.lossRatio),
    cell(s.setupMs, ' ms'),
    cell(s.echoDelayMs, ' ms'),
    `${s.emulatedRttMs} ms / ${percent(s.emulatedLossRatio)}`,
  ]),
];
const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
for (const row of rows)
  process.stdout.write(
    `${row
      .map((text, i) => text.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()}\n`,
  );

const difference = (a: number | null, b: number | null) =>
  a === null || b === null ? null : Number((a - b).toFixed(2));
process.stdout.write(
  `${JSON.stringify({
    bench: 'global',
    durationS: options.durationS,
    rounds: options.rounds,
    topology: {
      userEdge: distances.userEdge,
      edgeCluster: distances.edgeCluster,
      userCluster: distances.userCluster,
      seed: distances.seed,
      element: 'userspace TUN delay/loss (test/support/wan), per-link FIFO',
    },
    direct: { ...direct, figures: undefined },
    edge: { ...viaEdge, figures: undefined },
    edgeBetterBy: {
      rttMs: difference(direct.rttMs, viaEdge.rttMs),
      jitterMs: difference(direct.jitterMs, viaEdge.jitterMs),
      lossRatio: difference(direct.lossRatio, viaEdge.lossRatio),
    },
    error: failure ?? null,
  })}\n`,
  () => process.exit(failure === undefined ? 0 : 1),
);
