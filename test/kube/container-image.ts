// Which program a container's image stands for on the test node. There is no container runtime: the
// voice-edge image is this checkout (WORKDIR /app = the repository root, ENTRYPOINT
// ["node", "cli/voice-edge.ts"]), run with this Node; the test-only image `voice-edge/test-udp-echo`
// is test/kube/udp-echo.ts. Any other image cannot run here and reports ErrImagePull.
import { join } from 'node:path';

export type ContainerProgram =
  | { readonly ok: true; readonly file: string; readonly args: readonly string[] }
  | { readonly ok: false; readonly reason: 'ErrImagePull'; readonly message: string };

export const VOICE_EDGE_IMAGE_REPOSITORY = 'voice-edge/voice-edge';
export const UDP_ECHO_IMAGE_REPOSITORY = 'voice-edge/test-udp-echo';

/** The image's repository without registry-independent suffixes: tag and digest removed. */
export function imageRepository(image: string): string {
  const withoutDigest = image.split('@')[0] ?? '';
  const lastSlash = withoutDigest.lastIndexOf('/');
  const lastColon = withoutDigest.lastIndexOf(':');
  return lastColon > lastSlash ? withoutDigest.slice(0, lastColon) : withoutDigest;
}

function isRepository(image: string, repository: string): boolean {
  const repo = imageRepository(image);
  return repo === repository || repo.endsWith(`/${repository}`);
}

/**
 * The program for a container: `command` (expanded) replaces the image's entrypoint and `args` its
 * arguments, as in Kubernetes. In a command, `node` is this Node and `/app/…` the repository root.
 */
export function containerProgram(
  image: string,
  command: readonly string[] | undefined,
  args: readonly string[],
  repoRoot: string,
  nodePath: string,
): ContainerProgram {
  let entrypoint: string[];
  if (isRepository(image, VOICE_EDGE_IMAGE_REPOSITORY)) {
    entrypoint = [nodePath, join(repoRoot, 'cli', 'voice-edge.ts')];
  } else if (isRepository(image, UDP_ECHO_IMAGE_REPOSITORY)) {
    entrypoint = [nodePath, join(repoRoot, 'test', 'kube', 'udp-echo.ts')];
  } else {
    return {
      ok: false,
      reason: 'ErrImagePull',
      message: `test kubelet runs only voice-edge images (${VOICE_EDGE_IMAGE_REPOSITORY}, ${UDP_ECHO_IMAGE_REPOSITORY}), not ${image}`,
    };
  }
  if (command && command.length > 0) {
    entrypoint = command.map((part, index) => {
      if (index === 0 && part === 'node') return nodePath;
      return part.startsWith('/app/') ? join(repoRoot, part.slice('/app/'.length)) : part;
    });
  }
  const [file, ...rest] = entrypoint;
  return { ok: true, file: file ?? nodePath, args: [...rest, ...args] };
}
