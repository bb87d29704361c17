// `voice-edge <component> [options]`: picks the component and runs its main module, which reads
// the remaining options itself (process.argv without the component name, so the main sees what
// `npm run <component> -- [options]` would give it). Mains are imported only when chosen: a
// component whose module is missing from a build fails alone, and nothing else pays for loading it.
import { fileURLToPath } from 'node:url';
import type { Component } from './components.ts';

export function usage(components: Readonly<Record<string, Component>>): string {
  const width = Math.max(...Object.keys(components).map((name) => name.length));
  const lines = Object.entries(components).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: voice-edge <component> [--config <file.yaml>] [options]',
    '',
    'components:',
    ...lines,
    '',
    'Without --config a component is configured by its VOICE_EDGE_<COMPONENT>_* environment variables.',
    '`voice-edge <component> --help` shows its options.',
  ].join('\n');
}

/**
 * Runs the component named by argv[2]; returns when its main module has finished loading (a
 * service's main runs until the process exits). Unknown or missing component: usage on stderr,
 * exit 2; `--help`: usage on stdout, exit 0; a main module that is missing: one line, exit 1.
 */
export async function dispatch(
  components: Readonly<Record<string, Component>>,
  base: string | URL,
  argv: string[] = process.argv,
): Promise<void> {
  const name = argv[2];
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage(components)}\n`);
    process.exit(0);
  }
  if (name === undefined || !Object.hasOwn(components, name)) {
    const problem = name === undefined ? 'no component given' : `unknown component "${name}"`;
    process.stderr.write(`voice-edge: ${problem}\n${usage(components)}\n`);
    process.exit(2);
  }
  const main = new URL(components[name]!.main, base);
  argv.splice(2, 1);
  try {
    await import(main.href);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Only the main module itself being absent is "not in this build"; anything else is a bug.
    const path = fileURLToPath(main);
    if (code === 'ERR_MODULE_NOT_FOUND' && (error as Error).message.includes(path)) {
      process.stderr.write(`voice-edge: component "${name}" is not in this build (${path} is missing)\n`);
      process.exit(1);
    }
    throw error;
  }
}
