// The internal-API credential of one VoiceEdgeCluster: a Secret whose key `tokens` holds
// comma-separated bearer tokens. Transceivers accept all of them, signaling and the operator send
// the first; listing two lets it be rotated without downtime (docs/kubernetes.md, "Rotating the
// transceiver API credential"). The operator creates the Secret when it is missing and never
// writes it again. Pure: the Secret to create, and what a Secret read back says.
import { createHash, randomBytes } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import {
  API_TOKENS_KEY,
  COMPONENT,
  transceiverApiSecretName,
  type VoiceEdgeCluster,
} from '../api/v1alpha1.ts';
import { type DesiredObject, ownedMeta } from './common.ts';

/** token68 (RFC 6750 §2.1), what an Authorization: Bearer header can carry. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** A fresh token: 32 random bytes, base64url (token68 characters only). */
export function newApiToken(random: (size: number) => Buffer = randomBytes): string {
  return random(32).toString('base64url');
}

/** The Secret the operator creates when the cluster's credential Secret does not exist. */
export function transceiverApiSecret(cluster: VoiceEdgeCluster, token: string): DesiredObject & V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(transceiverApiSecretName(cluster), COMPONENT.transceiverApi, cluster),
    type: 'Opaque',
    data: { [API_TOKENS_KEY]: Buffer.from(token, 'utf8').toString('base64') },
  };
}

export type ApiCredential =
  | {
      readonly ok: true;
      /** The token senders use (the first). */
      readonly token: string;
      readonly tokens: readonly string[];
      /** Short hash of the token list: in pod templates, so a rotation rolls the pods. */
      readonly hash: string;
    }
  | { readonly ok: false; readonly error: string };

/** What a Secret read from the API server holds under `tokens`, checked as the processes check it. */
export function readApiCredential(secret: unknown): ApiCredential {
  const name = (secret as { metadata?: { name?: string } })?.metadata?.name ?? '(unnamed)';
  const encoded = (secret as { data?: Record<string, unknown> })?.data?.[API_TOKENS_KEY];
  if (typeof encoded !== 'string')
    return { ok: false, error: `Secret ${name} has no key "${API_TOKENS_KEY}"` };
  const tokens = Buffer.from(encoded, 'base64')
    .toString('utf8')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (tokens.length === 0) return { ok: false, error: `Secret ${name}: "${API_TOKENS_KEY}" holds no token` };
  const bad = tokens.findIndex((token) => !TOKEN68.test(token));
  if (bad !== -1) {
    return {
      ok: false,
      error: `Secret ${name}: token ${bad + 1} of "${API_TOKENS_KEY}" is not a bearer token (token68: letters, digits, -._~+/ and trailing =)`,
    };
  }
  const hash = createHash('sha256').update(tokens.join(',')).digest('hex').slice(0, 16);
  return { ok: true, token: tokens[0]!, tokens, hash };
}
