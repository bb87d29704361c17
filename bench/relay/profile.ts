// Summarises V8 .cpuprofile files (written by `node --cpu-prof`, one per thread): self time per
// function, so `npm run bench:relay -- --profile-relay` can say what bounds the relay's rate.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface ProfileEntry {
  readonly function: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Time not spent idle (V8's "(idle)" node excluded). */
  readonly busyMs: number;
  readonly top: readonly ProfileEntry[];
}

/** Self time per function (summed over call sites), largest first, as shares of busy time. */
export function summarizeCpuProfile(
  profile: CpuProfile,
  root: string,
  limit = 20,
): Omit<ProfileSummary, 'file'> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap after a sample to that sample.
    const delta = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, delta));
  }
  const byFunction = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const name = frame.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    busy += us;
    const where = frame.url
      ? `${relative(root, frame.url.replace(/^file:\/\//, ''))}:${frame.lineNumber + 1}`
      : '';
    const key = where ? `${name} ${where}` : name;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  const top = [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([fn, us]) => ({ function: fn, selfMs: us / 1000, share: busy > 0 ? us / busy : 0 }));
  return { totalMs: (profile.endTime - profile.startTime) / 1000, busyMs: busy / 1000, top };
}

export function summarizeProfileDir(dir: string, root: string, limit = 20): ProfileSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((file) => file.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.map((file) => ({
    file: join(dir, file),
    ...summarizeCpuProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, root, limit),
  }));
}
