// Structural checks of the CRDs without a cluster: names per the API contract, a description on every
// field (so `kubectl explain` helps), printer columns and the scale subresource pointing at fields that
// exist, CEL rules with messages and bounded inputs, the chart using these very files, and the
// operator's TypeScript mirror (operator/api/v1alpha1.ts) having the same fields and defaults.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TransceiverPoolSpecSchema, VoiceEdgeClusterSpecSchema } from '../operator/api/v1alpha1.ts';
import { transceiverPod } from '../operator/desired/transceiver-pod.ts';
import { cluster as clusterFixture, pool as poolFixture } from '../operator/test-support/fixtures.ts';

const CRDS_DIR = fileURLToPath(new URL('.', import.meta.url));
const CHART_CRDS_DIR = fileURLToPath(new URL('../charts/voice-edge/crds', import.meta.url));

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  maxLength?: number;
  maxItems?: number;
  maxProperties?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string }[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular: string; shortNames: string[]; listKind: string };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: {
        status?: object;
        scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
      };
      additionalPrinterColumns?: { name: string; type: string; jsonPath: string; description?: string }[];
      selectableFields?: { jsonPath: string }[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

const readCrd = (file: string): Crd => parseYaml(readFileSync(`${CRDS_DIR}${file}`, 'utf8')) as Crd;
const cluster = readCrd('voiceedgeclusters.voice-edge.io.yaml');
const pool = readCrd('transceiverpools.voice-edge.io.yaml');
const version = (crd: Crd) => crd.spec.versions[0]!;
const rootSchema = (crd: Crd) => version(crd).schema.openAPIV3Schema;

/** Every schema node with its path, depth first. */
function* walk(schema: Schema, path: string): Generator<[string, Schema]> {
  yield [path, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) yield* walk(child, `${path}.${name}`);
  if (schema.items) yield* walk(schema.items, `${path}[]`);
  if (typeof schema.additionalProperties === 'object') yield* walk(schema.additionalProperties, `${path}{}`);
}

/** The schema node a JSONPath like `.status.conditions[?(@.type=="Ready")].status` reads, or undefined. */
function resolve(schema: Schema, jsonPath: string): Schema | undefined {
  let node: Schema | undefined = schema;
  for (const token of jsonPath.replace(/\[\?\(.*?\)\]/g, '[]').match(/\.[A-Za-z0-9_]+|\[\]/g) ?? []) {
    if (node === undefined) return undefined;
    node = token === '[]' ? node.items : node.properties?.[token.slice(1)];
  }
  return node;
}

describe('CRD names', () => {
  for (const [crd, kind, plural, shortNames] of [
    [cluster, 'VoiceEdgeCluster', 'voiceedgeclusters', ['vec']],
    [pool, 'TransceiverPool', 'transceiverpools', ['tp', 'tpool']],
  ] as const) {
    it(`${kind}: voice-edge.io/v1alpha1, namespaced, ${plural}, short names ${shortNames.join(', ')}`, () => {
      assert.equal(crd.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal(crd.kind, 'CustomResourceDefinition');
      assert.equal(crd.metadata.name, `${plural}.voice-edge.io`);
      assert.equal(crd.spec.group, 'voice-edge.io');
      assert.equal(crd.spec.scope, 'Namespaced');
      assert.equal(crd.spec.names.kind, kind);
      assert.equal(crd.spec.names.plural, plural);
      assert.equal(crd.spec.names.singular, kind.toLowerCase());
      assert.deepEqual(crd.spec.names.shortNames, shortNames);
      assert.equal(crd.spec.versions.length, 1);
      assert.equal(version(crd).name, 'v1alpha1');
      assert.equal(version(crd).served, true);
      assert.equal(version(crd).storage, true);
      assert.deepEqual(version(crd).subresources?.status, {});
    });
  }
});

describe('CRD schemas', () => {
  for (const crd of [cluster, pool]) {
    const kind = crd.spec.names.kind;
    const root = rootSchema(crd);

    it(`${kind}: every field has a description (kubectl explain)`, () => {
      const missing = [...walk(root, kind)]
        .filter(([path, node]) => path !== `${kind}.metadata` && !node.description?.trim())
        .filter(([path]) => !path.endsWith('{}') && !path.endsWith('[]') && !path.endsWith('[]{}'))
        .map(([path]) => path);
      assert.deepEqual(missing, []);
    });

    it(`${kind}: structural (every node typed, unknown fields only where declared)`, () => {
      for (const [path, node] of walk(root, kind)) {
        assert.ok(node.type, `${path} has no type`);
        if (node.type === 'object' && !node['x-kubernetes-preserve-unknown-fields']) {
          assert.ok(
            node.properties !== undefined ||
              node.additionalProperties !== undefined ||
              path === `${kind}.metadata`,
            `${path} is an object without properties`,
          );
        }
        if (node.type === 'array') assert.ok(node.items, `${path} has no items`);
        for (const key of node.required ?? [])
          assert.ok(node.properties?.[key], `${path} requires unknown ${key}`);
        for (const key of node['x-kubernetes-list-map-keys'] ?? []) {
          assert.equal(node['x-kubernetes-list-type'], 'map', `${path}: map keys without list-type map`);
          const item = node.items!;
          assert.ok(
            item.required?.includes(key) || item.properties?.[key]?.default !== undefined,
            `${path}: list map key ${key} must be required or defaulted`,
          );
        }
      }
    });

    it(`${kind}: every CEL rule has a message and bounded input`, () => {
      let rules = 0;
      for (const [path, node] of walk(root, kind)) {
        for (const validation of node['x-kubernetes-validations'] ?? []) {
          rules++;
          assert.ok(
            validation.message?.trim() || validation.messageExpression,
            `${path}: rule without message`,
          );
          // A rule over an unbounded string or list makes the API server's cost estimate explode.
          if (node.type === 'string' && validation.rule !== 'self == oldSelf' && !path.endsWith('metadata')) {
            assert.ok(node.maxLength, `${path}: CEL over a string without maxLength`);
          }
          if (node.type === 'array') assert.ok(node.maxItems, `${path}: CEL over a list without maxItems`);
          if (node.type === 'object' && node.additionalProperties) {
            assert.ok(node.maxProperties, `${path}: CEL over a map without maxProperties`);
          }
        }
        // Rules inside list items run once per item: the list must be bounded too.
        if (
          node.type === 'array' &&
          [...walk(node.items!, '')].some(([, n]) => n['x-kubernetes-validations'])
        ) {
          assert.ok(node.maxItems, `${path}: a list whose items carry CEL rules needs maxItems`);
        }
      }
      assert.ok(rules > 0);
    });

    it(`${kind}: status holds conditions in the metav1.Condition shape, listed by type`, () => {
      const conditions = root.properties?.status?.properties?.conditions;
      assert.ok(conditions);
      assert.equal(conditions['x-kubernetes-list-type'], 'map');
      assert.deepEqual(conditions['x-kubernetes-list-map-keys'], ['type']);
      const item = conditions.items!;
      assert.deepEqual(item.required, ['type', 'status', 'lastTransitionTime', 'reason', 'message']);
      assert.deepEqual(Object.keys(item.properties!).sort(), [
        'lastTransitionTime',
        'message',
        'observedGeneration',
        'reason',
        'status',
        'type',
      ]);
      assert.deepEqual(item.properties!.status!.enum, ['True', 'False', 'Unknown']);
      assert.equal(root.properties?.status?.properties?.observedGeneration?.type, 'integer');
    });

    it(`${kind}: printer columns read fields that exist, with matching types`, () => {
      const columns = version(crd).additionalPrinterColumns ?? [];
      assert.ok(columns.length > 0);
      assert.equal(new Set(columns.map((c) => c.name)).size, columns.length, 'column names are unique');
      for (const column of columns) {
        if (column.jsonPath === '.metadata.creationTimestamp') {
          assert.equal(column.type, 'date');
          continue;
        }
        const node = resolve(root, column.jsonPath);
        assert.ok(node, `${column.name}: ${column.jsonPath} is not in the schema`);
        assert.equal(node.type, column.type, `${column.name}: ${column.jsonPath} is ${node.type}`);
        assert.ok(column.description, `${column.name} has no description`);
      }
    });
  }

  it('VoiceEdgeCluster columns: ClusterID, Region, Ready, Transceivers, Age', () => {
    assert.deepEqual(
      version(cluster).additionalPrinterColumns?.map((c) => c.name),
      ['ClusterID', 'Region', 'Ready', 'Transceivers', 'Age'],
    );
  });

  it('TransceiverPool columns: Cluster, Desired, Replicas, Ready, Sessions, Capacity, the Ready condition, Age', () => {
    const columns = version(pool).additionalPrinterColumns!;
    const byName = Object.fromEntries(columns.map((c) => [c.name, c.jsonPath]));
    assert.equal(byName.Cluster, '.spec.clusterName');
    assert.equal(byName.Desired, '.spec.replicas');
    assert.equal(byName.Replicas, '.status.replicas');
    assert.equal(byName.Ready, '.status.readyReplicas');
    assert.equal(byName.Sessions, '.status.sessions');
    assert.equal(byName.Capacity, '.status.capacity');
    assert.equal(byName.Status, '.status.conditions[?(@.type=="Ready")].status');
    assert.equal(byName.Age, '.metadata.creationTimestamp');
  });

  it('TransceiverPool has a scale subresource on spec.replicas, status.replicas and status.selector', () => {
    const scale = version(pool).subresources?.scale;
    assert.deepEqual(scale, {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    });
    const root = rootSchema(pool);
    assert.equal(resolve(root, scale.specReplicasPath)?.type, 'integer');
    assert.equal(resolve(root, scale.statusReplicasPath)?.type, 'integer');
    assert.equal(resolve(root, scale.labelSelectorPath)?.type, 'string');
    for (const field of version(pool).selectableFields ?? []) {
      assert.ok(resolve(root, field.jsonPath), `selectable field ${field.jsonPath} is not in the schema`);
    }
  });

  it('the immutable fields, clusterId and clusterName, have a transition rule', () => {
    for (const node of [
      rootSchema(cluster).properties!.spec!.properties!.clusterId!,
      rootSchema(pool).properties!.spec!.properties!.clusterName!,
    ]) {
      assert.ok(node['x-kubernetes-validations']?.some((v) => v.rule === 'self == oldSelf'));
    }
  });
});

describe('TransceiverPool backend', () => {
  const backend = rootSchema(pool).properties!.spec!.properties!.backend!;

  it('protocol voice-edge (default) or twilio-media-streams; sampleRate 8000 or unset with Twilio', () => {
    assert.deepEqual(backend.properties!.protocol!.enum, ['voice-edge', 'twilio-media-streams']);
    assert.equal(backend.properties!.protocol!.default, 'voice-edge');
    // No default rate: it would be set on Twilio pools too, where the rule below refuses it.
    assert.equal(backend.properties!.sampleRate!.default, undefined);
    const rules = backend['x-kubernetes-validations']!.map((v) => v.rule.replace(/\s+/g, ' '));
    assert.ok(rules.some((rule) => rule.includes("'twilio-media-streams'") && rule.includes('== 8000')));
  });

  it('template.env may not set any variable the operator sets on a transceiver pod', () => {
    const item = rootSchema(pool).properties!.spec!.properties!.template!.properties!.env!.items!;
    const rule = item['x-kubernetes-validations']![0]!.rule;
    const reserved = new Set([...rule.matchAll(/'([A-Z_]+)'/g)].map((match) => match[1]));
    // A pool with every optional backend field, so that every variable the operator may set appears.
    const twilio = poolFixture({
      backend: { url: 'ws://bot/', protocol: 'twilio-media-streams', accountSid: `AC${'1'.repeat(32)}` },
    });
    const pod = transceiverPod(
      {
        pool: twilio,
        cluster: clusterFixture(),
        defaultImage: 'img',
        relayAddresses: [],
        apiTokensHash: 'h',
      },
      1,
    );
    const names = pod.spec!.containers[0]!.env!.map((variable) => variable.name);
    assert.deepEqual(
      names.filter((name) => !reserved.has(name)),
      [],
    );
  });
});

describe('the chart ships these CRDs', () => {
  it('charts/voice-edge/crds is a link to crds/ (one source of truth)', () => {
    assert.equal(realpathSync(CHART_CRDS_DIR), realpathSync(CRDS_DIR));
    const yamlFiles = readdirSync(CRDS_DIR).filter((f) => f.endsWith('.yaml'));
    assert.deepEqual(yamlFiles.sort(), [
      'transceiverpools.voice-edge.io.yaml',
      'voiceedgeclusters.voice-edge.io.yaml',
    ]);
  });
});

// --- the operator's mirror: same fields, same required fields, same defaults ---

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  required?: string[];
  default?: unknown;
}

/** Differences between the CRD's schema and the operator's zod schema (as JSON Schema of its input). */
function compareShapes(crd: Schema, mirror: JsonSchema, path: string, out: string[]): string[] {
  const crdType = crd.type;
  const mirrorType = Array.isArray(mirror.type) ? mirror.type[0] : mirror.type;
  const sameType = crdType === mirrorType || (crdType === 'integer' && mirrorType === 'number');
  if (!sameType) out.push(`${path}: CRD ${crdType}, operator ${mirrorType}`);
  if (crd.default !== undefined && typeof crd.default !== 'object' && crd.default !== mirror.default) {
    out.push(
      `${path}: CRD default ${JSON.stringify(crd.default)}, operator ${JSON.stringify(mirror.default)}`,
    );
  }
  if (crd.properties) {
    const crdKeys = Object.keys(crd.properties).sort();
    const mirrorKeys = Object.keys(mirror.properties ?? {}).sort();
    if (JSON.stringify(crdKeys) !== JSON.stringify(mirrorKeys)) {
      out.push(`${path}: CRD fields ${crdKeys.join(',')}, operator ${mirrorKeys.join(',')}`);
    }
    const crdRequired = [...(crd.required ?? [])].sort();
    const mirrorRequired = [...(mirror.required ?? [])].sort();
    if (JSON.stringify(crdRequired) !== JSON.stringify(mirrorRequired)) {
      out.push(`${path}: CRD requires ${crdRequired.join(',')}, operator ${mirrorRequired.join(',')}`);
    }
    for (const key of crdKeys) {
      const child = mirror.properties?.[key];
      if (child) compareShapes(crd.properties[key]!, child, `${path}.${key}`, out);
    }
  }
  if (crd.items && mirror.items) compareShapes(crd.items, mirror.items, `${path}[]`, out);
  return out;
}

describe('operator/api/v1alpha1.ts mirrors the CRDs', () => {
  for (const [crd, schema] of [
    [cluster, VoiceEdgeClusterSpecSchema],
    [pool, TransceiverPoolSpecSchema],
  ] as const) {
    it(`${crd.spec.names.kind}.spec: same fields, required fields and defaults`, () => {
      const mirror = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
      assert.deepEqual(compareShapes(rootSchema(crd).properties!.spec!, mirror, 'spec', []), []);
    });
  }
});
