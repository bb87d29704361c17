// Transceiver ID allocation, the pure step. The ledger (a ConfigMap, data `next`) is moved forward
// by compare-and-swap BEFORE any pod carrying the new IDs exists, so a crash between the two only
// leaves a gap and an ID is never handed out twice. The ledger never goes below an ID a pod
// carries: a ledger deleted or edited by hand restarts above every live pod's ID.
const FIRST_ID = 1;
export const MAX_ID = 0xffffffff;

export class IdSpaceExhaustedError extends Error {
  override name = 'IdSpaceExhaustedError';
  readonly code = 'id-space-exhausted';
}

/** The `next` value of a ledger's data; undefined when absent or not a decimal integer ≥ 1. */
export function readLedgerNext(data: Record<string, string> | undefined): number | undefined {
  const text = data?.next;
  if (text === undefined || !/^[1-9][0-9]{0,10}$/.test(text.trim())) return undefined;
  const next = Number(text.trim());
  return next <= MAX_ID + 1 ? next : undefined;
}

export interface Allocation {
  /** The IDs handed out: first, first+1, … first+count-1. */
  readonly ids: readonly number[];
  /** The ledger's new `next`, to be written with the resourceVersion it was read at. */
  readonly next: number;
}

/**
 * Allocates `count` IDs from a ledger that reads `ledgerNext` (undefined: no ledger or unreadable),
 * never below `highestObservedId + 1` (the highest ID any pod of the cluster carries, 0 if none).
 */
export function allocateIds(
  ledgerNext: number | undefined,
  highestObservedId: number,
  count: number,
): Allocation {
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`count must be a whole number ≥ 0, not ${count}`);
  const first = Math.max(ledgerNext ?? FIRST_ID, highestObservedId + 1, FIRST_ID);
  const next = first + count;
  if (next - 1 > MAX_ID) {
    throw new IdSpaceExhaustedError(
      `transceiver IDs exhausted: ${count} more from ${first} would pass ${MAX_ID}`,
    );
  }
  return { ids: Array.from({ length: count }, (_, index) => first + index), next };
}
