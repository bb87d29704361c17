// A container's environment as the kubelet builds it: envFrom first, then env in order, each `value`
// expanded against the variables defined before it, `valueFrom` resolved (fieldRef, resourceFieldRef,
// secretKeyRef, configMapKeyRef, honouring `optional`); then command and args expanded against the
// result. Secrets and ConfigMaps come through `sources`, so this is testable without an API server.
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { expandVariables } from './env-expansion.ts';

export interface EnvSources {
  /** The Secret's data (decoded) or undefined if there is no such Secret. */
  secret(namespace: string, name: string): Promise<Readonly<Record<string, string>> | undefined>;
  configMap(namespace: string, name: string): Promise<Readonly<Record<string, string>> | undefined>;
}

export interface PodRuntimeFacts {
  readonly podIP: string;
  readonly hostIP: string;
  /** Node capacity, the value of resourceFieldRef for a resource without a limit. */
  readonly nodeCapacity: { readonly cpu: string; readonly memory: string };
}

/** A reference that cannot be resolved: the container stays waiting with CreateContainerConfigError. */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError';
}

export interface ContainerLaunch {
  readonly env: Record<string, string>;
  readonly command: string[] | undefined;
  readonly args: string[];
}

export async function resolveContainerLaunch(
  pod: V1Pod,
  container: V1Container,
  facts: PodRuntimeFacts,
  sources: EnvSources,
): Promise<ContainerLaunch> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = {};
  const lookup = (name: string) => (Object.hasOwn(env, name) ? env[name] : undefined);

  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) {
      const data = await sources.configMap(namespace, from.configMapRef.name ?? '');
      if (!data) {
        if (from.configMapRef.optional) continue;
        throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      }
      for (const [key, value] of Object.entries(data)) env[prefix + key] = value;
    } else if (from.secretRef) {
      const data = await sources.secret(namespace, from.secretRef.name ?? '');
      if (!data) {
        if (from.secretRef.optional) continue;
        throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      }
      for (const [key, value] of Object.entries(data)) env[prefix + key] = value;
    }
  }

  for (const variable of container.env ?? []) {
    if (variable.value !== undefined && variable.value !== '') {
      env[variable.name] = expandVariables(variable.value, lookup);
      continue;
    }
    const from = variable.valueFrom;
    if (!from) {
      env[variable.name] = '';
      continue;
    }
    if (from.fieldRef) {
      env[variable.name] = fieldValue(pod, from.fieldRef.fieldPath, facts);
    } else if (from.resourceFieldRef) {
      env[variable.name] = resourceValue(container, pod, from.resourceFieldRef, facts);
    } else if (from.secretKeyRef) {
      const { name = '', key, optional } = from.secretKeyRef;
      const data = await sources.secret(namespace, name);
      const value = data?.[key];
      if (value === undefined) {
        if (optional) continue;
        throw new ContainerConfigError(
          data ? `couldn't find key ${key} in Secret ${namespace}/${name}` : `secret "${name}" not found`,
        );
      }
      env[variable.name] = value;
    } else if (from.configMapKeyRef) {
      const { name = '', key, optional } = from.configMapKeyRef;
      const data = await sources.configMap(namespace, name);
      const value = data?.[key];
      if (value === undefined) {
        if (optional) continue;
        throw new ContainerConfigError(
          data
            ? `couldn't find key ${key} in ConfigMap ${namespace}/${name}`
            : `configmap "${name}" not found`,
        );
      }
      env[variable.name] = value;
    }
  }

  return {
    env,
    command: container.command?.map((part) => expandVariables(part, lookup)),
    args: (container.args ?? []).map((part) => expandVariables(part, lookup)),
  };
}

function fieldValue(pod: V1Pod, path: string, facts: PodRuntimeFacts): string {
  const metadata = pod.metadata ?? {};
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (labelOrAnnotation) {
    const map = labelOrAnnotation[1] === 'labels' ? metadata.labels : metadata.annotations;
    return map?.[labelOrAnnotation[2]!] ?? '';
  }
  switch (path) {
    case 'metadata.name':
      return metadata.name ?? '';
    case 'metadata.namespace':
      return metadata.namespace ?? '';
    case 'metadata.uid':
      return metadata.uid ?? '';
    case 'metadata.labels':
      return formatMap(metadata.labels);
    case 'metadata.annotations':
      return formatMap(metadata.annotations);
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.podIPs':
      return facts.podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return facts.hostIP;
    default:
      throw new ContainerConfigError(`unsupported fieldRef fieldPath ${path}`);
  }
}

/** The downward API's format for a whole label or annotation map: key="value" lines, sorted. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((key) => `${key}=${JSON.stringify(map?.[key])}`)
    .join('\n');
}

function resourceValue(
  container: V1Container,
  pod: V1Pod,
  ref: { resource: string; containerName?: string; divisor?: unknown },
  facts: PodRuntimeFacts,
): string {
  const target = ref.containerName
    ? (pod.spec?.containers.find((c) => c.name === ref.containerName) ?? container)
    : container;
  const [kind, resource] = ref.resource.split('.') as [string, string];
  const declared = (kind === 'limits' ? target.resources?.limits : target.resources?.requests)?.[resource];
  if (declared !== undefined) return String(declared);
  // Without a limit the kubelet reports the node's allocatable amount; without a request, 0.
  if (kind === 'limits') return resource === 'cpu' ? facts.nodeCapacity.cpu : facts.nodeCapacity.memory;
  return '0';
}
