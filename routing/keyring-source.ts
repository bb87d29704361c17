// Where a component gets its routing keys: a watched file (a mounted Kubernetes Secret, so a
// rotation is picked up live) or, fixed for the process's life, the VOICE_EDGE_ROUTING_KEYS
// environment variable. Delivers the validated keyring document; an invalid update is reported and
// the previous keys stay in force.
import { parse as parseYaml } from 'yaml';
import { parseKeyringDocument } from '../protocol/keyring.ts';
import type { RoutingKeyring } from '../protocol/ufrag.ts';
import { WatchedFile } from './watched-file.ts';

export const ROUTING_KEYS_ENV = 'VOICE_EDGE_ROUTING_KEYS';

export interface LoadedKeyring {
  /** The document as parsed (plain data: can be posted to worker threads). */
  readonly document: unknown;
  readonly keyring: RoutingKeyring;
}

function parseKeyringText(text: string, origin: string): LoadedKeyring {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new Error(`${origin} is not valid YAML/JSON: ${(error as Error).message}`);
  }
  const result = parseKeyringDocument(document);
  if (!result.ok) throw new Error(`${origin}: ${result.error}`);
  return { document, keyring: result.keyring };
}

export interface KeyringListener {
  onKeyring(loaded: LoadedKeyring): void;
  onInvalid(error: string): void;
}

export class KeyringSource {
  readonly #file: WatchedFile | undefined;
  readonly #env: NodeJS.ProcessEnv;

  /** `file`: the keyring file; without it the environment variable is read. */
  constructor(file: string | undefined, env: NodeJS.ProcessEnv = process.env) {
    this.#file = file === undefined ? undefined : new WatchedFile(file);
    this.#env = env;
  }

  /** Resolves with the first valid keyring; rejects (naming the origin) if there is none. */
  async start(listener: KeyringListener): Promise<LoadedKeyring> {
    const file = this.#file;
    if (file === undefined) return parseKeyringText(this.#env[ROUTING_KEYS_ENV] ?? '', ROUTING_KEYS_ENV);
    const origin = `routing keys ${file.path}`;
    let text: string;
    try {
      text = await file.start(
        (next) => {
          try {
            listener.onKeyring(parseKeyringText(next, origin));
          } catch (error) {
            listener.onInvalid((error as Error).message);
          }
        },
        (error) => listener.onInvalid(`${origin}: ${error.message}`),
      );
    } catch (error) {
      throw new Error(`cannot read ${origin}: ${(error as Error).message}`);
    }
    try {
      return parseKeyringText(text, origin);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  close(): void {
    this.#file?.close();
  }
}
