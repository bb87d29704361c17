// The public relay addresses of a cluster: what the transceivers and signaling advertise in SDP
// answers. spec.relay.publicAddresses when given; otherwise the relay Service's load-balancer
// ingress IPs with the relay port (a hostname ingress cannot be an ICE candidate and is skipped). The
// ICE-TCP addresses are the same IPs with the TCP port.
import { isIPv4, isIPv6 } from 'node:net';
import { parseTransportAddress } from '../protocol/address.ts';
import { formatHostPort } from '../protocol/host-port.ts';
import type { VoiceEdgeCluster } from './api/v1alpha1.ts';

interface ServiceLike {
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

/**
 * The relays' ICE-TCP addresses: the IPs of `udpAddresses` with the Service's TCP port (its node
 * port under serviceType NodePort, when fixed). None when TCP is off, or under NodePort without a
 * fixed node port (which answers could not name).
 */
export function relayTcpAddresses(cluster: VoiceEdgeCluster, udpAddresses: readonly string[]): string[] {
  const tcp = cluster.spec.relay.tcp;
  if (!tcp.enabled) return [];
  const port = cluster.spec.relay.serviceType === 'NodePort' ? tcp.nodePort : tcp.port;
  if (port === undefined) return [];
  const addresses: string[] = [];
  for (const text of udpAddresses) {
    const address = formatHostPort(parseTransportAddress(text).address, port);
    if (!addresses.includes(address)) addresses.push(address);
  }
  return addresses;
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
