// Blocks UDP to one address and port with iptables, as a network that lets only TCP out does, for the
// ICE-TCP tests. The rule is in the raw table, before any DNAT: it also blocks a Service address that
// the test kubelet's kube-proxy would rewrite. Each rule carries a comment naming this process, so a
// crashed run's rules are swept by the next one; a normal run removes its own on unblock() or at exit.
import { execFileSync } from 'node:child_process';
import { addExitCleanup } from '../kube/exit-cleanup.ts';

const TAG = 'voice-edge-test-udp-block';

function rule(address: string, port: number): string[] {
  const comment = `${TAG}-${process.pid}`;
  return [
    'OUTPUT',
    '-d',
    address,
    '-p',
    'udp',
    '--dport',
    String(port),
    '-m',
    'comment',
    '--comment',
    comment,
    '-j',
    'DROP',
  ];
}

/** Removes rules left by test processes that are gone. */
function sweep(): void {
  const rules = execFileSync('iptables', ['-w', '-t', 'raw', '-S', 'OUTPUT'], { encoding: 'utf8' }).split(
    '\n',
  );
  for (const line of rules) {
    const match = new RegExp(`--comment "?${TAG}-(\\d+)"?`).exec(line);
    if (!match) continue;
    const pid = Number(match[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive && pid !== process.pid) continue;
    const spec = line
      .replace(/^-A /, '')
      .split(' ')
      .map((part) => part.replace(/^"|"$/g, ''));
    execFileSync('iptables', ['-w', '-t', 'raw', '-D', ...spec]);
  }
}

/** Drops UDP sent to `address`:`port` until the returned function is called (or the process exits). */
export function blockUdp(port: number, address = '127.0.0.1'): () => void {
  sweep();
  execFileSync('iptables', ['-w', '-t', 'raw', '-I', ...rule(address, port)]);
  let removed = false;
  const unblock = () => {
    if (removed) return;
    removed = true;
    execFileSync('iptables', ['-w', '-t', 'raw', '-D', ...rule(address, port)]);
  };
  const forget = addExitCleanup(unblock);
  return () => {
    forget();
    unblock();
  };
}
