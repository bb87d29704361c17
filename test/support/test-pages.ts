// Serves test/e2e/pages/*.html on 127.0.0.1 (or ::1) for Chromium: a secure context (getUserMedia) in
// the loopback address space, so the pages may call the edge's loopback endpoints (a page Chromium
// did not load from loopback is refused them by Local Network Access).
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { originOf } from '../../protocol/host-port.ts';

const pages = new URL('../e2e/pages/', import.meta.url);

export interface TestPages {
  /** The address of `name` (e.g. `whip-call.html`). */
  url(name: string): string;
  close(): void;
}

export async function serveTestPages(host = '127.0.0.1'): Promise<TestPages> {
  const server = createServer((request, response) => {
    const name = new URL(request.url ?? '/', 'http://x').pathname.slice(1);
    if (name === 'favicon.ico') {
      response.writeHead(204).end();
      return;
    }
    if (request.method !== 'GET' || !/^[a-z0-9-]+\.html$/.test(name)) {
      response.writeHead(404).end();
      return;
    }
    readFile(new URL(name, pages)).then(
      (body) => {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        response.end(body);
      },
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `${originOf('http', host, port)}/${name}`,
    close() {
      server.close();
      server.closeAllConnections();
    },
  };
}
