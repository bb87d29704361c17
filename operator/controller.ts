// Wires the caches to the reconcilers. Informers run all the time (a standby replica keeps warm
// caches, so a takeover starts at once); reconciling happens only during a leadership term, which
// has its own queue, transceiver poller and memory, all dropped when the term ends: a replica that
// loses the Lease stops writing at once (its in-flight requests are aborted) and forgets what it
// believed.
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { KubeObject } from '../kube/informer.ts';
import { WorkQueue } from '../kube/work-queue.ts';
import { COMPONENT, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_POOL } from './api/v1alpha1.ts';
import type { CrashPoint, OperatorConfig } from './config.ts';
import type { OperatorIdentity } from './desired/network-policy.ts';
import { PodExpectations } from './expectations.ts';
import type { OperatorMetrics } from './metrics.ts';
import {
  type Caches,
  clusterKey,
  parseKey,
  podView,
  poolKey,
  poolsNaming,
  type ReconcileContext,
} from './reconcile/context.ts';
import { reconcilePool } from './reconcile/transceiver-pool.ts';
import { reconcileCluster } from './reconcile/voice-edge-cluster.ts';
import { type PollTarget, StatusPoller } from './status-poller.ts';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly caches: Caches;
  readonly recorder: EventRecorder;
  readonly metrics: OperatorMetrics;
  readonly config: OperatorConfig;
  readonly logger: Logger;
  readonly operator: OperatorIdentity;
  readonly crash: (point: CrashPoint) => void;
}

interface Term {
  readonly queue: WorkQueue;
  readonly poller: StatusPoller;
  readonly context: ReconcileContext;
  readonly resync: NodeJS.Timeout;
  readonly running: Promise<void>;
}

export class Controller {
  readonly #options: ControllerOptions;
  #term: Term | undefined;
  #ending: Promise<void> = Promise.resolve();

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.#watch();
  }

  get leading(): boolean {
    return this.#term !== undefined;
  }

  /** Starts a leadership term once every cache is synced; it ends when `lost` aborts. */
  async lead(lost: AbortSignal): Promise<void> {
    const { caches, config, logger, metrics } = this.#options;
    await this.#ending;
    try {
      await Promise.all(Object.values(caches).map((informer) => informer.whenSynced(lost)));
    } catch {
      return; // lost before the caches were ready
    }
    if (lost.aborted) return;
    const queue = new WorkQueue({
      backoff: { initialMs: config.retry.initialMs, maxMs: config.retry.maxMs },
    });
    const poller = new StatusPoller({
      intervalMs: config.status.intervalMs,
      timeoutMs: config.status.timeoutMs,
      concurrency: config.status.concurrency,
      targets: () => this.#pollTargets(),
      onChange: (podKey) => this.#podChanged(podKey),
      onPoll: (outcome) => metrics.statusPolls.inc({ outcome }),
      onDrainRequest: (outcome) => metrics.drainRequests.inc({ outcome }),
      logger,
    });
    const context: ReconcileContext = {
      ...this.#options,
      signal: lost,
      poller,
      expectations: new PodExpectations(),
      recommendations: new Map(),
      applied: new Map(),
      published: new Map(),
      spareIds: new Map(),
      credentials: new Map(),
      enqueuePoolsOf: (namespace, cluster) => this.#addPoolsOf(namespace, cluster),
      now: Date.now,
    };
    const resync = setInterval(() => this.#enqueueAll(), config.resyncSeconds * 1000);
    resync.unref();
    const running = queue.run(
      config.workers,
      (key) => this.#reconcile(context, queue, key),
      (key, error) => {
        if (lost.aborted) return;
        const conflict = (error as { status?: number }).status === 409;
        logger[conflict ? 'debug' : 'warn'](
          { key, err: (error as Error).message },
          'reconcile failed: will retry',
        );
      },
    );
    this.#term = { queue, poller, context, resync, running };
    metrics.leader.set(1);
    poller.start();
    this.#enqueueAll();
    logger.info('reconciling');
    lost.addEventListener('abort', () => {
      this.#ending = this.#endTerm();
    });
  }

  /** Ends the current term (if any) and waits for its reconciles to stop. */
  async stop(): Promise<void> {
    if (this.#term) this.#ending = this.#endTerm();
    await this.#ending;
  }

  async #endTerm(): Promise<void> {
    const term = this.#term;
    if (!term) return;
    this.#term = undefined;
    this.#options.metrics.leader.set(0);
    clearInterval(term.resync);
    term.queue.shutdown();
    await Promise.all([term.running, term.poller.stop()]);
    this.#options.logger.info('stopped reconciling');
  }

  async #reconcile(context: ReconcileContext, queue: WorkQueue, key: string) {
    const parsed = parseKey(key);
    if (!parsed) return undefined;
    const { metrics } = this.#options;
    const kind = parsed.kind === 'vec' ? 'VoiceEdgeCluster' : 'TransceiverPool';
    const done = metrics.reconcileDuration.startTimer({ kind });
    try {
      const outcome =
        parsed.kind === 'vec'
          ? await reconcileCluster(context, parsed.namespace, parsed.name)
          : await reconcilePool(context, parsed.namespace, parsed.name);
      metrics.reconciles.inc({ kind, result: 'ok' });
      this.#options.logger.debug({ key, requeueAfterMs: outcome?.requeueAfterMs }, 'reconciled');
      return outcome;
    } catch (error) {
      metrics.reconciles.inc({ kind, result: 'error' });
      metrics.reconcileErrors.inc({ kind });
      throw error;
    } finally {
      done();
      metrics.queueDepth.set(queue.length);
    }
  }

  #add(key: string): void {
    this.#term?.queue.add(key);
  }

  #enqueueAll(): void {
    const { caches } = this.#options;
    for (const cluster of caches.clusters.list())
      this.#add(clusterKey(cluster.metadata.namespace ?? '', cluster.metadata.name));
    for (const pool of caches.pools.list())
      this.#add(poolKey(pool.metadata.namespace ?? '', pool.metadata.name));
  }

  #addPoolsOf(namespace: string, cluster: string): void {
    for (const pool of poolsNaming(this.#options.caches, namespace, cluster))
      this.#add(poolKey(namespace, pool.metadata.name));
  }

  /** Which keys each cache change concerns. */
  #watch(): void {
    const { caches } = this.#options;
    const namespaceOf = (object: KubeObject) => object.metadata.namespace ?? '';
    const generationOf = (object: KubeObject) => object.metadata.generation as number | undefined;

    caches.clusters.addHandlers({
      onAdd: (cluster) => {
        this.#add(clusterKey(namespaceOf(cluster), cluster.metadata.name));
        this.#addPoolsOf(namespaceOf(cluster), cluster.metadata.name);
      },
      onUpdate: (before, cluster) => {
        this.#add(clusterKey(namespaceOf(cluster), cluster.metadata.name));
        // Pools read the cluster's spec, not its status.
        if (generationOf(before) !== generationOf(cluster))
          this.#addPoolsOf(namespaceOf(cluster), cluster.metadata.name);
      },
      onDelete: (cluster) => {
        this.#add(clusterKey(namespaceOf(cluster), cluster.metadata.name));
        this.#addPoolsOf(namespaceOf(cluster), cluster.metadata.name);
      },
    });

    const clusterOfPool = (pool: KubeObject) =>
      (pool.spec as { clusterName?: unknown } | undefined)?.clusterName;
    const poolChanged = (pool: KubeObject, clusterToo: boolean) => {
      this.#add(poolKey(namespaceOf(pool), pool.metadata.name));
      const cluster = clusterOfPool(pool);
      if (clusterToo && typeof cluster === 'string') this.#add(clusterKey(namespaceOf(pool), cluster));
    };
    caches.pools.addHandlers({
      onAdd: (pool) => poolChanged(pool, true),
      onUpdate: (before, pool) =>
        poolChanged(
          pool,
          before.metadata.deletionTimestamp !== pool.metadata.deletionTimestamp ||
            JSON.stringify(before.metadata.finalizers) !== JSON.stringify(pool.metadata.finalizers),
        ),
      onDelete: (pool) => poolChanged(pool, true),
    });

    const podChanged = (pod: KubeObject) => {
      const labels = pod.metadata.labels ?? {};
      const pool = labels[LABEL_POOL];
      const cluster = labels[LABEL_INSTANCE];
      if (pool) this.#add(poolKey(namespaceOf(pod), pool));
      if (cluster) this.#add(clusterKey(namespaceOf(pod), cluster));
    };
    caches.pods.addHandlers({
      onAdd: podChanged,
      onUpdate: (_before, pod) => podChanged(pod),
      onDelete: podChanged,
    });

    const ownedChanged = (object: KubeObject) => {
      const cluster = object.metadata.labels?.[LABEL_INSTANCE];
      if (!cluster) return;
      this.#add(clusterKey(namespaceOf(object), cluster));
      // Pools wait for the routing table (draining) and read the relay Service (addresses).
      const component = object.metadata.labels?.[LABEL_COMPONENT];
      if (component === COMPONENT.routingTable || component === COMPONENT.relay)
        this.#addPoolsOf(namespaceOf(object), cluster);
    };
    for (const informer of [caches.configMaps, caches.deployments, caches.services]) {
      informer.addHandlers({
        onAdd: ownedChanged,
        onUpdate: (_before, object) => ownedChanged(object),
        onDelete: ownedChanged,
      });
    }
  }

  #pollTargets(): PollTarget[] {
    const targets: PollTarget[] = [];
    const credentials = this.#term?.context.credentials;
    for (const object of this.#options.caches.pods.list()) {
      const pod = podView(object);
      if (pod?.podIP === undefined || pod.terminating) continue;
      const credential = credentials?.get(clusterKey(pod.namespace, pod.cluster));
      targets.push({
        key: `${pod.namespace}/${pod.name}`,
        podIP: pod.podIP,
        id: pod.id,
        token: credential?.ok ? credential.token : undefined,
      });
    }
    return targets;
  }

  #podChanged(podKey: string): void {
    const slash = podKey.indexOf('/');
    const pod = this.#options.caches.pods.get(podKey.slice(0, slash), podKey.slice(slash + 1));
    const pool = pod?.metadata.labels?.[LABEL_POOL];
    if (pod && pool) this.#add(poolKey(podKey.slice(0, slash), pool));
  }
}
