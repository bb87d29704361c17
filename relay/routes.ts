// The routing table indexed the two ways the packet path needs it: by transceiver ID (a new flow's
// ufrag names one) and by tunnel address (a datagram from a transceiver must come from a known one).
import { addressKey, type TransportAddress } from '../protocol/address.ts';
import type { RoutingTable, TransceiverState } from '../protocol/routing-table.ts';

export interface Route {
  readonly transceiverId: number;
  readonly tunnel: TransportAddress;
  readonly state: TransceiverState;
  /** Unix seconds; set when draining: ufrags issued after it (plus clock tolerance) get no new flows. */
  readonly drainingSince: number | undefined;
}

export class Routes {
  readonly generation: number;
  readonly #byId = new Map<number, Route>();
  readonly #byTunnel = new Map<string, Route>();

  /**
   * `nowMs` and `previous` fill in drainingSince when the table does not say: the moment this relay
   * first saw the transceiver draining (kept across later tables while it stays draining).
   */
  constructor(table: Pick<RoutingTable, 'generation' | 'transceivers'>, nowMs: number, previous?: Routes) {
    this.generation = table.generation;
    for (const entry of table.transceivers) {
      let drainingSince: number | undefined;
      if (entry.state === 'draining') {
        drainingSince =
          entry.drainingSince ?? previous?.byId(entry.id)?.drainingSince ?? Math.floor(nowMs / 1000);
      }
      const route: Route = {
        transceiverId: entry.id,
        tunnel: entry.tunnel,
        state: entry.state,
        drainingSince,
      };
      this.#byId.set(entry.id, route);
      this.#byTunnel.set(addressKey(entry.tunnel.address, entry.tunnel.port), route);
    }
  }

  byId(transceiverId: number): Route | undefined {
    return this.#byId.get(transceiverId);
  }

  byTunnel(address: string, port: number): Route | undefined {
    return this.#byTunnel.get(addressKey(address, port));
  }

  get size(): number {
    return this.#byId.size;
  }
}
