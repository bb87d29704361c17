// The test kubelet's mini kube-proxy, pure part: Services + EndpointSlices → the frontends to forward
// (ClusterIP:port, nodeIP:nodePort, and for a LoadBalancer Service nodeIP:port, since its "load balancer"
// is the node), each with its ready endpoints; → iptables-restore input for our own chains; → which
// UDP conntrack entries must go when endpoints change (as kube-proxy does: a UDP "flow" keeps its NAT
// decision, so packets sent before a pod was ready, or to a pod since gone, would stick to it).
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

export interface Frontend {
  /** "<namespace>/<service>:<port name or number> <kind>" — also the iptables comment. */
  readonly comment: string;
  readonly protocol: 'tcp' | 'udp';
  readonly ip: string;
  readonly port: number;
  /** "podIP:port", sorted. */
  readonly endpoints: readonly string[];
}

export interface ProxyChains {
  /** nat chain jumped to from PREROUTING and OUTPUT: the DNAT rules. */
  readonly services: string;
  /** nat chain jumped to from POSTROUTING: masquerade pod-to-service-to-pod traffic. */
  readonly postrouting: string;
  /** filter chain jumped to from FORWARD: let the pod bridge forward whatever the host policy says. */
  readonly forward: string;
}

export function serviceFrontends(
  services: readonly V1Service[],
  slices: readonly V1EndpointSlice[],
  nodeIP: string,
): Frontend[] {
  const frontends: Frontend[] = [];
  for (const service of services) {
    const namespace = service.metadata?.namespace ?? '';
    const name = service.metadata?.name ?? '';
    const spec = service.spec;
    if (!spec || spec.type === 'ExternalName') continue;
    const own = slices.filter(
      (slice) =>
        slice.metadata?.namespace === namespace &&
        slice.metadata?.labels?.['kubernetes.io/service-name'] === name &&
        slice.addressType === 'IPv4',
    );
    for (const port of spec.ports ?? []) {
      const protocol = (port.protocol ?? 'TCP').toLowerCase();
      if (protocol !== 'tcp' && protocol !== 'udp') continue;
      const endpoints = readyEndpoints(own, port.name ?? '', port.protocol ?? 'TCP');
      const label = `${namespace}/${name}:${port.name || port.port}`;
      const add = (kind: string, ip: string, frontPort: number) =>
        frontends.push({ comment: `${label} ${kind}`, protocol, ip, port: frontPort, endpoints });
      if (spec.clusterIP && spec.clusterIP !== 'None') add('cluster-ip', spec.clusterIP, port.port);
      if ((spec.type === 'NodePort' || spec.type === 'LoadBalancer') && port.nodePort) {
        add('node-port', nodeIP, port.nodePort);
      }
      if (spec.type === 'LoadBalancer') add('load-balancer', nodeIP, port.port);
      for (const ip of spec.externalIPs ?? []) add('external-ip', ip, port.port);
    }
  }
  return frontends.sort((a, b) => a.comment.localeCompare(b.comment) || a.port - b.port);
}

function readyEndpoints(slices: readonly V1EndpointSlice[], portName: string, protocol: string): string[] {
  const out = new Set<string>();
  for (const slice of slices) {
    const port = (slice.ports ?? []).find(
      (p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === protocol,
    );
    if (port?.port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      // kube-proxy's rule: an endpoint is used when ready (unset counts as ready) and not terminating.
      if (endpoint.conditions?.ready === false || endpoint.conditions?.terminating === true) continue;
      for (const address of endpoint.addresses) out.add(`${address}:${port.port}`);
    }
  }
  return [...out].sort();
}

/** iptables-restore --noflush input that rewrites our chains (and only them) in one transaction. */
export function renderRules(frontends: readonly Frontend[], chains: ProxyChains, podCidr: string): string {
  const nat = [
    '*nat',
    `:${chains.services} - [0:0]`,
    `:${chains.postrouting} - [0:0]`,
    `-F ${chains.services}`,
    `-F ${chains.postrouting}`,
  ];
  for (const frontend of frontends) {
    const match = `-d ${frontend.ip}/32 -p ${frontend.protocol} -m ${frontend.protocol} --dport ${frontend.port}`;
    const comment = `-m comment --comment ${quote(frontend.comment)}`;
    frontend.endpoints.forEach((endpoint, index) => {
      const left = frontend.endpoints.length - index;
      // Endpoint i of n is taken with probability 1/(n-i) of what reaches it: uniform overall.
      const pick = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : '';
      nat.push(`-A ${chains.services} ${match} ${comment}${pick} -j DNAT --to-destination ${endpoint}`);
    });
  }
  // A pod reaching a Service that lands on a pod of the same bridge would get the reply straight from
  // that pod's address, not the one it sent to: masquerade so the reply comes back through the node.
  nat.push(
    `-A ${chains.postrouting} -s ${podCidr} -d ${podCidr} -m conntrack --ctstate DNAT -j MASQUERADE`,
    'COMMIT',
  );
  const filter = [
    '*filter',
    `:${chains.forward} - [0:0]`,
    `-F ${chains.forward}`,
    `-A ${chains.forward} -s ${podCidr} -j ACCEPT`,
    `-A ${chains.forward} -d ${podCidr} -j ACCEPT`,
    'COMMIT',
  ];
  return `${[...nat, ...filter].join('\n')}\n`;
}

function quote(text: string): string {
  return `"${text.replace(/["\\]/g, '')}"`;
}

export interface ConntrackDeletion {
  readonly protocol: 'udp';
  readonly origDst: string;
  readonly origPortDst: number;
  /** Only entries answered by this endpoint; absent: every entry of the frontend. */
  readonly replySrc?: string;
}

/** UDP conntrack entries that would keep packets on a stale NAT decision after this change. */
export function staleUdpEntries(
  previous: readonly Frontend[],
  next: readonly Frontend[],
): ConntrackDeletion[] {
  const key = (f: Frontend) => `${f.protocol} ${f.ip}:${f.port}`;
  const before = new Map(previous.map((f) => [key(f), new Set(f.endpoints)]));
  const deletions: ConntrackDeletion[] = [];
  const seen = new Set<string>();
  for (const frontend of next) {
    if (frontend.protocol !== 'udp') continue;
    seen.add(key(frontend));
    const old = before.get(key(frontend)) ?? new Set<string>();
    if (old.size === 0 && frontend.endpoints.length > 0) {
      // Packets sent while there was no endpoint were not translated, and never will be.
      deletions.push({ protocol: 'udp', origDst: frontend.ip, origPortDst: frontend.port });
      continue;
    }
    const now = new Set(frontend.endpoints);
    for (const endpoint of old) {
      if (!now.has(endpoint)) deletions.push(gone(frontend.ip, frontend.port, endpoint));
    }
  }
  for (const frontend of previous) {
    if (frontend.protocol !== 'udp' || seen.has(key(frontend))) continue;
    for (const endpoint of frontend.endpoints) deletions.push(gone(frontend.ip, frontend.port, endpoint));
  }
  return deletions;
}

function gone(ip: string, port: number, endpoint: string): ConntrackDeletion {
  return {
    protocol: 'udp',
    origDst: ip,
    origPortDst: port,
    replySrc: endpoint.slice(0, endpoint.lastIndexOf(':')),
  };
}
