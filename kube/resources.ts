// REST paths of the built-in kinds the project touches (no discovery: the set is fixed and small);
// the operator adds its CRDs' (operator/resources.ts).

export interface Resource {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
}

export const resource = (apiVersion: string, kind: string, plural: string): Resource => ({
  apiVersion,
  kind,
  plural,
});

export const BUILT_IN_RESOURCES = {
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
} as const;

const BY_KIND = new Map(Object.values(BUILT_IN_RESOURCES).map((r) => [`${r.apiVersion}/${r.kind}`, r]));

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
