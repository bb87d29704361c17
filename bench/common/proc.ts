// Readers of Linux /proc counters the benchmarks sample around every load step: hypervisor steal,
// a process's CPU time (and its threads'), every process's CPU time (to see who else ran), resident
// memory, and per-socket UDP receive drops (to tell which side dropped a packet).
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ: what /proc reports in, on every Linux architecture in use

// Per-core busy time in /proc/stat is sampled by the timer tick, and a tickless kernel does not
// tick while idle: a core that alternates short bursts of work with idle time (exactly what a
// packet forwarder does below saturation) looks almost idle there. Per-process CPU time is exact
// (the scheduler's runtime, scaled into utime/stime), so shares are computed from processes.

/** Hypervisor steal jiffies summed over all cores, from /proc/stat's "cpu" line (8th value). */
export function readStealSeconds(text = readFileSync('/proc/stat', 'utf8')): number {
  const match = /^cpu\s+(.*)$/m.exec(text);
  if (!match) return 0;
  return (Number(match[1]!.trim().split(/\s+/)[7]) || 0) / TICKS_PER_SECOND;
}

/**
 * PIDs of the kernel's softirq threads by core: network work they do on our behalf (when softirqs
 * overflow out of process context) is neither interference nor free.
 */
export function ksoftirqdPids(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const match = /^ksoftirqd\/(\d+)/.exec(readFileSync(`/proc/${entry}/comm`, 'utf8'));
      if (match) out.set(Number(match[1]), Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * User + system CPU seconds of a process (all its threads; with `children`, plus those of its
 * reaped children), or undefined once it is gone.
 */
export function readProcessCpuSeconds(pid: number, children = false): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcessCpuSeconds(text, children);
}

function parseProcessCpuSeconds(text: string, children: boolean): number {
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name, 0-based: utime 11, stime 12, cutime 13, cstime 14 (fields 14–17 of proc(5)).
  const own = Number(fields[11]) + Number(fields[12]);
  const reaped = children ? Number(fields[13]) + Number(fields[14]) : 0;
  return (own + reaped) / TICKS_PER_SECOND;
}

/**
 * CPU seconds of every process on the machine, by PID: own, plus (with `children`) those of its
 * reaped children. Without them, a long-lived child that ends does not land its whole lifetime's CPU
 * in its parent's counters at once (which would look like a burst of the parent).
 */
export function readAllProcessesCpu(children: boolean): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      out.set(Number(entry), parseProcessCpuSeconds(readFileSync(`/proc/${entry}/stat`, 'utf8'), children));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * CPU seconds that processes outside `ours` used between two samples (a process that appeared in
 * between counts from zero; one that ended and was reaped shows up in its parent's children time).
 */
export function foreignCpuSeconds(
  before: Map<number, number>,
  after: Map<number, number>,
  ours: ReadonlySet<number>,
): number {
  let sum = 0;
  for (const [pid, seconds] of after) {
    if (ours.has(pid)) continue;
    sum += Math.max(0, seconds - (before.get(pid) ?? 0));
  }
  return sum;
}

export interface ThreadSample {
  /** Time the main thread waited on a run queue (s), from /proc/<pid>/task/<pid>/schedstat. */
  readonly mainWaitS: number;
  /** CPU time (s) of every other thread of the process. */
  readonly helpersCpuS: number;
}

/**
 * What the scheduler says about a process's threads: how long its main thread was runnable but
 * waiting for its core (other threads ran there: V8's helpers of its own, or another process), and
 * the CPU time of its other threads. On a core of its own the main thread only waits behind its own
 * helpers, so a long wait with idle helpers means another process.
 */
export function sampleThreads(pid: number): ThreadSample {
  let mainWaitS = 0;
  let helpersCpuS = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ');
    mainWaitS = Number(fields[1]) / 1e9;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      if (tid === String(pid)) continue;
      try {
        helpersCpuS += parseProcessCpuSeconds(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'), false);
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // the process is gone, or no schedstat (kernel without CONFIG_SCHEDSTATS)
  }
  return { mainWaitS, helpersCpuS };
}

/** A process's resident set (bytes), from VmRSS in /proc/<pid>/status; NaN when unreadable. */
export function readRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/**
 * Receive drops per local UDP port (IPv4 and IPv6 sockets; SO_REUSEPORT siblings summed), from the
 * last column of /proc/net/udp{,6}: datagrams the kernel discarded because the socket's receive
 * buffer was full.
 */
export function readUdpDrops(): Map<number, number> {
  const out = new Map<number, number>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    parseUdpTable(text, out);
  }
  return out;
}

export function parseUdpTable(text: string, into = new Map<number, number>()): Map<number, number> {
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 13) continue;
    const local = fields[1]!;
    const port = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    const drops = Number(fields[fields.length - 1]);
    if (!Number.isFinite(port) || !Number.isFinite(drops)) continue;
    into.set(port, (into.get(port) ?? 0) + drops);
  }
  return into;
}

/** Drops between two samples, summed over the ports `pick` selects. */
export function dropsBetween(
  before: Map<number, number>,
  after: Map<number, number>,
  pick: (port: number) => boolean,
): number {
  let sum = 0;
  for (const [port, drops] of after) if (pick(port)) sum += drops - (before.get(port) ?? 0);
  return sum;
}
