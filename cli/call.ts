// `npm run call`: a headless WHIP call against a running edge (this machine's `npm start`, or a
// remote URL). It sends a test tone, listens for the echo agent sending it back, and prints the
// call's figures; the last line printed is always one JSON object (`--json`: nothing else on
// stdout). Exit status: 0 connected and echo heard, 1 otherwise (the reason on stderr and in the
// JSON `error`), 2 for a bad option. Ctrl-C hangs up cleanly (a second one exits at once).
import { type CallFigures, ToneCaller } from './caller.ts';
import { parseCallOptions, usage } from './options.ts';

const parsed = parseCallOptions(process.argv.slice(2));
if (parsed.kind === 'help') {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
if (parsed.kind === 'error') {
  process.stderr.write(`voice-edge call: ${parsed.message}\n${usage}\n`);
  process.exit(2);
}
const options = parsed.options;
const say = (line: string) => {
  if (!options.json) process.stdout.write(`${line}\n`);
};

const interrupt = new AbortController();
let interruptedAt: number | undefined;
const onSignal = (signal: NodeJS.Signals) => {
  if (interruptedAt !== undefined) {
    // Ctrl-C under npm can arrive twice at once (from the terminal, and forwarded by npm when its
    // shell exec'd node): only a later one counts.
    if (Date.now() - interruptedAt < 1_000) return;
    process.stderr.write(`voice-edge call: second ${signal}: exiting at once\n`);
    process.exit(130);
  }
  interruptedAt = Date.now();
  say(`${signal}: hanging up…`);
  interrupt.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

say(`calling ${options.url.href} with a ${options.toneHz} Hz tone for ${options.durationS} s`);
const caller = new ToneCaller({
  url: options.url,
  toneHz: options.toneHz,
  token: options.token,
  region: options.region,
});
let error: string | undefined;
try {
  await caller.connect(options.timeoutS * 1000, interrupt.signal);
  say(`connected in ${caller.figures(undefined).setupMs} ms; sending the tone`);
  await caller.run(options.durationS * 1000, interrupt.signal);
  error = caller.lostReason;
} catch (failure) {
  error = (failure as Error).message;
}
const hangUpProblem = await caller.hangUp();
if (hangUpProblem !== undefined) process.stderr.write(`voice-edge call: hanging up: ${hangUpProblem}\n`);
if (error === undefined && !caller.figures(undefined).echoDetected)
  error = `no echo: ${caller.describeNoEcho()}`;
const figures = caller.figures(error);
for (const line of summary(figures)) say(line);
if (error !== undefined) process.stderr.write(`voice-edge call: ${error}\n`);
const code = figures.connected && figures.echoDetected && error === undefined ? 0 : 1;
// werift keeps timers of its own after close(): exit explicitly once the JSON line is out.
process.stdout.write(`${JSON.stringify(figures)}\n`, () => process.exit(code));

function summary(f: CallFigures): string[] {
  const ms = (value: number | null) => (value === null ? 'n/a' : `${value} ms`);
  if (!f.connected) return ['not connected'];
  return [
    f.echoDetected
      ? `echo heard ${ms(f.echoDelayMs)} after the tone started (${f.echoFrequencyHz} Hz, RMS ${f.echoLevel})`
      : 'no echo heard',
    `sent ${f.packetsSent} packets, received ${f.packetsReceived} (lost ${f.packetsLost}, ` +
      `loss ${f.lossRatio === null ? 'n/a' : `${(f.lossRatio * 100).toFixed(2)} %`}), ` +
      `jitter ${ms(f.jitterMs)}, RTT ${ms(f.rttMs)}`,
    'hung up',
  ];
}
