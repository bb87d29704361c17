// Transceiver ID allocation against the ledger ConfigMap: read it fresh from the API server (never
// the cache), compute the step (id-ledger.ts), write it back with the resourceVersion it was read
// at. A conflict means someone else moved the ledger: read again. The IDs are the caller's only
// once the write has succeeded, and before any pod carries them.

import { isConflict, isNotFound } from '../../kube/client.ts';
import { resourcePath } from '../../kube/resources.ts';
import { create } from '../../kube/writes.ts';
import { FIELD_MANAGER, ledgerConfigMapName, type VoiceEdgeCluster } from '../api/v1alpha1.ts';
import { ledgerConfigMap } from '../desired/configmaps.ts';
import { allocateIds, readLedgerNext } from '../id-ledger.ts';
import { RESOURCES } from '../resources.ts';
import type { ReconcileContext } from './context.ts';

const ATTEMPTS = 5;

interface LedgerObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [field: string]: unknown };
  data?: Record<string, string>;
}

/**
 * Allocates `count` IDs for `cluster` (0: only make sure the ledger exists and is above every ID
 * in use). `highestObservedId`: the highest ID any pod or the published table carries.
 */
export async function allocateTransceiverIds(
  context: ReconcileContext,
  cluster: VoiceEdgeCluster,
  count: number,
  highestObservedId: number,
): Promise<readonly number[]> {
  const namespace = cluster.metadata.namespace ?? 'default';
  const path = resourcePath(RESOURCES.configMap, namespace, ledgerConfigMapName(cluster.metadata.name));
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let ledger: LedgerObject | undefined;
    try {
      ledger = await context.client.get<LedgerObject>(path, { signal: context.signal });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const current = readLedgerNext(ledger?.data);
    const allocation = allocateIds(current, highestObservedId, count);
    if (ledger !== undefined && allocation.next === current) return allocation.ids;
    try {
      if (ledger === undefined) {
        await create(context.client, ledgerConfigMap(cluster, allocation.next), {
          fieldManager: FIELD_MANAGER,
          signal: context.signal,
        });
      } else {
        await context.client.request('PUT', path, {
          query: { fieldManager: FIELD_MANAGER },
          body: { ...ledger, data: { ...ledger.data, next: String(allocation.next) } },
          signal: context.signal,
        });
      }
    } catch (error) {
      if (isConflict(error)) continue;
      throw error;
    }
    if (count > 0) {
      context.metrics.idAllocations.inc({ namespace, cluster: cluster.metadata.name }, count);
      context.logger.info(
        { cluster: `${namespace}/${cluster.metadata.name}`, ids: allocation.ids, next: allocation.next },
        'allocated transceiver IDs',
      );
    }
    return allocation.ids;
  }
  throw new Error(
    `the ID ledger of ${namespace}/${cluster.metadata.name} kept changing: ${ATTEMPTS} conflicts in a row`,
  );
}
