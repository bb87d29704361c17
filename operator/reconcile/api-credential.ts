// The internal-API credential of one VoiceEdgeCluster, level-triggered: read the Secret from the API
// server (not a cache: the operator watches no Secrets), create it with a random token when it does
// not exist (owned by the cluster), never write an existing one (a person may be rotating it). What
// it found is remembered for this term per cluster, for the pool reconciler and the status poller.

import { isConflict, isNotFound, KubeApiError } from '../../kube/client.ts';
import { resourcePath } from '../../kube/resources.ts';
import { create } from '../../kube/writes.ts';
import {
  CLUSTER_KIND,
  FIELD_MANAGER,
  transceiverApiSecretName,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import {
  type ApiCredential,
  newApiToken,
  readApiCredential,
  transceiverApiSecret,
} from '../desired/transceiver-api-secret.ts';
import { RESOURCES } from '../resources.ts';
import { clusterKey, type ReconcileContext } from './context.ts';

export async function ensureApiCredential(
  context: ReconcileContext,
  cluster: VoiceEdgeCluster,
): Promise<ApiCredential> {
  const namespace = cluster.metadata.namespace ?? 'default';
  const name = transceiverApiSecretName(cluster);
  const path = resourcePath(RESOURCES.secret, namespace, name);
  const subject = { apiVersion: cluster.apiVersion, kind: CLUSTER_KIND, metadata: cluster.metadata };
  let credential: ApiCredential;
  try {
    let secret: unknown;
    try {
      secret = await context.client.get(path, { signal: context.signal });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        secret = await create(context.client, transceiverApiSecret(cluster, newApiToken()), {
          fieldManager: FIELD_MANAGER,
          signal: context.signal,
        });
        context.recorder.record(
          subject,
          'Normal',
          'CredentialCreated',
          'EnsureCredential',
          `created Secret ${name} with a random token for the transceivers' internal API`,
        );
      } catch (createError) {
        // Created by someone else meanwhile: theirs stands.
        if (!isConflict(createError)) throw createError;
        secret = await context.client.get(path, { signal: context.signal });
      }
    }
    credential = readApiCredential(secret);
  } catch (error) {
    // Refused (forbidden, invalid): a person must act, say so. Anything else (the API server away,
    // a timeout, a 5xx) is retried with the reconcile and changes nothing meanwhile.
    if (context.signal.aborted || !isRefused(error)) throw error;
    credential = { ok: false, error: `Secret ${name}: ${(error as Error).message}` };
  }
  const key = clusterKey(namespace, cluster.metadata.name);
  const before = context.credentials.get(key);
  context.credentials.set(key, credential);
  if (!credential.ok) {
    context.recorder.record(
      subject,
      'Warning',
      'CredentialUnavailable',
      'EnsureCredential',
      credential.error,
    );
  }
  // Pools build their pods with the credential's hash: a rotation (or a repair) concerns them.
  if (before !== undefined && credentialKey(before) !== credentialKey(credential)) {
    context.enqueuePoolsOf(namespace, cluster.metadata.name);
  }
  return credential;
}

const isRefused = (error: unknown) =>
  error instanceof KubeApiError && error.status >= 400 && error.status < 500 && error.status !== 429;

const credentialKey = (credential: ApiCredential) => (credential.ok ? credential.hash : credential.error);
