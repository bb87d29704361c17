// The one-command local edge as a newcomer runs it: `npm start` in the repository, `npm run call`
// against it, Ctrl-C. Also what a newcomer gets wrong: a port in use, a bad option, no edge running.
//
// Commands run through `npm` exactly as typed at a terminal, each in its own process group, and
// Ctrl-C is SIGINT to that whole group (what the terminal does). npm runs scripts with `sh -c`; on
// Debian that is dash, which waits for node and then ends itself with the SIGINT it received, so
// npm may exit by SIGINT rather than 0 whatever node's own status: the edge prints `stopped.` just
// before its exit 0, and the test checks that line and that every process of the tree is gone.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freeTcpPort, freeUdpPort } from '../support/net.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A command started like at a terminal: in the repository, in a process group of its own. */
class Command {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly finished: Promise<Finished>;

  constructor(args: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn('npm', args, { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // Settles once the process has exited and every process holding its output has gone too.
    this.finished = new Promise((resolve) => {
      this.child.once('close', (code, signal) =>
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }),
      );
    });
  }

  /** Signals the whole process group (ESRCH once it is gone is fine). */
  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // already gone
    }
  }

  /** Waits for it to end; kills the group and fails after `timeoutMs`. */
  async end(timeoutMs: number, what: string): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        reject(new Error(`${what} did not end within ${timeoutMs} ms\n${this.stdout}\n${this.stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.finished, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until stdout matches `pattern`; fails if the process ends first or after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.stdout.match(pattern);
      if (match !== null) return match;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`ended before printing ${pattern}\n${this.stdout}\n${this.stderr}`);
      if (Date.now() > deadline)
        throw new Error(`no ${pattern} within ${timeoutMs} ms\n${this.stdout}\n${this.stderr}`);
      await sleep(50);
    }
  }
}

const running = new Set<Command>();
after(() => {
  for (const command of running) command.signal('SIGKILL');
});

function start(args: string[], env?: NodeJS.ProcessEnv): Command {
  const command = new Command(args, env);
  running.add(command);
  void command.finished.then(() => running.delete(command));
  return command;
}

/** Lines of stderr that are not npm's own notices. */
function ownLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^npm (warn|notice|error|ERR!)/i.test(line));
}

/** The last line of stdout, parsed. */
function lastJson(stdout: string): Record<string, unknown> {
  const last = stdout.trimEnd().split('\n').at(-1) ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}

/** Every process descended from `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function bindUdp(port: number): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}

async function listenTcp(port: number): Promise<ReturnType<typeof createServer>> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

describe('the one-command local edge (npm start) and the command-line call (npm run call)', () => {
  test('npm start, npm run call against it (connected, echo heard), Ctrl-C leaves nothing behind', async (t) => {
    const httpPort = await freeTcpPort();
    const relayPort = await freeUdpPort();
    // A private temporary folder: whatever the edge writes there must be gone after Ctrl-C.
    const tmp = mkdtempSync(join(tmpdir(), 'voice-edge-test-'));
    try {
      const began = Date.now();
      const edge = start(
        ['start', '--', '--http-port', String(httpPort), '--relay-port', String(relayPort)],
        {
          ...process.env,
          TMPDIR: tmp,
        },
      );
      await edge.waitFor(/^\s*open\s+(http:\/\/\S+)/m, 30_000);
      const [, whipUrl] = await edge.waitFor(/^\s*WHIP\s+(http:\/\/\S+)/m, 1_000);
      t.diagnostic(`npm start ready in ${Date.now() - began} ms`);
      assert.equal(whipUrl, `http://127.0.0.1:${httpPort}/whip`);
      assert.equal(readdirSync(tmp).filter((name) => name.startsWith('voice-edge-local-')).length, 1);
      const tree = descendants(edge.child.pid!);
      assert.ok(tree.length > 0, 'npm start runs the edge in a child process');

      const call = start(['run', 'call', '--', '--url', whipUrl!, '--duration', '3', '--json']);
      const called = await call.end(30_000, 'npm run call');
      assert.equal(called.code, 0, `npm run call failed:\n${called.stdout}\n${called.stderr}`);
      const figures = lastJson(called.stdout);
      t.diagnostic(`call figures: ${JSON.stringify(figures)}`);
      assert.equal(figures.connected, true);
      assert.equal(figures.echoDetected, true);
      assert.ok(Number.isFinite(figures.setupMs) && (figures.setupMs as number) > 0, 'a finite setup time');
      assert.equal(figures.error, null);
      assert.ok((figures.packetsReceived as number) > 50, 'about 3 s of audio came back');

      const stopAt = Date.now();
      edge.signal('SIGINT'); // Ctrl-C
      const stopped = await edge.end(5_000, 'the edge after Ctrl-C');
      t.diagnostic(
        `stopped ${Date.now() - stopAt} ms after Ctrl-C (npm: code ${stopped.code}, ${stopped.signal})`,
      );
      assert.ok(
        stopped.code === 0 || (stopped.code === null && stopped.signal === 'SIGINT'),
        `npm start ended with code ${stopped.code} / ${stopped.signal}\n${stopped.stderr}`,
      );
      assert.match(stopped.stdout, /^stopped\.$/m, 'the edge shut down cleanly (its exit 0 path)');
      assert.deepEqual(ownLines(stopped.stderr), [], 'nothing on stderr');
      assert.deepEqual(
        tree.filter((pid) => alive(pid)),
        [],
        'every process npm start ran is gone',
      );
      // Both ports are free again, and the edge removed its temporary files.
      await bindUdp(relayPort);
      await new Promise<void>((resolve) =>
        listenTcp(httpPort).then((server) => server.close(() => resolve())),
      );
      assert.deepEqual(
        readdirSync(tmp).filter((name) => name.startsWith('voice-edge-')),
        [],
        'no temporary files left behind',
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('npm start -- --host ::1: bracketed URLs, and npm run call hears its echo over IPv6', async (t) => {
    const relayPort = await freeUdpPort('::1').catch(() => undefined);
    if (relayPort === undefined) return t.skip('no IPv6 loopback on this machine');
    const httpPort = await freeTcpPort();
    const edge = start([
      'start',
      '--',
      '--host',
      '::1',
      '--http-port',
      String(httpPort),
      '--relay-port',
      String(relayPort),
    ]);
    const [, whipUrl] = await edge.waitFor(/^\s*WHIP\s+(http:\/\/\S+)/m, 30_000);
    assert.equal(whipUrl, `http://[::1]:${httpPort}/whip`);
    assert.match(edge.stdout, /^\s*open\s+http:\/\/\[::1\]:\d+\/$/m);
    assert.match(edge.stdout, new RegExp(`^\\s*media\\s+\\[::1\\]:${relayPort}\\b`, 'm'));

    const called = await start(['run', 'call', '--', '--url', whipUrl!, '--duration', '3', '--json']).end(
      30_000,
      'npm run call over ::1',
    );
    assert.equal(called.code, 0, `npm run call failed:\n${called.stdout}\n${called.stderr}`);
    const figures = lastJson(called.stdout);
    t.diagnostic(`call figures over ::1: ${JSON.stringify(figures)}`);
    // The edge listens on ::1 alone (test/e2e/ipv6.test.ts checks its sockets): connected is IPv6.
    assert.equal(figures.connected, true);
    assert.equal(figures.echoDetected, true);
    assert.ok((figures.packetsReceived as number) > 50, 'about 3 s of audio came back');

    edge.signal('SIGINT');
    const stopped = await edge.end(5_000, 'the edge on ::1 after Ctrl-C');
    assert.match(stopped.stdout, /^stopped\.$/m);
    assert.deepEqual(ownLines(stopped.stderr), [], 'nothing on stderr');
  });

  test("Ctrl-C when npm's shell execs node (bash, as macOS's sh does): still one clean stop", async () => {
    // npm forwards the terminal's SIGINT to its child, which is then node itself: node gets it twice.
    const edge = start([
      'start',
      '--script-shell=/bin/bash',
      '--',
      '--http-port',
      String(await freeTcpPort()),
      '--relay-port',
      String(await freeUdpPort()),
    ]);
    await edge.waitFor(/^\s*open\s+http:/m, 30_000);
    edge.signal('SIGINT');
    const stopped = await edge.end(5_000, 'the edge after Ctrl-C');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /^stopped\.$/m);
    assert.deepEqual(ownLines(stopped.stderr), []);
  });

  test('a relay port in use: exit 1 and one line naming the port', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const { port } = socket.address();
    try {
      const edge = start([
        'start',
        '--',
        '--http-port',
        String(await freeTcpPort()),
        '--relay-port',
        String(port),
      ]);
      const result = await edge.end(30_000, 'npm start on a busy relay port');
      assert.equal(result.code, 1, result.stderr);
      const lines = ownLines(result.stderr);
      assert.equal(lines.length, 1, `one line on stderr, got:\n${lines.join('\n')}`);
      assert.match(lines[0]!, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${port}.*--relay-port`));
    } finally {
      socket.close();
    }
  });

  test('an HTTP port in use: exit 1 and one line naming the port', async () => {
    const server = await listenTcp(0);
    const { port } = server.address() as { port: number };
    try {
      const edge = start([
        'start',
        '--',
        '--http-port',
        String(port),
        '--relay-port',
        String(await freeUdpPort()),
      ]);
      const result = await edge.end(30_000, 'npm start on a busy HTTP port');
      assert.equal(result.code, 1, result.stderr);
      const lines = ownLines(result.stderr);
      assert.equal(lines.length, 1, `one line on stderr, got:\n${lines.join('\n')}`);
      assert.match(lines[0]!, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${port}.*--http-port`));
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('an invalid option: exit 2 and a message naming the option', async () => {
    for (const [option, value] of [
      ['--http-port', 'abc'],
      ['--sample-rate', '44100'],
    ] as const) {
      const result = await start(['start', '--', option, value]).end(30_000, `npm start ${option} ${value}`);
      assert.equal(result.code, 2, result.stderr);
      const [first] = ownLines(result.stderr);
      assert.match(first!, new RegExp(`^voice-edge: invalid option ${option}: `));
    }
    const call = await start(['run', 'call', '--', '--duration', 'soon']).end(
      30_000,
      'npm run call --duration soon',
    );
    assert.equal(call.code, 2, call.stderr);
    assert.match(ownLines(call.stderr)[0]!, /--duration/);
  });

  test('npm run call where no edge listens: exit 1, a clear error, the JSON line last', async () => {
    const url = `http://127.0.0.1:${await freeTcpPort()}/whip`;
    const result = await start(['run', 'call', '--', '--url', url, '--duration', '3']).end(
      30_000,
      'npm run call against nothing',
    );
    assert.equal(result.code, 1, result.stderr);
    const lines = ownLines(result.stderr);
    assert.equal(lines.length, 1, `one line on stderr, got:\n${lines.join('\n')}`);
    assert.match(lines[0]!, new RegExp(`cannot reach the WHIP endpoint ${url}: .*ECONNREFUSED`));
    const figures = lastJson(result.stdout);
    assert.equal(figures.connected, false);
    assert.equal(figures.echoDetected, false);
    assert.match(String(figures.error), /ECONNREFUSED/);
  });
});
