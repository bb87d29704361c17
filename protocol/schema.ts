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

/** Every issue as `path: message` (`(root)` for the value itself), joined with `; `. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
