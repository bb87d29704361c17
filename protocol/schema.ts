// Schema pieces every config and wire format shares: a transport address as text, and one way to
// turn a zod error into a line that names each offending field.
import { z } from 'zod';
import { parseTransportAddress, type TransportAddress } from './address.ts';

/** `ip:port` or `[ipv6]:port` with a real port (1–65535): something packets can be sent to or bound. */
export const TransportAddressSchema = z.string().transform((text, context): TransportAddress => {
  try {
    const address = parseTransportAddress(text);
    if (address.port === 0) throw new RangeError(`"${text}" has port 0`);
    return address;
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/**
 * A text message's JSON, when it is an object (what every JSON wire message is): the error names what
 * it is instead, for a `bad-message`.
 */
export function parseJsonObject(
  text: string,
): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return { ok: false, error: `not JSON: ${(cause as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, error: 'not a JSON object' };
  return { ok: true, value: value as Record<string, unknown> };
}

/** Every issue as `path: message` (`(root)` for the value itself), joined with `; `. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
