// Readiness probes, run from the node against the pod's IP as the kubelet does: httpGet (2xx/3xx is
// success), tcpSocket (a connection is success) and exec (exit 0, run inside the pod's netns), with the
// probe's initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and failureThreshold.
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';

export interface ProbeTarget {
  readonly podIP: string;
  readonly netns: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

/** Runs `probe` until stopped; calls onReady(true|false) when the verdict changes (it starts false). */
export class ReadinessProber {
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #ready = false;
  #successes = 0;
  #failures = 0;

  constructor(
    probe: V1Probe,
    container: V1Container,
    target: ProbeTarget,
    onReady: (ready: boolean) => void,
    log: (message: string) => void,
  ) {
    const period = Math.max(1, probe.periodSeconds ?? 10) * 1000;
    const timeout = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
    const successThreshold = Math.max(1, probe.successThreshold ?? 1);
    const failureThreshold = Math.max(1, probe.failureThreshold ?? 3);
    const tick = async () => {
      if (this.#stopped) return;
      const started = Date.now();
      let ok: boolean;
      try {
        ok = await runProbe(probe, container, target, timeout);
      } catch (error) {
        log(`readiness probe of ${container.name}: ${(error as Error).message}`);
        ok = false;
      }
      if (this.#stopped) return;
      if (ok) {
        this.#failures = 0;
        this.#successes++;
        if (!this.#ready && this.#successes >= successThreshold) {
          this.#ready = true;
          onReady(true);
        }
      } else {
        this.#successes = 0;
        this.#failures++;
        if (this.#ready && this.#failures >= failureThreshold) {
          this.#ready = false;
          onReady(false);
        }
      }
      this.#timer = setTimeout(tick, Math.max(0, period - (Date.now() - started)));
    };
    this.#timer = setTimeout(tick, (probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

export async function runProbe(
  probe: V1Probe,
  container: V1Container,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<boolean> {
  if (probe.httpGet) {
    const get = probe.httpGet;
    const port = resolvePort(get.port, container);
    const https = get.scheme === 'HTTPS';
    const headers = Object.fromEntries((get.httpHeaders ?? []).map((h) => [h.name, h.value]));
    return new Promise<boolean>((resolve) => {
      const request = https ? httpsRequest : httpRequest;
      const req = request(
        {
          host: get.host || target.podIP,
          port,
          path: get.path ?? '/',
          method: 'GET',
          headers: { 'user-agent': 'kube-probe/1.37', ...headers },
          timeout: timeoutMs,
          agent: false,
          ...(https ? { rejectUnauthorized: false } : {}),
        },
        (res) => {
          res.resume();
          const status = res.statusCode ?? 0;
          resolve(status >= 200 && status < 400);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }
  if (probe.tcpSocket) {
    const port = resolvePort(probe.tcpSocket.port, container);
    return new Promise<boolean>((resolve) => {
      const socket = connect({ host: probe.tcpSocket?.host || target.podIP, port, timeout: timeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(false));
    });
  }
  if (probe.exec?.command?.length) {
    const [file, ...args] = probe.exec.command;
    return new Promise<boolean>((resolve) => {
      execFile(
        'ip',
        ['netns', 'exec', target.netns, file!, ...args],
        { cwd: target.cwd, env: { PATH: process.env.PATH ?? '', ...target.env }, timeout: timeoutMs },
        (error) => resolve(!error),
      );
    });
  }
  throw new Error('unsupported probe handler (the test kubelet runs httpGet, tcpSocket and exec probes)');
}

function resolvePort(port: number | string | object, container: V1Container): number {
  if (typeof port === 'number') return port;
  const text = String(port);
  if (/^\d+$/.test(text)) return Number(text);
  const named = container.ports?.find((p) => p.name === text);
  if (!named) throw new Error(`probe port "${text}" is not a named port of container ${container.name}`);
  return named.containerPort;
}
