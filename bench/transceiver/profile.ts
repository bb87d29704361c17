// Where the transceiver's CPU goes, from the V8 profile `--profile` records (node --cpu-prof):
// inclusive time of the few functions that make up a call's media path, as shares of the time the
// process was busy. Self time per function (bench/relay/profile.ts) scatters one cost over many
// leaves (SRTP alone is a dozen crypto functions); these components add up the subtree instead.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** The media path's parts: a function (name, file) whose whole subtree is that part. */
export const COMPONENTS: readonly { readonly name: string; readonly fn: string; readonly file: RegExp }[] = [
  {
    name: 'tunnel datagrams in: router, SRTP, decode on arrival (⊃ Opus decode)',
    fn: 'onDatagram',
    file: /transceiver\/tunnel-router\.ts$/,
  },
  {
    name: 'backend messages in: WebSocket receive (⊃ encode and RTP out on arrival)',
    fn: 'socketOnData',
    file: /ws\/lib\/websocket\.js$/,
  },
  {
    name: "a call's audio timer: concealment, paced frames, DTX",
    fn: '#serviceAudio',
    file: /transceiver\/call\.ts$/,
  },
  { name: 'Opus encode (backend audio → caller)', fn: 'encode', file: /(^|\/)audio\/opus-codec\.ts$/ },
  { name: 'Opus decode (caller → backend)', fn: 'decode', file: /(^|\/)audio\/opus-codec\.ts$/ },
  {
    name: "RTP out: SRTP, socket (werift for a stream's first packet)",
    fn: 'sendRtp',
    file: /transceiver\/peer\.ts$/,
  },
  {
    name: 'PCM to the backend: WebSocket send',
    fn: 'sendAudio',
    file: /transceiver\/backend-connection\.ts$/,
  },
  { name: 'garbage collector', fn: '(garbage collector)', file: /^$/ },
];

export interface ComponentShare {
  readonly name: string;
  /** Share of the busy time (0–1). */
  readonly share: number;
}

export interface ProfileBreakdown {
  readonly busyMs: number;
  readonly components: ComponentShare[];
}

export function breakdown(profile: CpuProfile): ProfileBreakdown {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, deltas[i + 1] ?? 0));
  }
  const matches = (node: ProfileNode, component: (typeof COMPONENTS)[number]) =>
    node.callFrame.functionName === component.fn && component.file.test(node.callFrame.url);
  const totals = COMPONENTS.map(() => 0);
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    busy += us;
    // Count each component once per sample, however deep the recursion.
    const hit = COMPONENTS.map(() => false);
    for (let current: number | undefined = id; current !== undefined; current = parent.get(current)) {
      const frame = byId.get(current)!;
      COMPONENTS.forEach((component, index) => {
        if (!hit[index] && matches(frame, component)) hit[index] = true;
      });
    }
    hit.forEach((isHit, index) => {
      if (isHit) totals[index]! += us;
    });
  }
  return {
    busyMs: busy / 1000,
    components: COMPONENTS.map((component, index) => ({
      name: component.name,
      share: busy > 0 ? totals[index]! / busy : 0,
    })),
  };
}

/** The breakdown of each .cpuprofile in `dir` (one per thread; the transceiver has one). */
export function breakdownDir(dir: string): ProfileBreakdown[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((file) => file.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.map((file) => breakdown(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile));
}
