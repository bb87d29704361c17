// The test kubelet's mini kube-proxy: watches Services and EndpointSlices (as system:kube-proxy) and keeps
// our iptables chains equal to what service-rules.ts renders for them, deleting UDP conntrack entries
// that would pin flows to gone or never-translated endpoints. It also stands in for a cloud's load
// balancer controller: a LoadBalancer Service gets status.loadBalancer.ingress = the node IP (the rules
// forward nodeIP:port), written with the admin identity since no node or proxy identity may.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { type KubeClient, PATCH } from '../../kube/client.ts';
import type { Informer, KubeObject } from '../../kube/informer.ts';
import { type PodNetwork, PROXY_CHAINS } from './pod-network.ts';
import { type Frontend, renderRules, serviceFrontends, staleUdpEntries } from './service-rules.ts';
import { testInformer } from './test-informer.ts';

export class ServiceProxy {
  readonly #network: PodNetwork;
  readonly #admin: KubeClient;
  readonly #log: (message: string) => void;
  readonly #services: Informer<V1Service & KubeObject>;
  readonly #slices: Informer<V1EndpointSlice & KubeObject>;
  #frontends: Frontend[] = [];
  #rules = '';
  #syncing: Promise<void> = Promise.resolve();
  #pending = false;
  #started = false;
  #stopped = false;
  readonly #published = new Map<string, string>();

  constructor(options: {
    proxy: KubeClient;
    admin: KubeClient;
    network: PodNetwork;
    log: (m: string) => void;
  }) {
    this.#network = options.network;
    this.#admin = options.admin;
    this.#log = options.log;
    const handlers = {
      onAdd: () => this.#schedule(),
      onUpdate: () => this.#schedule(),
      onDelete: () => this.#schedule(),
    };
    const log = (message: string) => this.#log(`kube-proxy: ${message}`);
    this.#services = testInformer(
      options.proxy,
      { name: 'services', path: '/api/v1/services', log },
      handlers,
    );
    this.#slices = testInformer(
      options.proxy,
      { name: 'endpointslices', path: '/apis/discovery.k8s.io/v1/endpointslices', log },
      handlers,
    );
  }

  /** Resolves once the rules for the current Services are in place. */
  async start(): Promise<void> {
    this.#services.start();
    this.#slices.start();
    await Promise.all([this.#services.whenSynced(), this.#slices.whenSynced()]);
    this.#started = true;
    this.#schedule();
    await this.#syncing;
  }

  /** The frontends currently forwarded (for tests and diagnostics). */
  get frontends(): readonly Frontend[] {
    return this.#frontends;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([this.#services.stop(), this.#slices.stop()]);
    await this.#syncing;
  }

  /** Coalesces bursts of events into one sync, never two at once. */
  #schedule(): void {
    if (!this.#started || this.#stopped || this.#pending) return;
    this.#pending = true;
    this.#syncing = this.#syncing.then(async () => {
      this.#pending = false;
      if (this.#stopped) return;
      try {
        await this.#sync();
      } catch (error) {
        this.#log(`kube-proxy sync: ${(error as Error).message}`);
        setTimeout(() => this.#schedule(), 1000).unref();
      }
    });
  }

  async #sync(): Promise<void> {
    const services = this.#services.list();
    const frontends = serviceFrontends(services, this.#slices.list(), this.#network.nodeIP);
    const rules = renderRules(frontends, PROXY_CHAINS, this.#network.podCidr);
    if (rules !== this.#rules) {
      await this.#network.applyRules(rules);
      this.#rules = rules;
      for (const entry of staleUdpEntries(this.#frontends, frontends))
        await this.#network.deleteConntrack(entry);
    }
    this.#frontends = frontends;
    for (const service of services) await this.#publishLoadBalancer(service);
  }

  async #publishLoadBalancer(service: V1Service): Promise<void> {
    if (service.spec?.type !== 'LoadBalancer') return;
    const ports = (service.spec.ports ?? []).map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP' }));
    const ingress = [{ ip: this.#network.nodeIP, ipMode: 'VIP', ports }];
    const want = JSON.stringify(ingress);
    const key = service.metadata?.uid ?? '';
    const have = JSON.stringify(service.status?.loadBalancer?.ingress ?? []);
    if (have === want || this.#published.get(key) === want) return;
    const { namespace, name } = service.metadata ?? {};
    await this.#admin.request('PATCH', `/api/v1/namespaces/${namespace}/services/${name}/status`, {
      body: { status: { loadBalancer: { ingress } } },
      contentType: PATCH.merge,
    });
    this.#published.set(key, want);
  }
}
