// What a browser test stands on: the whole edge (test/support/edge.ts), the pages the browser loads
// and Debian's Chromium, started together and stopped together.
import type { Browser } from 'playwright-core';
import { launchChromium } from './chromium.ts';
import { Edge, type EdgeOptions } from './edge.ts';
import { serveTestPages, type TestPages } from './test-pages.ts';

/**
 * Signaling's transceiver status polling for browser tests: Chromium starting on a small machine can
 * delay a transceiver's answer past the harness's usual timeout, and a missed poll refuses the call.
 */
const BROWSER_STATUS_POLLING = { statusIntervalMs: 500, statusTimeoutMs: 400, statusStaleMs: 3_000 };

export class ChromiumEdge {
  readonly edge: Edge;
  readonly pages: TestPages;
  readonly browser: Browser;

  private constructor(edge: Edge, pages: TestPages, browser: Browser) {
    this.edge = edge;
    this.pages = pages;
    this.browser = browser;
  }

  /** Starts all three (signaling polls as BROWSER_STATUS_POLLING unless `options.signaling` says). */
  static async start(options: EdgeOptions): Promise<ChromiumEdge> {
    const pages = await serveTestPages();
    let edge: Edge | undefined;
    try {
      edge = await Edge.start({
        signaling: { transceivers: BROWSER_STATUS_POLLING },
        ...options,
      });
      return new ChromiumEdge(edge, pages, await launchChromium());
    } catch (error) {
      pages.close();
      await edge?.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.browser.close().catch(() => {});
    this.pages.close();
    await this.edge.stop();
  }
}
