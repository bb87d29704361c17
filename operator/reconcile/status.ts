// Writing status through the status subresource, only when it differs from what is there: a
// status write is itself a watch event, and a reconcile that always wrote would never settle.
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from '../../kube/resources.ts';
import { mergePatch } from '../../kube/writes.ts';
import { FIELD_MANAGER, type ObjectMeta } from '../api/v1alpha1.ts';
import type { ReconcileContext } from './context.ts';

/** True if every field of `next` already has that value in `current`. */
function statusUpToDate(current: unknown, next: Record<string, unknown>): boolean {
  const existing = (current ?? {}) as Record<string, unknown>;
  return Object.entries(next).every(([field, value]) => isDeepStrictEqual(existing[field], value));
}

export async function writeStatus(
  context: ReconcileContext,
  resource: Resource,
  meta: ObjectMeta,
  current: unknown,
  next: Record<string, unknown>,
): Promise<boolean> {
  if (statusUpToDate(current, next)) return false;
  await mergePatch(
    context.client,
    { resource, namespace: meta.namespace ?? 'default', name: meta.name, subresource: 'status' },
    { status: next },
    { fieldManager: FIELD_MANAGER, signal: context.signal },
  );
  return true;
}
