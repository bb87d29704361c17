// A small Kubernetes REST client over node:https: the operator needs list, watch streams, get,
// create, update with a resourceVersion (compare-and-swap), merge patch, server-side apply and
// delete with preconditions, on built-in kinds and on its own CRDs alike. Credentials come from
// @kubernetes/client-node's KubeConfig (kubeconfig file, in-cluster token, exec plugins), asked
// afresh for every request so a rotated token is picked up; connections are kept alive.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';

export const PATCH = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** An answer other than 2xx from the API server, with its HTTP status and Status reason. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  readonly code = 'kube-api';
  readonly status: number;
  /** The Status object's `reason` (`NotFound`, `Conflict`, `AlreadyExists`, `Expired`…). */
  readonly reason: string | undefined;
  /** The Status object's `message`; undefined when the answer was not a Status object. */
  readonly statusMessage: string | undefined;

  constructor(
    method: string,
    path: string,
    status: number,
    reason: string | undefined,
    statusMessage: string | undefined,
    text = '',
  ) {
    super(
      `${method} ${path}: ${status}${reason ? ` ${reason}` : ''}: ${statusMessage ?? text.slice(0, 500)}`,
    );
    this.status = status;
    this.reason = reason;
    this.statusMessage = statusMessage;
  }
}

export const isNotFound = (error: unknown) => error instanceof KubeApiError && error.status === 404;
export const isConflict = (error: unknown) => error instanceof KubeApiError && error.status === 409;
export const isGone = (error: unknown) => error instanceof KubeApiError && error.status === 410;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  readonly query?: Query;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly signal?: AbortSignal | undefined;
  /** Whole request, answer included (default 30 s). */
  readonly timeoutMs?: number;
}

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class KubeClient {
  readonly server: URL;
  readonly #kubeConfig: KubeConfig;
  #agent: http.Agent | undefined;
  #closed = false;

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.#kubeConfig = kubeConfig;
    this.server = new URL(cluster.server);
  }

  /** JSON request; resolves with the parsed answer (undefined for an empty one). */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.#send(method, path, options);
    const text = await readBody(response, MAX_RESPONSE_BYTES);
    if (response.statusCode! < 200 || response.statusCode! >= 300)
      throw apiError(method, path, response, text);
    return (text.length > 0 ? JSON.parse(text) : undefined) as T;
  }

  get<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  /**
   * A watch stream: calls `onEvent` for every event until the server ends the stream (resolves) or
   * the connection fails or stays silent for `idleTimeoutMs` (rejects). An ERROR event is passed on
   * like any other: the caller decides (a 410 means relist).
   */
  async watch(
    path: string,
    query: Query,
    onEvent: (event: WatchEvent) => void,
    options: { signal?: AbortSignal; idleTimeoutMs: number },
  ): Promise<void> {
    const controller = new AbortController();
    const abort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', abort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => controller.abort(new Error(`watch ${path} silent for ${options.idleTimeoutMs} ms`)),
        options.idleTimeoutMs,
      );
    };
    try {
      touch();
      const response = await this.#send('GET', path, {
        query: { ...query, watch: true },
        signal: controller.signal,
        timeoutMs: 0,
      });
      if (response.statusCode !== 200) {
        throw apiError('GET', path, response, await readBody(response, MAX_RESPONSE_BYTES));
      }
      touch();
      await new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: response, crlfDelay: Number.POSITIVE_INFINITY });
        const fail = (error: Error) => {
          lines.close();
          response.destroy();
          reject(error);
        };
        controller.signal.addEventListener('abort', () => fail(abortError(controller.signal)), {
          once: true,
        });
        response.on('data', touch);
        response.on('error', fail);
        response.on('aborted', () => fail(new Error(`watch ${path}: connection closed mid-stream`)));
        lines.on('line', (line) => {
          if (line.length === 0) return;
          let event: WatchEvent;
          try {
            event = JSON.parse(line) as WatchEvent;
          } catch {
            fail(new Error(`watch ${path}: a line that is not JSON`));
            return;
          }
          if (typeof event?.type !== 'string' || typeof event.object !== 'object' || event.object === null) {
            fail(new Error(`watch ${path}: an event without type or object`));
            return;
          }
          try {
            onEvent(event);
          } catch (error) {
            fail(error as Error);
          }
        });
        lines.on('close', () => resolve());
      });
    } finally {
      clearTimeout(idle);
      options.signal?.removeEventListener('abort', abort);
      controller.abort();
    }
  }

  /** Closes kept-alive connections; requests after this fail. */
  close(): void {
    this.#closed = true;
    this.#agent?.destroy();
  }

  async #send(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    if (this.#closed) throw new Error('the Kubernetes client is closed');
    options.signal?.throwIfAborted();
    const url = new URL(this.server.href.replace(/\/$/, '') + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const tls: https.RequestOptions & { headers?: Record<string, string> } = {};
    await this.#kubeConfig.applyToHTTPSOptions(tls);
    this.#agent ??= this.#createAgent(tls);
    const agent = this.#agent;
    const body =
      options.body === undefined
        ? undefined
        : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(tls.headers as Record<string, string> | undefined),
    };
    if (body) {
      headers['content-type'] = options.contentType ?? 'application/json';
      headers['content-length'] = String(body.length);
    }
    const timeoutMs = options.timeoutMs ?? 30_000;
    return await new Promise<IncomingMessage>((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(url, {
        method,
        headers,
        agent,
        ...(tls.auth ? { auth: tls.auth } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) {
        timer = setTimeout(
          () => request.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)),
          timeoutMs,
        );
      }
      request.on('response', (response) => {
        if (timer) {
          // The body must arrive within the same budget.
          response.on('end', () => clearTimeout(timer));
          response.on('close', () => clearTimeout(timer));
        }
        resolve(response);
      });
      request.on('error', (error) => {
        clearTimeout(timer);
        reject(options.signal?.aborted ? abortError(options.signal) : error);
      });
      request.end(body);
    });
  }

  #createAgent(tls: https.RequestOptions): http.Agent {
    if (this.server.protocol === 'http:') return new http.Agent({ keepAlive: true });
    return new https.Agent({
      keepAlive: true,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key } : {}),
      ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
      ...(tls.servername ? { servername: tls.servername } : {}),
    });
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

async function readBody(response: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      response.destroy();
      throw new Error(`answer larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function apiError(method: string, path: string, response: IncomingMessage, text: string): KubeApiError {
  let reason: string | undefined;
  let message: string | undefined;
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason;
    message = status.message;
  } catch {
    // Not a Status object: the error shows the text.
  }
  return new KubeApiError(method, path, response.statusCode ?? 0, reason, message, text);
}
