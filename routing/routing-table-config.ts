// The `routingTable` field of the relay's and signaling's configuration: where the routing table
// comes from. Exactly one of a file (local mode, tests, a mounted ConfigMap) or a ConfigMap read
// from the Kubernetes API (what the operator publishes). The namespace of the ConfigMap may be left
// out when the pod's own namespace is in POD_NAMESPACE (the downward API).
import { z } from 'zod';

const POD_NAMESPACE_ENV = 'POD_NAMESPACE';

/** Kubernetes object names: DNS-1123 subdomain (ConfigMap) and label (namespace). */
const dnsSubdomain = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a Kubernetes object name (lower-case letters, digits, "-" and ".")',
  );
const dnsLabel = z
  .string({
    error: (issue) =>
      issue.input === undefined ? `required (or set ${POD_NAMESPACE_ENV} to the pod's namespace)` : undefined,
  })
  .max(63)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    'must be a Kubernetes namespace name (lower-case letters, digits, "-")',
  );

export type RoutingTableSourceConfig =
  | { readonly file: string; readonly configMap?: undefined }
  | { readonly file?: undefined; readonly configMap: { readonly name: string; readonly namespace: string } };

export const RoutingTableSourceSchema = z
  .strictObject(
    {
      /** A YAML or JSON file, followed live. */
      file: z.string().min(1).optional(),
      /** A ConfigMap whose data key `routing.json` holds the table, watched through the API server. */
      configMap: z.strictObject({ name: dnsSubdomain, namespace: dnsLabel }).optional(),
    },
    {
      error: (issue) =>
        issue.input === undefined
          ? 'required: { file: <path> } or { configMap: { name, namespace } }'
          : undefined,
    },
  )
  .superRefine((source, context) => {
    if ((source.file === undefined) === (source.configMap === undefined)) {
      context.addIssue({
        code: 'custom',
        message: 'set exactly one of routingTable.file and routingTable.configMap',
      });
    }
  })
  .transform(
    (source): RoutingTableSourceConfig =>
      source.file !== undefined ? { file: source.file } : { configMap: source.configMap! },
  );

/**
 * Fills `routingTable.configMap.namespace` from POD_NAMESPACE when the raw configuration names a
 * ConfigMap without a namespace. Returns the input unchanged otherwise (never modifies it).
 */
export function withPodNamespace(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const namespace = env[POD_NAMESPACE_ENV];
  const table = raw.routingTable;
  if (namespace === undefined || namespace === '' || !isRecord(table) || !isRecord(table.configMap))
    return raw;
  if (table.configMap.namespace !== undefined) return raw;
  return { ...raw, routingTable: { ...table, configMap: { ...table.configMap, namespace } } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
