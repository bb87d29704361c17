// How a person started this process, so usage lines show a command they can type again: through
// the image's one entry point (`node cli/voice-edge.ts relay …`, what a pod runs) or through npm
// (`npm run relay -- …`, what a developer runs).
import { basename, dirname } from 'node:path';

/** True when process.argv[1] is cli/voice-edge.ts (it leaves the component's main to run). */
export function startedByVoiceEdgeCli(argv: readonly string[] = process.argv): boolean {
  const script = argv[1];
  return script !== undefined && basename(script) === 'voice-edge.ts' && basename(dirname(script)) === 'cli';
}

/** `voice-edge relay` or `npm run relay --`: the command that precedes the options in a usage line. */
export function commandFor(
  component: string,
  npmScript: string,
  argv: readonly string[] = process.argv,
): string {
  return startedByVoiceEdgeCli(argv) ? `voice-edge ${component}` : `npm run ${npmScript} --`;
}
