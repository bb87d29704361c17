// A wait that an AbortSignal cuts short: loops that retry or poll end at once on shutdown or when
// leadership is lost, without treating the abort as an error.
import { setTimeout as delay } from 'node:timers/promises';

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return delay(ms, undefined, { signal }).catch(() => {});
}
