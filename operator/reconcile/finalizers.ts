// Adding and removing the operator's finalizer with a merge patch that carries the
// resourceVersion it was computed from (a concurrent change makes it fail, and the reconcile runs
// again on fresh data rather than dropping someone else's finalizer).

import type { Resource } from '../../kube/resources.ts';
import { mergePatch } from '../../kube/writes.ts';
import { FIELD_MANAGER, type ObjectMeta } from '../api/v1alpha1.ts';
import type { ReconcileContext } from './context.ts';

export async function setFinalizer(
  context: ReconcileContext,
  resource: Resource,
  meta: ObjectMeta,
  finalizer: string,
  present: boolean,
): Promise<void> {
  const current = meta.finalizers ?? [];
  if (current.includes(finalizer) === present) return;
  const finalizers = present ? [...current, finalizer] : current.filter((name) => name !== finalizer);
  await mergePatch(
    context.client,
    { resource, namespace: meta.namespace ?? 'default', name: meta.name },
    { metadata: { finalizers, resourceVersion: meta.resourceVersion } },
    { fieldManager: FIELD_MANAGER, signal: context.signal },
  );
}
