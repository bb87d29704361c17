// The configurations of an edge on one machine or a test network, typed by the services' own
// schemas (their zod input types): a transceiver, the routing table that names it, a relay and
// signaling. Local mode parses them in process; the test harnesses (test/support/edge.ts,
// global-edge.ts) write them as YAML files for service processes, adding what only tests set.
// Such an edge stops at once: no drain for the relay and signaling, a grace of the caller's choice
// for the transceiver.
import type { z } from 'zod';
import type { RoutingTableSchema } from '../protocol/routing-table.ts';
import type { RelayConfigSchema } from '../relay/config.ts';
import type { SignalingConfigSchema } from '../signaling/config.ts';
import type { TransceiverConfigSchema } from '../transceiver/config.ts';

export type TransceiverConfigInput = z.input<typeof TransceiverConfigSchema>;
export type RoutingTableInput = z.input<typeof RoutingTableSchema>;
export type RelayConfigInput = z.input<typeof RelayConfigSchema>;
export type SignalingConfigInput = z.input<typeof SignalingConfigSchema>;

export interface TransceiverPlan {
  readonly clusterId: number;
  readonly transceiverId: number;
  /** Its tunnel socket, `ip:port`: what the routing table names for it. */
  readonly tunnel: string;
  /** Where its relays send tunnel datagrams from (addresses or CIDRs): the only sources it accepts. */
  readonly allowedRelays: string[];
  /** The relays its answers advertise (UDP); with `tcpRelays`, the ICE-TCP ones too. */
  readonly relays: string[];
  readonly tcpRelays?: string[];
  readonly keysFile: string;
  readonly backend: TransceiverConfigInput['backend'];
  /** Its internal API and the one bearer token it takes. */
  readonly api: { readonly host: string; readonly port: number; readonly token: string };
  readonly graceMs: number;
}

export function transceiverConfig(plan: TransceiverPlan): TransceiverConfigInput {
  return {
    clusterId: plan.clusterId,
    transceiverId: plan.transceiverId,
    tunnel: { listen: plan.tunnel, allowedRelays: plan.allowedRelays },
    relays: plan.relays,
    ...(plan.tcpRelays === undefined ? {} : { tcpRelays: plan.tcpRelays }),
    routingKeys: { file: plan.keysFile },
    backend: plan.backend,
    api: { host: plan.api.host, port: plan.api.port, tokens: [plan.api.token] },
    shutdown: { graceMs: plan.graceMs },
  };
}

/** One row of the routing table: a transceiver's tunnel, internal API and state. */
export interface RoutedTransceiver {
  readonly id: number;
  readonly tunnel: string;
  readonly api: string;
  readonly state: 'active' | 'draining';
  /** Unix seconds; draining only. */
  readonly drainingSince?: number;
}

/** The routing table the operator would publish for the cluster's transceivers. */
export function routingTable(
  clusterId: number,
  generation: number,
  transceivers: readonly RoutedTransceiver[],
): RoutingTableInput {
  return {
    clusterId,
    generation,
    transceivers: transceivers.map(({ id, tunnel, state, api, drainingSince }) => ({
      id,
      tunnel,
      state,
      api,
      ...(drainingSince === undefined ? {} : { drainingSince }),
    })),
  };
}

export interface RelayPlan {
  readonly clusterId: number;
  /** Its public address (UDP); `tcpListen`: its ICE-TCP addresses, if any. */
  readonly listen: string;
  readonly tcpListen?: string[];
  /** The routing table it follows (an edge relay may have peers only). */
  readonly routingFile?: string;
  readonly keysFile: string;
  /** /healthz, /readyz and /metrics. */
  readonly http: { readonly host: string; readonly port: number };
}

/** A relay of one worker. */
export function relayConfig(plan: RelayPlan): RelayConfigInput {
  return {
    clusterId: plan.clusterId,
    listen: [plan.listen],
    ...(plan.tcpListen === undefined ? {} : { tcp: { listen: plan.tcpListen } }),
    workers: 1,
    ...(plan.routingFile === undefined ? {} : { routingTable: { file: plan.routingFile } }),
    routingKeys: { file: plan.keysFile },
    http: { host: plan.http.host, port: plan.http.port },
    shutdown: { drainMs: 0 },
  };
}

export interface SignalingPlan {
  /** WHIP (and the demo page). */
  readonly http: { readonly host: string; readonly port: number };
  /** /healthz, /readyz and /metrics. */
  readonly ops: { readonly host: string; readonly port: number };
  /** One cluster: its routing table and the relays answers advertise. */
  readonly routingFile: string;
  readonly relays: string[];
  readonly tcpRelays: string[];
  /** The transceivers' API token. */
  readonly apiToken: string;
}

export function signalingConfig(plan: SignalingPlan): SignalingConfigInput {
  return {
    http: { host: plan.http.host, port: plan.http.port },
    ops: { host: plan.ops.host, port: plan.ops.port },
    routingTable: { file: plan.routingFile },
    relays: plan.relays,
    tcpRelays: plan.tcpRelays,
    transceivers: { apiTokens: [plan.apiToken] },
    shutdown: { drainMs: 0 },
  };
}
