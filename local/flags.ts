// `npm start`'s options: parsed and checked here (pure, so the unit tests see every message), used by
// local/main.ts.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatIssues } from '../protocol/schema.ts';
import { BACKEND_PROTOCOLS } from '../transceiver/backend-wire.ts';

export const USAGE = `usage: npm start -- [--host 127.0.0.1] [--http-port 8080] [--relay-port 3478]
                      [--echo-delay-ms 500] [--sample-rate 16000] [--log-level warn]
                      [--backend-url ws://host:port/path]
                      [--backend-protocol voice-edge|twilio-media-streams]

  --host              where everything listens: an IPv4 or an IPv6 address (127.0.0.1, ::1)
  --relay-port        the relay's media port, UDP and (for callers whose network blocks UDP) TCP
  --backend-url       the backend calls are bridged to (ws:// or wss://); without it, the bundled
                      echo agent (voice-edge protocol, delayed by --echo-delay-ms)
  --backend-protocol  what the backend speaks (docs/backend-protocol.md): voice-edge (default),
                      PCM16 at --sample-rate; or twilio-media-streams, Twilio Media Streams messages
                      with 8000 Hz μ-law, for agents written for Twilio (e.g. Pipecat's
                      TwilioFrameSerializer): needs --backend-url`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;
type SampleRate = (typeof SAMPLE_RATES)[number];
/** --sample-rate when left out with the voice-edge protocol. */
export const DEFAULT_SAMPLE_RATE: SampleRate = 16000;

/** A whole number in [min, max], with one message for every way of missing it. */
const whole = (min: number, max: number, what = 'a whole number') => {
  const error = `must be ${what} from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

const Flags = z
  .object({
    host: z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' }),
    'http-port': whole(0, 65535, 'a port number'),
    'relay-port': whole(1, 65535, 'a port number'),
    'echo-delay-ms': whole(0, 10_000),
    'sample-rate': z.coerce
      .number()
      .pipe(
        z.union([z.literal(8000), z.literal(12000), z.literal(16000), z.literal(24000), z.literal(48000)], {
          error: `must be one of ${SAMPLE_RATES.join(', ')}`,
        }),
      )
      .optional(),
    'log-level': z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }),
    'backend-protocol': z.enum(BACKEND_PROTOCOLS, {
      error: `must be one of ${BACKEND_PROTOCOLS.join(', ')}`,
    }),
    'backend-url': z
      .string()
      .refine(isWebSocketUrl, { error: 'must be a ws:// or wss:// URL with a host' })
      .optional(),
  })
  .superRefine((flags, context) => {
    if (flags['backend-protocol'] !== 'twilio-media-streams') return;
    if (flags['backend-url'] === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['backend-protocol'],
        message:
          'twilio-media-streams needs --backend-url, the ws:// or wss:// URL of a Twilio Media Streams ' +
          'agent (e.g. a Pipecat bot with TwilioFrameSerializer): the bundled echo agent speaks the voice-edge protocol only',
      });
    }
    if (flags['sample-rate'] !== undefined && flags['sample-rate'] !== 8000) {
      context.addIssue({
        code: 'custom',
        path: ['sample-rate'],
        message: 'twilio-media-streams carries 8000 Hz μ-law: leave --sample-rate out or set 8000',
      });
    }
  });

export type LocalFlags = Omit<z.output<typeof Flags>, 'sample-rate'> & {
  /** The PCM16 rate of the voice-edge protocol; 8000 with twilio-media-streams. */
  'sample-rate': SampleRate;
};

export type FlagsResult =
  | { readonly kind: 'help' }
  | { readonly kind: 'run'; readonly flags: LocalFlags }
  /** A message naming the option (usage not included); exit code 2. */
  | { readonly kind: 'error'; readonly message: string };

export function parseLocalFlags(args: readonly string[]): FlagsResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        'http-port': { type: 'string', default: '8080' },
        'relay-port': { type: 'string', default: '3478' },
        'echo-delay-ms': { type: 'string', default: '500' },
        // No default here: whether one applies depends on --backend-protocol.
        'sample-rate': { type: 'string' },
        'log-level': { type: 'string', default: 'warn' },
        'backend-protocol': { type: 'string', default: 'voice-edge' },
        'backend-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    return { kind: 'error', message: (error as Error).message };
  }
  if (values.help) return { kind: 'help' };
  const parsed = Flags.safeParse(values);
  if (!parsed.success) {
    return {
      kind: 'error',
      message: `invalid option ${formatIssues(parsed.error).replace(/(^|; )([a-z-]+):/g, '$1--$2:')}`,
    };
  }
  const flags = parsed.data;
  const twilio = flags['backend-protocol'] === 'twilio-media-streams';
  return {
    kind: 'run',
    flags: { ...flags, 'sample-rate': flags['sample-rate'] ?? (twilio ? 8000 : DEFAULT_SAMPLE_RATE) },
  };
}

function isWebSocketUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return (url.protocol === 'ws:' || url.protocol === 'wss:') && url.hostname !== '';
}
