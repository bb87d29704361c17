// A small raw-JSON Kubernetes HTTP client for the test kubelet: requests and watch streams with the
// credentials of a kubeconfig. Raw JSON (not client-node's models) because the kubelet patches status
// documents it builds itself and reads objects from watch events, which client-node leaves raw anyway.
import { Agent, request } from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export interface WatchEvent<T> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export class KubeClient {
  readonly server: URL;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;

  private constructor(server: URL, agent: Agent, headers: Record<string, string>) {
    this.server = server;
    this.#agent = agent;
    this.#headers = headers;
  }

  static async fromKubeConfig(config: KubeConfig): Promise<KubeClient> {
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const options: { ca?: unknown; cert?: unknown; key?: unknown; headers?: Record<string, string> } = {};
    await config.applyToHTTPSOptions(options as never);
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: options.ca as Buffer | undefined,
      cert: options.cert as Buffer | undefined,
      key: options.key as Buffer | undefined,
    });
    return new KubeClient(new URL(cluster.server), agent, { ...(options.headers ?? {}) });
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { query, signal });
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  /** JSON merge patch (RFC 7386). */
  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  }

  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, { body });
  }

  request<T>(
    method: string,
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      query?: Query | undefined;
      signal?: AbortSignal | undefined;
    } = {},
  ): Promise<T> {
    const url = this.#url(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return new Promise<T>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.#agent,
          timeout: 15_000,
          signal: options.signal,
          headers: {
            ...this.#headers,
            accept: 'application/json',
            ...(payload
              ? {
                  'content-type': options.contentType ?? 'application/json',
                  'content-length': payload.length,
                }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            if (status >= 200 && status < 300) resolve(parsed as T);
            else reject(apiError(status, parsed, text, `${method} ${path}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * One watch request: calls onEvent per event until the server ends the stream (resolves) or it fails
   * (rejects; an ERROR event carrying a Status rejects with a KubeApiError, 410 Gone included).
   */
  watch<T>(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const url = this.#url(path, { ...query, watch: true });
    return new Promise<void>((resolve, reject) => {
      const req = request(url, {
        agent: this.#agent,
        signal,
        headers: { ...this.#headers, accept: 'application/json' },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {}
            reject(apiError(res.statusCode ?? 0, parsed, text, `watch ${path}`));
          });
          return;
        }
        let failed = false;
        const lines = createInterface({ input: res });
        lines.on('error', reject);
        lines.on('line', (line) => {
          if (failed || !line.trim()) return;
          let event: WatchEvent<T>;
          try {
            event = JSON.parse(line) as WatchEvent<T>;
          } catch {
            return;
          }
          if (event.type === 'ERROR') {
            failed = true;
            const status = event.object as { code?: number };
            reject(apiError(status.code ?? 500, event.object, line, `watch ${path}`));
            res.destroy();
            return;
          }
          try {
            onEvent(event);
          } catch (error) {
            failed = true;
            reject(error);
            res.destroy();
          }
        });
        res.on('error', reject);
        res.on('close', () =>
          res.complete ? resolve() : reject(new Error(`watch ${path}: connection lost`)),
        );
      });
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  #url(path: string, query: Query | undefined): URL {
    const url = new URL(path, this.server);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }
}

function apiError(status: number, parsed: unknown, text: string, what: string): KubeApiError {
  const body = (parsed ?? {}) as { reason?: string; message?: string };
  return new KubeApiError(
    status,
    body.reason ?? '',
    `${what}: HTTP ${status}: ${body.message ?? text.slice(0, 300)}`,
  );
}
