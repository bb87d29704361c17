// The benchmark agent of the conversation workload (docs/benchmarks.md): a real backend speaking
// docs/backend-protocol.md (WebSocket, subprotocol voice-edge.v1; or, with --protocol
// twilio-media-streams, Twilio's messages through twilio-agent-wire.ts, 8000 Hz), started by
// `npm run bench:transceiver` instead of the echo agent. One AgentSession per call
// (agent-session.ts); one timer for all of them (the benchmark's Metronome: 4 groups 5 ms apart,
// so the calls' audio reaches the transceiver spread over its 20 ms tick, as independent backends'
// would). It shares the load core with the callers, the relay and signaling: it never encodes,
// decodes or copies audio, beyond a level per received frame (and, speaking Twilio's protocol,
// the μ-law and base64 every Twilio agent does).
//
//   node bench/transceiver/conversation-agent.ts --port P --pcm FILE --sample-rate 16000 \
//     [--seed 1] [--talk-share 0.5] [--barge-in-share 0.3] [--min-turn-ms 2000] \
//     [--max-turn-ms 6000] [--lead-ms 0] [--protocol voice-edge|twilio-media-streams]
//
// Plain HTTP: GET /healthz (200), GET /stats (the counters of every call so far, JSON, and how late
// its ticks ran since the previous GET /stats: the agent's own stalls, which delay its audio).
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { type RawData, WebSocketServer } from 'ws';
import { SUBPROTOCOL } from '../../protocol/backend.ts';
import { AgentSession, type AgentStats, emptyStats } from './agent-session.ts';
import { type ConversationOptions, checkConversationOptions, DEFAULT_CONVERSATION } from './conversation.ts';
import { Metronome } from './metronome.ts';
import { TWILIO_RATE, TwilioAgentWire } from './twilio-agent-wire.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    pcm: { type: 'string' },
    'sample-rate': { type: 'string', default: '16000' },
    seed: { type: 'string', default: '1' },
    'talk-share': { type: 'string', default: String(DEFAULT_CONVERSATION.talkShare) },
    'barge-in-share': { type: 'string', default: String(DEFAULT_CONVERSATION.bargeInShare) },
    'min-turn-ms': { type: 'string', default: String(DEFAULT_CONVERSATION.minTurnMs) },
    'max-turn-ms': { type: 'string', default: String(DEFAULT_CONVERSATION.maxTurnMs) },
    'lead-ms': { type: 'string', default: '0' },
    protocol: { type: 'string', default: 'voice-edge' },
  },
});
const twilio = values.protocol === 'twilio-media-streams';
if (!twilio && values.protocol !== 'voice-edge') {
  process.stderr.write(
    `conversation agent: --protocol voice-edge or twilio-media-streams, not ${values.protocol}\n`,
  );
  process.exit(2);
}
if (twilio && Number(values['sample-rate']) !== TWILIO_RATE) {
  process.stderr.write(
    `conversation agent: twilio-media-streams is ${TWILIO_RATE} Hz: --sample-rate ${TWILIO_RATE}\n`,
  );
  process.exit(2);
}
if (values.pcm === undefined) {
  process.stderr.write('conversation agent: --pcm FILE (PCM16LE mono at --sample-rate) is required\n');
  process.exit(2);
}
const conversation: ConversationOptions = {
  talkShare: Number(values['talk-share']),
  bargeInShare: Number(values['barge-in-share']),
  minTurnMs: Number(values['min-turn-ms']),
  maxTurnMs: Number(values['max-turn-ms']),
};
checkConversationOptions(conversation);
const pcm = readFileSync(values.pcm);
const sampleRate = Number(values['sample-rate']);
const runSeed = Number(values.seed);
const leadMs = Math.max(0, Math.round(Number(values['lead-ms']) / 20) * 20);

const metronome = new Metronome();
metronome.start();
const sessions = new Set<AgentSession>();
/** Counters of the sessions that have ended (the live ones are added on reading). */
const ended: AgentStats = emptyStats();

function add(into: AgentStats, from: AgentStats): void {
  for (const key of Object.keys(into) as (keyof AgentStats)[]) into[key] += from[key];
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  handleProtocols: () => SUBPROTOCOL,
});

const server = createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  if (request.url === '/stats') {
    const total = { ...ended };
    for (const session of sessions) add(total, session.stats);
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ ...total, live: sessions.size, latenessMs: metronome.takeLateness() }));
    return;
  }
  response
    .writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
    .end(`subprotocol ${SUBPROTOCOL}\n`);
});

server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
  const offered = request.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim()) ?? [];
  // Twilio asks for no subprotocol.
  if (!twilio && !offered.includes(SUBPROTOCOL)) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    const send = (data: string | Buffer) => {
      if (ws.readyState === ws.OPEN) ws.send(data, { binary: typeof data !== 'string' });
    };
    let wire: TwilioAgentWire | undefined;
    const session = new AgentSession({ conversation, runSeed, pcm, sampleRate, leadMs }, (data) =>
      wire === undefined ? send(data) : wire.fromSession(data),
    );
    if (twilio) wire = new TwilioAgentWire(session, send, () => ws.close(1000));
    sessions.add(session);
    const ticker = {
      tick() {
        session.tick();
        if (session.ended && ws.readyState === ws.OPEN) ws.close(1000);
      },
    };
    metronome.add(ticker);
    ws.on('message', (data, isBinary) => {
      const now = performance.now();
      if (wire !== undefined) {
        if (!isBinary) wire.onMessage(toBuffer(data).toString('utf8'), now);
      } else if (isBinary) session.onBinary(toBuffer(data), now);
      else session.onText(toBuffer(data).toString('utf8'), now);
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      metronome.remove(ticker);
      sessions.delete(session);
      add(ended, session.stats);
    });
  });
});

server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  process.stdout.write(
    `listening ${typeof address === 'object' && address !== null ? address.port : values.port}\n`,
  );
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    metronome.stop();
    for (const ws of wss.clients) ws.terminate();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
