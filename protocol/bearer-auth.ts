// Bearer-token authentication (RFC 6750 §2.1) against a configured list, in constant time: both
// sides are hashed to 32 bytes first, so neither the length nor the content of a configured token
// shows in the timing, and every configured token is compared every time. Shared by signaling's
// WHIP routes and the transceiver's internal API (docs/transceiver-api.md).
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export type AuthResult = 'ok' | 'missing' | 'invalid';

export type Authenticator = (authorization: string | undefined) => AuthResult;

/** A bearer token as it may appear in an Authorization header: token68 (RFC 6750 §2.1). */
export const BearerTokenSchema = z
  .string()
  .min(1)
  .regex(
    /^[A-Za-z0-9\-._~+/]+=*$/,
    'a bearer token is token68 characters (RFC 6750): letters, digits, -._~+/ and trailing =',
  );

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** undefined when `tokens` is empty: authentication is off. */
export function createAuthenticator(tokens: readonly string[]): Authenticator | undefined {
  if (tokens.length === 0) return undefined;
  const expected = tokens.map(digest);
  return (authorization) => {
    if (authorization === undefined || authorization.trim() === '') return 'missing';
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) return 'invalid';
    const presented = digest(match[1]!);
    let found = false;
    for (const candidate of expected) found = timingSafeEqual(candidate, presented) || found;
    return found ? 'ok' : 'invalid';
  };
}

/** The header that presents `token`. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}
