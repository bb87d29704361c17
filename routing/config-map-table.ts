// What one observation of the routing-table ConfigMap means for a watcher: a new table to use, a
// problem to report (the last good table stays in force), or nothing new. Pure: the Kubernetes I/O
// (routing/kubernetes-routing-source.ts) feeds it what the list and the watch return, including
// repeats (a relist after a restart sees the same object again), which it answers with `unchanged`.
import type { RoutingTable } from '../protocol/routing-table.ts';
import { parseRoutingDocument } from './routing-source.ts';

/** The data key of the ConfigMap that holds the table (JSON of `serializeRoutingTable`). */
export const ROUTING_TABLE_KEY = 'routing.json';

export type ConfigMapOutcome =
  | { readonly type: 'table'; readonly table: RoutingTable; readonly document: unknown }
  /** The ConfigMap holds no valid table; the current one (if any) stays. */
  | { readonly type: 'invalid'; readonly error: string }
  /** The ConfigMap does not exist; `hadTable` says whether a table is in force (then it stays). */
  | { readonly type: 'missing'; readonly error: string; readonly hadTable: boolean }
  | { readonly type: 'unchanged' };

const ABSENT = Symbol('absent');
const NO_KEY = Symbol('no key');

export class ConfigMapTableTracker {
  readonly origin: string;
  /** What the last observation held: its table text, or a marker. Repeats are not reported twice. */
  #observed: string | typeof ABSENT | typeof NO_KEY | undefined;
  /** Text of the table in force. */
  #deliveredText: string | undefined;
  #current: RoutingTable | undefined;

  /** `namespace/name` of the ConfigMap, for messages. */
  constructor(namespacedName: string) {
    this.origin = `routing table ConfigMap ${namespacedName}`;
  }

  /** The table in force (the last valid one observed). */
  get current(): RoutingTable | undefined {
    return this.#current;
  }

  /** The ConfigMap exists with this `data` (as the API returns it: undefined when it has none). */
  observe(data: Readonly<Record<string, string>> | undefined): ConfigMapOutcome {
    const text = data?.[ROUTING_TABLE_KEY];
    if (text === undefined) {
      if (this.#observed === NO_KEY) return { type: 'unchanged' };
      this.#observed = NO_KEY;
      return { type: 'invalid', error: `${this.origin} has no data key ${ROUTING_TABLE_KEY}` };
    }
    if (this.#observed === text) return { type: 'unchanged' };
    this.#observed = text;
    const parsed = parseRoutingDocument(text, `${this.origin} (${ROUTING_TABLE_KEY})`);
    if (!parsed.ok) return { type: 'invalid', error: parsed.error };
    // Back to the table in force after an invalid update (or a deletion): nothing changes.
    if (text === this.#deliveredText) return { type: 'unchanged' };
    this.#deliveredText = text;
    this.#current = parsed.table;
    return { type: 'table', table: parsed.table, document: parsed.document };
  }

  /** The ConfigMap does not exist (a watch DELETED event, or a list that came back empty). */
  observeAbsent(): ConfigMapOutcome {
    if (this.#observed === ABSENT) return { type: 'unchanged' };
    this.#observed = ABSENT;
    const hadTable = this.#current !== undefined;
    return {
      type: 'missing',
      hadTable,
      error: hadTable
        ? `${this.origin} was deleted; keeping the last table`
        : `${this.origin} does not exist`,
    };
  }
}
