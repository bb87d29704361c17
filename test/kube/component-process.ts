// One long-running process of the test cluster (etcd, kube-apiserver, a pod's container…): output into a
// log file, stop = SIGTERM then SIGKILL after a grace period, and a synchronous kill for process exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ComponentProcessOptions {
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Resolves `ready` when a line of the output matches. */
  readonly readyLine?: RegExp;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class ComponentProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;
  #tail = '';

  private constructor(name: string, child: ChildProcess, log: WriteStream) {
    this.name = name;
    this.child = child;
    this.exited = new Promise<Exit>((resolve) => {
      child.once('error', (error) => {
        log.write(`[test cluster] cannot start ${name}: ${error.message}\n`);
        this.#exit = { code: -1, signal: null };
        resolve(this.#exit);
      });
      child.once('close', (code, signal) => {
        log.write(`[test cluster] ${name} exited (code ${code}, signal ${signal})\n`);
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
    this.exited.then(() => log.end());
  }

  static start(
    name: string,
    command: string,
    args: readonly string[],
    options: ComponentProcessOptions,
  ): { process: ComponentProcess; ready: Promise<void> } {
    const log = createWriteStream(options.logFile, { flags: 'a' });
    log.write(`[test cluster] ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const component = new ComponentProcess(name, child, log);
    let matched = false;
    let onMatch: () => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      onMatch = resolve;
      component.exited.then((exit) =>
        reject(new Error(`${name} exited before it was ready (${describeExit(exit)}):\n${component.tail()}`)),
      );
    });
    // Nobody may wait for readiness (no readyLine): a rejection then is not an unhandled one.
    ready.catch(() => {});
    if (!options.readyLine) {
      matched = true;
      onMatch();
    }
    let pending = '';
    const take = (chunk: Buffer) => {
      log.write(chunk);
      const text = chunk.toString('utf8');
      component.#tail = (component.#tail + text).slice(-4000);
      if (matched || !options.readyLine) return;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (lines.some((line) => options.readyLine?.test(line))) {
        matched = true;
        pending = '';
        onMatch();
      }
      pending = pending.slice(-4000);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    return { process: component, ready };
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last few kB of output, for error messages. */
  tail(): string {
    return this.#tail
      .split('\n')
      .slice(-25)
      .map((line) => `  | ${line}`)
      .join('\n');
  }

  /** SIGTERM, then SIGKILL if it is still running after `graceMs`. */
  async stop(graceMs: number): Promise<Exit> {
    if (this.#exit) return this.#exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /** For process-exit handlers, which cannot wait. */
  killNow(): void {
    if (this.#exit === undefined) this.child.kill('SIGKILL');
  }
}

export function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}
