// The WAN emulator's I/O: a process inside the router namespace that owns a TUN device (fd 3,
// opened by tun-open) through which the namespace routes every packet between sites. It reads each
// IP packet, asks LinkScheduler when it may leave (or whether it is lost) and writes it back to the
// device at that time; the kernel then routes it on to its destination. Stands in for `tc netem`,
// which this kernel lacks (docs/global-tier.md).
//
//   tun-open <ifname> node wan-router.ts '<WanSpec as JSON>'
//
// Prints `ready` once reading; on SIGTERM prints its counts as one JSON line and exits.
import { read, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { LinkScheduler, type WanSpec } from './link-scheduler.ts';

const TUN_FD = 3;
const spec = JSON.parse(process.argv[2] ?? '') as WanSpec;
const scheduler = new LinkScheduler(spec);
const buffer = Buffer.alloc(65_536);
let writeErrors = 0;
let stopping = false;

function emit(packet: Buffer): void {
  try {
    writeSync(TUN_FD, packet);
  } catch {
    // The kernel refused it (a malformed packet, or the device going away): it is lost, as on a wire.
    writeErrors++;
  }
}

function next(): void {
  read(TUN_FD, buffer, 0, buffer.length, null, (error, length) => {
    if (stopping) return;
    if (error) {
      process.stderr.write(`wan-router: reading the TUN device failed: ${error.message}\n`);
      process.exit(1);
    }
    const packet = Buffer.from(buffer.subarray(0, length));
    const now = performance.now();
    const verdict = scheduler.schedule(packet, now);
    if (verdict !== 'drop') {
      const wait = verdict - now;
      if (wait < 0.5) emit(packet);
      else setTimeout(emit, wait, packet);
    }
    next();
  });
}

process.on('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify({ ...scheduler.counts, writeErrors })}\n`, () => process.exit(0));
});
next();
process.stdout.write('ready\n');
