// The routing-key document (a Kubernetes Secret's file, a local file or an env var):
//
//   current: 2            # optional: the key new ufrags are signed with (default: highest id)
//   keys:
//     - id: 1
//       secret: <base64, at least 16 bytes>
//     - id: 2
//       secret: <base64>
//
// Rotation: add a key, make it current, remove the old one once its sessions have ended.
import { z } from 'zod';
import { formatIssues } from './schema.ts';
import { MIN_KEY_BYTES, RoutingKeyring } from './ufrag.ts';

// Buffer.from(…, 'base64') never fails: it skips what it cannot use. So a secret must also survive a
// round trip (padding optional), or a truncated or mistyped secret would silently become another key.
const isBase64 = (text: string): boolean => {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return false;
  const canonical = Buffer.from(text, 'base64').toString('base64');
  return canonical === text || canonical.replace(/=+$/, '') === text;
};

const base64Secret = z
  .string()
  .refine(isBase64, 'must be base64')
  .transform((text) => Buffer.from(text, 'base64'))
  .refine((bytes) => bytes.length >= MIN_KEY_BYTES, `must decode to at least ${MIN_KEY_BYTES} bytes`);

export const KeyringDocumentSchema = z
  .strictObject({
    current: z.number().int().min(0).max(255).optional(),
    keys: z.array(z.strictObject({ id: z.number().int().min(0).max(255), secret: base64Secret })).min(1),
  })
  .superRefine((document, context) => {
    const ids = new Set<number>();
    document.keys.forEach((key, index) => {
      if (ids.has(key.id))
        context.addIssue({ code: 'custom', path: ['keys', index, 'id'], message: 'duplicate id' });
      ids.add(key.id);
    });
    if (document.current !== undefined && !ids.has(document.current)) {
      context.addIssue({ code: 'custom', path: ['current'], message: `no key has id ${document.current}` });
    }
  });

export type KeyringResult = { ok: true; keyring: RoutingKeyring } | { ok: false; error: string };

export function parseKeyringDocument(input: unknown): KeyringResult {
  const result = KeyringDocumentSchema.safeParse(input);
  if (!result.success) return { ok: false, error: formatIssues(result.error) };
  return { ok: true, keyring: new RoutingKeyring(result.data.keys, result.data.current) };
}
