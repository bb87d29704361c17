// The public relay addresses of a cluster: what the transceivers and signaling advertise in SDP
// answers. spec.relay.publicAddresses when given; otherwise the relay Service's load-balancer
// ingress IPs with the relay port (a hostname ingress cannot be an ICE candidate and is skipped).
import { isIPv4, isIPv6 } from 'node:net';
import { formatHostPort } from '../protocol/host-port.ts';
import type { VoiceEdgeCluster } from './api/v1alpha1.ts';

interface ServiceLike {
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

export function relayAddresses(cluster: VoiceEdgeCluster, relayService: unknown): string[] {
  const relay = cluster.spec.relay;
  if (relay.publicAddresses.length > 0) return [...relay.publicAddresses];
  const ingress = (relayService as ServiceLike | undefined)?.status?.loadBalancer?.ingress ?? [];
  const addresses: string[] = [];
  for (const entry of ingress) {
    const ip = entry.ip;
    if (ip === undefined || !(isIPv4(ip) || isIPv6(ip))) continue;
    const address = formatHostPort(ip, relay.port);
    if (!addresses.includes(address)) addresses.push(address);
  }
  return addresses;
}
