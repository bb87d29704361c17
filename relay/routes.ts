// The routing table indexed the two ways the packet path needs it: by transceiver ID (a new flow's
// ufrag names one) and by tunnel address (a datagram from a transceiver must come from a known one).
import { addressKey, type TransportAddress } from '../protocol/address.ts';
import type { RoutingTable, TransceiverState } from '../protocol/routing-table.ts';

export interface Route {
  readonly transceiverId: number;
  readonly tunnel: TransportAddress;
  readonly state: TransceiverState;
}

export class Routes {
  readonly generation: number;
  readonly #byId = new Map<number, Route>();
  readonly #byTunnel = new Map<string, Route>();

  constructor(table: Pick<RoutingTable, 'generation' | 'transceivers'>) {
    this.generation = table.generation;
    for (const entry of table.transceivers) {
      const route: Route = { transceiverId: entry.id, tunnel: entry.tunnel, state: entry.state };
      this.#byId.set(entry.id, route);
      this.#byTunnel.set(addressKey(entry.tunnel.address, entry.tunnel.port), route);
    }
  }

  static empty(): Routes {
    return new Routes({ generation: 0, transceivers: [] });
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
