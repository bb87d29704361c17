// One pod on the test node: its network namespace, its containers as local processes (restarted per the
// restart policy with back-off), their readiness probes, and termination (SIGTERM, the grace period,
// SIGKILL, then the namespace goes). It reports changes through onChange; the kubelet turns
// status() into the pod's status document.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { containerProgram } from './container-image.ts';
import { ContainerConfigError, type EnvSources, resolveContainerLaunch } from './pod-env.ts';
import type { PodNetwork, PodSandbox } from './pod-network.ts';
import {
  type ContainerRecord,
  type ContainerState,
  podStatus,
  type RestartPolicy,
  restartDelayMs,
  shouldRestart,
} from './pod-status.ts';
import { ReadinessProber } from './probe.ts';

export interface PodWorkerContext {
  readonly network: PodNetwork;
  readonly sources: EnvSources;
  /** Writes the pod's kubeconfig (a TokenRequest token for its ServiceAccount); returns its path. */
  readonly podKubeconfig: (pod: V1Pod) => Promise<string>;
  readonly repoRoot: string;
  readonly logDir: string;
  readonly nodeIP: string;
  readonly nodeCapacity: { readonly cpu: string; readonly memory: string };
  readonly onChange: () => void;
  readonly log: (message: string) => void;
}

export class PodWorker {
  readonly uid: string;
  #pod: V1Pod;
  readonly #context: PodWorkerContext;
  readonly #runners: ContainerRunner[];
  readonly #startTime = Date.now();
  #sandbox: PodSandbox | undefined;
  #terminating: Promise<void> | undefined;
  #started: Promise<void> | undefined;

  constructor(pod: V1Pod, context: PodWorkerContext) {
    this.uid = pod.metadata?.uid ?? '';
    this.#pod = pod;
    this.#context = context;
    this.#runners = (pod.spec?.containers ?? []).map(
      (container) => new ContainerRunner(this, container, context),
    );
  }

  get pod(): V1Pod {
    return this.#pod;
  }

  get sandbox(): PodSandbox | undefined {
    return this.#sandbox;
  }

  get terminating(): boolean {
    return this.#terminating !== undefined;
  }

  /** Process ids of the running containers (for tests and diagnostics). */
  get pids(): number[] {
    return this.#runners.flatMap((runner) => (runner.pid === undefined ? [] : [runner.pid]));
  }

  /** A newer version of the same pod (labels, annotations, deletionTimestamp…). */
  update(pod: V1Pod): void {
    this.#pod = pod;
  }

  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    const pod = this.#pod;
    const name = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if ((pod.spec?.initContainers ?? []).length > 0) {
      for (const runner of this.#runners) {
        runner.fail('CreateContainerConfigError', 'the test kubelet does not run init containers');
      }
      this.#context.onChange();
      return;
    }
    try {
      this.#sandbox = await this.#context.network.addPod(this.uid);
    } catch (error) {
      this.#context.log(`pod ${name}: cannot create its network namespace: ${(error as Error).message}`);
      for (const runner of this.#runners) runner.fail('CreatePodSandboxError', (error as Error).message);
      this.#context.onChange();
      return;
    }
    if (this.#terminating) return;
    this.#context.onChange();
    let kubeconfig: string | undefined;
    // As a real kubelet: no API credentials for a pod that opts out of the ServiceAccount token (the
    // Node authorizer would refuse the TokenRequest anyway: no volume of the pod names the audience).
    if (pod.spec?.automountServiceAccountToken !== false) {
      try {
        kubeconfig = await this.#context.podKubeconfig(pod);
      } catch (error) {
        this.#context.log(`pod ${name}: no ServiceAccount token: ${(error as Error).message}`);
      }
    }
    if (this.#terminating) return;
    for (const runner of this.#runners) void runner.run(this.#sandbox, kubeconfig);
  }

  status(now: number): Record<string, unknown> {
    return podStatus({
      podUid: this.uid,
      podIP: this.#sandbox?.ip,
      hostIP: this.#context.nodeIP,
      startTime: this.#startTime,
      initialized: this.#sandbox !== undefined,
      containers: this.#runners.map((runner) => runner.record),
      previousConditions: (this.#pod.status?.conditions ?? []) as Array<{
        type?: string;
        status?: string;
        lastTransitionTime?: unknown;
      }>,
      now,
    });
  }

  /** Stops every container (SIGTERM, then SIGKILL after graceSeconds) and removes the pod's network. */
  terminate(graceSeconds: number): Promise<void> {
    this.#terminating ??= (async () => {
      await this.#started?.catch(() => {});
      await Promise.all(this.#runners.map((runner) => runner.stop(graceSeconds * 1000)));
      await this.#context.network.removePod(this.uid);
      this.#sandbox = undefined;
    })();
    return this.#terminating;
  }
}

/** One container: start, watch, restart with back-off, probe, stop. */
class ContainerRunner {
  readonly #worker: PodWorker;
  readonly #container: V1Container;
  readonly #context: PodWorkerContext;
  #state: ContainerState = { kind: 'waiting', reason: 'ContainerCreating' };
  #lastTermination: Extract<ContainerState, { kind: 'terminated' }> | undefined;
  #restartCount = 0;
  #ready = false;
  #willRestart = true;
  #child: ChildProcess | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #done: Promise<void> = Promise.resolve();

  constructor(worker: PodWorker, container: V1Container, context: PodWorkerContext) {
    this.#worker = worker;
    this.#container = container;
    this.#context = context;
  }

  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }

  get record(): ContainerRecord {
    return {
      name: this.#container.name,
      image: this.#container.image ?? '',
      state: this.#state,
      ...(this.#lastTermination ? { lastTermination: this.#lastTermination } : {}),
      restartCount: this.#restartCount,
      ready: this.#ready,
      willRestart: this.#willRestart,
    };
  }

  /** The container cannot run at all (it stays waiting). */
  fail(reason: string, message: string): void {
    this.#state = { kind: 'waiting', reason, message };
  }

  run(sandbox: PodSandbox, kubeconfig: string | undefined): Promise<void> {
    this.#done = this.#loop(sandbox, kubeconfig).catch((error) => {
      this.#context.log(`container ${this.#label()}: ${(error as Error).stack ?? error}`);
    });
    return this.#done;
  }

  async #loop(sandbox: PodSandbox, kubeconfig: string | undefined): Promise<void> {
    const pod = this.#worker.pod;
    const policy = (pod.spec?.restartPolicy ?? 'Always') as RestartPolicy;
    const logFile = join(
      this.#context.logDir,
      `${pod.metadata?.namespace}_${pod.metadata?.name}_${this.#container.name}.log`,
    );
    while (!this.#stopping) {
      let launch: Awaited<ReturnType<typeof resolveContainerLaunch>>;
      try {
        launch = await resolveContainerLaunch(
          this.#worker.pod,
          this.#container,
          { podIP: sandbox.ip, hostIP: this.#context.nodeIP, nodeCapacity: this.#context.nodeCapacity },
          this.#context.sources,
        );
      } catch (error) {
        // A missing Secret or ConfigMap may appear later: the kubelet keeps trying.
        const reason =
          error instanceof ContainerConfigError ? 'CreateContainerConfigError' : 'CreateContainerError';
        this.#setState({ kind: 'waiting', reason, message: (error as Error).message });
        await this.#sleep(2000);
        continue;
      }
      const program = containerProgram(
        this.#container.image ?? '',
        launch.command,
        launch.args,
        this.#context.repoRoot,
        process.execPath,
      );
      if (!program.ok) {
        this.#setState({ kind: 'waiting', reason: program.reason, message: program.message });
        return;
      }
      if (this.#stopping) break;
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        HOSTNAME: pod.metadata?.name ?? '',
        ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
        ...launch.env,
      };
      const log = openSync(logFile, 'a');
      writeSync(
        log,
        `--- ${new Date().toISOString()} start #${this.#restartCount}: ${program.file} ${program.args.join(' ')}\n`,
      );
      const startedAt = Date.now();
      // setpriv: the container dies with the test process even if that is SIGKILLed (no stop() then).
      const child = spawn(
        'setpriv',
        ['--pdeathsig', 'KILL', '--', 'ip', 'netns', 'exec', sandbox.netns, program.file, ...program.args],
        { cwd: this.#context.repoRoot, env, stdio: ['ignore', log, log] },
      );
      closeSync(log);
      this.#child = child;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('error', () => resolve({ code: 127, signal: null }));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      this.#setState({ kind: 'running', startedAt });
      const probe = this.#container.readinessProbe;
      let prober: ReadinessProber | undefined;
      if (probe) {
        prober = new ReadinessProber(
          probe,
          this.#container,
          { podIP: sandbox.ip, netns: sandbox.netns, cwd: this.#context.repoRoot, env },
          (ready) => {
            this.#ready = ready;
            this.#context.onChange();
          },
          this.#context.log,
        );
      } else {
        this.#ready = true;
        this.#context.onChange();
      }
      const { code, signal } = await exited;
      prober?.stop();
      this.#child = undefined;
      this.#ready = false;
      const signalNumber = signal ? signalNumbers[signal] : undefined;
      const exitCode = code ?? 128 + (signalNumber ?? 9);
      const terminated = {
        kind: 'terminated' as const,
        exitCode,
        ...(signalNumber !== undefined ? { signal: signalNumber } : {}),
        reason: exitCode === 0 ? 'Completed' : 'Error',
        startedAt,
        finishedAt: Date.now(),
      };
      if (this.#stopping || !shouldRestart(policy, exitCode)) {
        this.#willRestart = false;
        this.#setState(terminated);
        return;
      }
      this.#lastTermination = terminated;
      const delay = restartDelayMs(this.#restartCount, terminated.finishedAt - startedAt);
      this.#setState({
        kind: 'waiting',
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.#container.name} pod=${pod.metadata?.name}`,
      });
      await this.#sleep(delay);
      if (this.#stopping) {
        this.#willRestart = false;
        this.#setState(terminated);
        return;
      }
      this.#restartCount++;
    }
  }

  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    await this.#done;
    if (this.#state.kind !== 'terminated') {
      // Never started (or waiting to restart): report it as ended, as the kubelet does.
      const now = Date.now();
      this.#willRestart = false;
      this.#state = { kind: 'terminated', exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now };
    }
  }

  #setState(state: ContainerState): void {
    this.#state = state;
    this.#context.onChange();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  #label(): string {
    const pod = this.#worker.pod;
    return `${pod.metadata?.namespace}/${pod.metadata?.name}/${this.#container.name}`;
  }
}

const signalNumbers: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};
