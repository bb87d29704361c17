// Pieces every desired object shares.
import type { KubernetesObject, V1EnvVar, V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { clusterLabels, controllerReference, type ObjectMeta } from '../api/v1alpha1.ts';

/** An object the operator writes whole: kind, name and namespace always set. */
export type DesiredObject = KubernetesObject & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
};

export interface Owner {
  readonly apiVersion?: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
}

/**
 * Metadata of an object the VoiceEdgeCluster `cluster` owns (as controller): in its namespace,
 * labelled for it and for `component`.
 */
export function ownedMeta(
  name: string,
  component: string,
  cluster: Owner,
): V1ObjectMeta & { name: string; namespace: string } {
  return {
    name,
    namespace: cluster.metadata.namespace ?? 'default',
    labels: clusterLabels(cluster.metadata.name, component),
    ownerReferences: [controllerReference(cluster) as V1OwnerReference],
  };
}

/** The selector labels of one component's pods (a subset of clusterLabels: selectors are immutable). */
export function selectorLabels(cluster: string, component: string): Record<string, string> {
  const { 'app.kubernetes.io/managed-by': _managedBy, ...selector } = clusterLabels(cluster, component);
  return selector;
}

export const env = (name: string, value: string): V1EnvVar => ({ name, value });
export const fieldEnv = (name: string, fieldPath: string): V1EnvVar => ({
  name,
  valueFrom: { fieldRef: { fieldPath } },
});
export const secretEnv = (name: string, secret: string, key: string): V1EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: secret, key } },
});

/**
 * A string as a YAML scalar that reads back as exactly that string (env overrides are parsed as
 * YAML: `ws://a:1/x#y` or `yes` would otherwise not survive).
 */
export const yamlString = (text: string) => JSON.stringify(text);
