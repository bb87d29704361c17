// The command line every benchmark takes: node's parseArgs plus --help, the usage printed on a
// mistake (exit 2), --quick (or VOICE_EDGE_BENCH_QUICK=1 in the environment), and number and choice
// options checked before anything starts.
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

/** Prints `message` and ends the run as a usage error (exit 2). */
export function usageError(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/**
 * The parsed options (`help` added); an unknown or malformed option ends the run with the usage
 * (exit 2), --help prints the usage and ends it (exit 0).
 */
export function parseBenchArgs<const O extends ParseArgsOptionsConfig>(usage: string, options: O) {
  const config = { options: { ...options, help: { type: 'boolean', short: 'h', default: false } } } as const;
  let values: ReturnType<typeof parseArgs<typeof config>>['values'];
  try {
    values = parseArgs(config).values;
  } catch (error) {
    usageError(`${(error as Error).message}\n${usage}`);
  }
  // The type of `values` stays generic in here: `help` is the boolean added above.
  if ((values as { help: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return values;
}

/** A short run: `--quick`, or VOICE_EDGE_BENCH_QUICK=1. */
export function isQuick(quickOption: boolean | undefined): boolean {
  return quickOption === true || process.env.VOICE_EDGE_BENCH_QUICK === '1';
}

/** Reads non-negative number options of `values`: absent, the fallback; malformed, a usage error. */
export function numberReader<V extends Record<string, unknown>>(values: V) {
  return (name: keyof V & string, fallback: number): number => {
    const text = values[name];
    if (text === undefined || typeof text === 'boolean') return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) usageError(`--${name}: not a non-negative number: ${text}`);
    return value;
  };
}

/** A string option that must be one of `allowed`. */
export function choiceOption<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    usageError(`--${name}: one of ${allowed.join(', ')}, not ${value}`);
  return value as T;
}
