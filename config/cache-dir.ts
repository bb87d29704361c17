// Where the project's own tooling keeps what it builds or downloads once, outside the work tree:
// the test cluster's binaries (test/kube/build.ts), the Pipecat example's venv
// (agents/pipecat-echo/venv.ts). $VOICE_EDGE_CACHE_DIR, else ~/.cache/voice-edge.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(): string {
  return process.env.VOICE_EDGE_CACHE_DIR || join(homedir(), '.cache', 'voice-edge');
}
