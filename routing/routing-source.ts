// Where the relay gets its routing table. A source delivers validated tables; an invalid update is
// reported and the last good table stays in force. The file source serves local mode and tests; a
// Kubernetes source (the operator's published table) implements the same interface.
import { parse as parseYaml } from 'yaml';
import { parseRoutingTable, type RoutingTable } from '../protocol/routing-table.ts';
import { WatchedFile } from './watched-file.ts';

export interface RoutingSourceListener {
  onTable(table: RoutingTable, document: unknown): void;
  onInvalid(error: string): void;
}

export interface RoutingSource {
  /** Resolves with the first valid table; rejects if there is none to start from. */
  start(listener: RoutingSourceListener): Promise<{ table: RoutingTable; document: unknown }>;
  close(): void;
}

export function parseRoutingDocument(
  text: string,
  origin: string,
): { ok: true; table: RoutingTable; document: unknown } | { ok: false; error: string } {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    return { ok: false, error: `${origin} is not valid YAML/JSON: ${(error as Error).message}` };
  }
  const result = parseRoutingTable(document);
  if (!result.ok) return { ok: false, error: `${origin}: ${result.error}` };
  return { ok: true, table: result.table, document };
}

export class FileRoutingSource implements RoutingSource {
  readonly #file: WatchedFile;

  constructor(path: string) {
    this.#file = new WatchedFile(path);
  }

  async start(listener: RoutingSourceListener): Promise<{ table: RoutingTable; document: unknown }> {
    const origin = `routing table ${this.#file.path}`;
    const text = await this.#file.start(
      (next) => {
        const parsed = parseRoutingDocument(next, origin);
        if (parsed.ok) listener.onTable(parsed.table, parsed.document);
        else listener.onInvalid(parsed.error);
      },
      (error) => listener.onInvalid(`${origin}: ${error.message}`),
    );
    const parsed = parseRoutingDocument(text, origin);
    if (!parsed.ok) {
      this.close();
      throw new Error(parsed.error);
    }
    return parsed;
  }

  close(): void {
    this.#file.close();
  }
}
