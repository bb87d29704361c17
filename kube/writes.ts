// The writes the operator makes, each in the form the API server can check: server-side apply of
// owned objects (one field manager, forced: the operator owns those fields), merge patches of
// status and annotations, creates that fail if the name exists, deletes bound to one UID.
import type { KubeClient } from './client.ts';
import { PATCH } from './client.ts';
import { type Resource, resourceOf, resourcePath } from './resources.ts';

export interface WriteOptions {
  readonly fieldManager: string;
  readonly signal?: AbortSignal | undefined;
}

/** An object to write whole: its apiVersion and kind say where it goes, its metadata which one it is. */
export interface WritableObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined };
}

/** Server-side apply (PATCH application/apply-patch+yaml; JSON is YAML) with force. */
export function serverSideApply<T = unknown>(
  client: KubeClient,
  object: WritableObject,
  options: WriteOptions,
) {
  const path = resourcePath(
    resourceOf(object.apiVersion, object.kind),
    object.metadata.namespace,
    object.metadata.name,
  );
  return client.request<T>('PATCH', path, {
    query: { fieldManager: options.fieldManager, force: true },
    body: object,
    contentType: PATCH.apply,
    signal: options.signal,
  });
}

export function create<T = unknown>(client: KubeClient, object: WritableObject, options: WriteOptions) {
  const path = resourcePath(resourceOf(object.apiVersion, object.kind), object.metadata.namespace);
  return client.request<T>('POST', path, {
    query: { fieldManager: options.fieldManager },
    body: object,
    signal: options.signal,
  });
}

/** A JSON merge patch, of the object or of its status or scale subresource. */
export function mergePatch<T = unknown>(
  client: KubeClient,
  target: { resource: Resource; namespace: string; name: string; subresource?: 'status' | 'scale' },
  patch: unknown,
  options: WriteOptions,
) {
  return client.request<T>(
    'PATCH',
    resourcePath(target.resource, target.namespace, target.name, target.subresource),
    {
      query: { fieldManager: options.fieldManager },
      body: patch,
      contentType: PATCH.merge,
      signal: options.signal,
    },
  );
}

/** Deletes exactly the object with `uid` (a newer object of the same name is left alone). */
export function deleteObject(
  client: KubeClient,
  target: { resource: Resource; namespace: string; name: string; uid?: string | undefined },
  options: { signal?: AbortSignal | undefined },
) {
  return client.request('DELETE', resourcePath(target.resource, target.namespace, target.name), {
    body: {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      ...(target.uid ? { preconditions: { uid: target.uid } } : {}),
    },
    signal: options.signal,
  });
}
