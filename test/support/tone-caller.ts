// What pages/tone-caller.html records: every change (talk on/off, a sound heard or gone, a
// connection, ICE or DTLS state) with its time in the page and as Date.now() there.
import type { Page } from 'playwright-core';

export interface PageEvent {
  what: string;
  /** performance.now() in the page. */
  t: number;
  /** Date.now() in the page, to compare with the test's clock. */
  wall: number;
}

/** The page's events so far, oldest first. */
export function toneCallerEvents(tab: Page): Promise<PageEvent[]> {
  return tab.evaluate(() => (window as unknown as { events: PageEvent[] }).events);
}
