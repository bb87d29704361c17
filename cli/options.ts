// Command-line options of `npm run call`. Pure: argv in, options or one message naming the option out.
import { parseArgs } from 'node:util';

export const usage = `usage: npm run call -- [--url http://127.0.0.1:8080/whip] [--duration 10] [--tone-hz 440]
                         [--token <bearer>] [--timeout 10] [--region <name>] [--json]

Places a WHIP call, sends a test tone, listens for its echo and prints the call's figures;
the last line printed is one JSON object. Exit status: 0 connected and echo heard, 1 otherwise,
2 for a bad option.`;

export interface CallOptions {
  /** The WHIP endpoint. */
  readonly url: URL;
  /** How long the tone is sent once connected (s). */
  readonly durationS: number;
  readonly toneHz: number;
  /** Bearer token for the WHIP requests, if the edge requires one. */
  readonly token: string | undefined;
  /** POST → connected must take less than this (s). */
  readonly timeoutS: number;
  /** Machine output only: the final JSON line. */
  readonly json: boolean;
  /** Sent as X-Voice-Edge-Region: the caller's region for region-aware signaling (docs/global-tier.md). */
  readonly region?: string;
}

export type ParsedOptions =
  | { readonly kind: 'call'; readonly options: CallOptions }
  | { readonly kind: 'help' }
  | { readonly kind: 'error'; readonly message: string };

function number(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max)
    throw new RangeError(`--${name} must be a number from ${min} to ${max}, got "${text}"`);
  return value;
}

export function parseCallOptions(argv: readonly string[]): ParsedOptions {
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8080/whip' },
        duration: { type: 'string', default: '10' },
        'tone-hz': { type: 'string', default: '440' },
        token: { type: 'string' },
        timeout: { type: 'string', default: '10' },
        region: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) return { kind: 'help' };
    let url: URL;
    try {
      url = new URL(values.url);
    } catch {
      throw new RangeError(`--url must be an http(s) URL, got "${values.url}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new RangeError(`--url must be an http(s) URL, got "${values.url}"`);
    if (values.token !== undefined && (values.token === '' || /[\s\p{Cc}]/u.test(values.token)))
      throw new RangeError('--token must be a non-empty bearer token without spaces');
    if (values.region !== undefined && !/^[A-Za-z0-9-]{1,63}$/.test(values.region))
      throw new RangeError('--region must be a region name: letters, digits and "-"');
    return {
      kind: 'call',
      options: {
        url,
        durationS: number('duration', values.duration, 1, 3600),
        // The echo comes back through the backend's rate (8 kHz at the lowest): keep under 4 kHz.
        toneHz: number('tone-hz', values['tone-hz'], 100, 3000),
        token: values.token,
        timeoutS: number('timeout', values.timeout, 1, 300),
        json: values.json,
        ...(values.region === undefined ? {} : { region: values.region }),
      },
    };
  } catch (error) {
    // parseArgs: "Unknown option '--x'", "Option '--url <value>' argument missing", …
    return { kind: 'error', message: (error as Error).message };
  }
}
