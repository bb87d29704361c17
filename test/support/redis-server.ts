// A throw-away redis-server (Debian's) on a free loopback port, no persistence.
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freeTcpPort } from './net.ts';

export interface RedisServerOptions {
  /** The address to bind (default 127.0.0.1). */
  readonly host?: string;
  readonly port?: number;
  /** A command prefix, e.g. `ip netns exec <ns>` to run it in a network namespace. */
  readonly launcher?: readonly string[];
}

export class RedisServer {
  readonly port: number;
  readonly host: string;
  readonly #launcher: readonly string[];
  #child: ChildProcess | undefined;

  private constructor(port: number, host: string, launcher: readonly string[]) {
    this.port = port;
    this.host = host;
    this.#launcher = launcher;
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = options.port ?? (await freeTcpPort());
    const server = new RedisServer(port, options.host ?? '127.0.0.1', options.launcher ?? []);
    await server.restart();
    return server;
  }

  /** (Re)starts the server on the same port; resolves when it answers PING. */
  async restart(): Promise<void> {
    const [command, ...prefix] = [...this.#launcher, 'redis-server'];
    const child = spawn(
      command!,
      [
        ...prefix,
        ...['--port', String(this.port), '--bind', this.host, '--save', '', '--appendonly', 'no'],
        // A test server bound to a namespace's address (not loopback) must take clients there too.
        ...(this.host === '127.0.0.1' ? [] : ['--protected-mode', 'no']),
      ],
      { stdio: 'ignore' },
    );
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    this.#child = child;
    for (let attempt = 0; attempt < 100; attempt++) {
      const failed = await Promise.race([spawnError, sleep(50).then(() => undefined)]);
      if (failed)
        throw new Error(
          `cannot run redis-server (${failed.message}); install it: apt-get install redis-server`,
        );
      const client = new Redis(this.url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') return;
      } catch {
        // not up yet
      } finally {
        client.disconnect();
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
