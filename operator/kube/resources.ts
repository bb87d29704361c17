// REST paths of the kinds the operator touches (no discovery: the set is fixed and small).
import { CLUSTER_KIND, CLUSTER_PLURAL, GROUP, POOL_KIND, POOL_PLURAL, VERSION } from '../api/v1alpha1.ts';

export interface Resource {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
}

const resource = (apiVersion: string, kind: string, plural: string): Resource => ({
  apiVersion,
  kind,
  plural,
});

export const RESOURCES = {
  pod: resource('v1', 'Pod', 'pods'),
  configMap: resource('v1', 'ConfigMap', 'configmaps'),
  secret: resource('v1', 'Secret', 'secrets'),
  service: resource('v1', 'Service', 'services'),
  serviceAccount: resource('v1', 'ServiceAccount', 'serviceaccounts'),
  deployment: resource('apps/v1', 'Deployment', 'deployments'),
  podDisruptionBudget: resource('policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets'),
  networkPolicy: resource('networking.k8s.io/v1', 'NetworkPolicy', 'networkpolicies'),
  role: resource('rbac.authorization.k8s.io/v1', 'Role', 'roles'),
  roleBinding: resource('rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings'),
  lease: resource('coordination.k8s.io/v1', 'Lease', 'leases'),
  event: resource('events.k8s.io/v1', 'Event', 'events'),
  cluster: resource(`${GROUP}/${VERSION}`, CLUSTER_KIND, CLUSTER_PLURAL),
  pool: resource(`${GROUP}/${VERSION}`, POOL_KIND, POOL_PLURAL),
} as const;

const BY_KIND = new Map(Object.values(RESOURCES).map((r) => [`${r.apiVersion}/${r.kind}`, r]));

export function resourceOf(apiVersion: string, kind: string): Resource {
  const found = BY_KIND.get(`${apiVersion}/${kind}`);
  if (!found) throw new Error(`no REST path known for ${apiVersion} ${kind}`);
  return found;
}

/**
 * `/api/v1/namespaces/ns/pods/name/status` and the like. Without a namespace: the collection across
 * all namespaces; without a name: the collection.
 */
export function resourcePath(
  target: Resource,
  namespace?: string,
  name?: string,
  subresource?: 'status' | 'scale',
): string {
  const base = target.apiVersion.includes('/') ? `/apis/${target.apiVersion}` : `/api/${target.apiVersion}`;
  const scope = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const item = name ? `/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}` : '';
  return `${base}${scope}/${target.plural}${item}`;
}
