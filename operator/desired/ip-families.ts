// What the cluster's IP families (VoiceEdgeCluster spec.ipFamilies) make of the addresses its pods
// bind and the families of its Services. Unset is IPv4 with the Services left to the cluster's
// default, exactly as before the field existed, so existing clusters' objects do not change.
import type { V1ServiceSpec } from '@kubernetes/client-node';
import { formatHostPort } from '../../protocol/host-port.ts';
import type { IpFamily, VoiceEdgeCluster } from '../api/v1alpha1.ts';

const WILDCARD: Record<IpFamily, string> = { IPv4: '0.0.0.0', IPv6: '::' };

function ipFamiliesOf(cluster: VoiceEdgeCluster): readonly IpFamily[] {
  return cluster.spec.ipFamilies ?? ['IPv4'];
}

/**
 * The host every HTTP server binds (relay, signaling, transceiver API): `::` when the cluster has
 * IPv6, which Node serves IPv4 on too (its TCP sockets are dual-stack); else 0.0.0.0.
 */
export function httpHost(cluster: VoiceEdgeCluster): string {
  return ipFamiliesOf(cluster).includes('IPv6') ? WILDCARD.IPv6 : WILDCARD.IPv4;
}

/**
 * The relay's public listen addresses: one wildcard per family on the relay port. The relay's IPv6
 * sockets are IPv6-only, so a dual-stack cluster needs both: `["0.0.0.0:3478", "[::]:3478"]`.
 */
export function relayListen(cluster: VoiceEdgeCluster): string[] {
  return ipFamiliesOf(cluster).map((family) => formatHostPort(WILDCARD[family], cluster.spec.relay.port));
}

/**
 * The relay's tunnel bind for IPv6 (`tunnel.bindV6`), when the cluster has IPv6: transceiver pods
 * with IPv6 addresses are reached through it. The IPv4 tunnel socket is always bound (0.0.0.0).
 */
export function relayTunnelBindV6(cluster: VoiceEdgeCluster): string | undefined {
  return ipFamiliesOf(cluster).includes('IPv6') ? WILDCARD.IPv6 : undefined;
}

/**
 * An address as an environment value, read as YAML: IPv6 in quotes (YAML reads `::` as a mapping),
 * IPv4 bare, as the operator has always written it (an unchanged value does not roll the pods).
 */
export function hostEnvValue(host: string): string {
  return host.includes(':') ? JSON.stringify(host) : host;
}

/** The relay and signaling Services' families, when the cluster names them. */
export function serviceIpFamilies(
  cluster: VoiceEdgeCluster,
): Pick<V1ServiceSpec, 'ipFamilies' | 'ipFamilyPolicy'> {
  const families = cluster.spec.ipFamilies;
  if (families === undefined) return {};
  return {
    ipFamilies: [...families],
    ipFamilyPolicy: families.length > 1 ? 'RequireDualStack' : 'SingleStack',
  };
}
