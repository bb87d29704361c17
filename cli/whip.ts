// The WHIP client side of `npm run call` (RFC 9725): POST the offer, DELETE the session. Every
// failure becomes a WhipError with one line a person can act on.

export class WhipError extends Error {
  /** HTTP status, when the endpoint answered at all. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'WhipError';
    this.status = status;
  }
}

export interface WhipSession {
  readonly answer: string;
  /** The session URL (Location, resolved against the endpoint). */
  readonly location: URL;
}

function headers(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return token === undefined ? extra : { ...extra, authorization: `Bearer ${token}` };
}

/** "connect ECONNREFUSED 127.0.0.1:8080" from undici's "fetch failed" and its cause. */
export function describeFetchError(error: unknown): string {
  const err = error as Error & { cause?: Error & { code?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'no answer in time';
  const cause = err.cause;
  if (cause !== undefined) {
    // fetch refuses some ports outright (the Fetch standard's "bad ports": 1, 9, 6000…).
    if (cause.message === 'bad port') return 'fetch refuses this port (a "bad port" of the Fetch standard)';
    // An AggregateError (several addresses tried) has an empty message; its errors have the detail.
    const inner = (cause as unknown as { errors?: Error[] }).errors?.[0] ?? cause;
    return inner.message || (cause as { code?: string }).code || err.message;
  }
  return err.message;
}

/** One line from an error answer: status, problem code and detail (RFC 9457) or the text. */
export async function describeErrorResponse(response: Response): Promise<string> {
  const type = response.headers.get('content-type') ?? '';
  const body = await response.text().catch(() => '');
  let text = `${response.status} ${response.statusText}`.trim();
  if (/json/i.test(type)) {
    try {
      const problem = JSON.parse(body) as { code?: unknown; title?: unknown; detail?: unknown };
      const name = typeof problem.code === 'string' ? problem.code : problem.title;
      if (typeof name === 'string') text = `${response.status} ${name}`;
      if (typeof problem.detail === 'string' && problem.detail !== '') text += `: ${problem.detail}`;
    } catch {
      // not JSON after all: the status is all there is
    }
  } else if (body.trim() !== '' && body.length <= 200) {
    text += `: ${body.trim().replace(/\s+/g, ' ')}`;
  }
  const retryAfter = response.headers.get('retry-after');
  if (retryAfter !== null) text += ` (retry after ${retryAfter} s)`;
  if (response.status === 401) text += ' (pass --token)';
  return text;
}

export async function whipOffer(
  url: URL,
  offer: string,
  token: string | undefined,
  signal: AbortSignal,
  /** More request headers (e.g. the caller's region). */
  extra: Record<string, string> = {},
): Promise<WhipSession> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: headers(token, { ...extra, 'content-type': 'application/sdp' }),
      body: offer,
      signal,
    });
  } catch (error) {
    throw new WhipError(`cannot reach the WHIP endpoint ${url.href}: ${describeFetchError(error)}`);
  }
  if (response.status !== 201) {
    throw new WhipError(
      `the WHIP endpoint ${url.href} refused the offer: ${await describeErrorResponse(response)}`,
      response.status,
    );
  }
  const location = response.headers.get('location');
  const answer = await response.text();
  if (location === null) throw new WhipError(`the WHIP endpoint ${url.href} answered 201 without a Location`);
  if (!/^v=0/.test(answer))
    throw new WhipError(`the WHIP endpoint ${url.href} answered 201 without an SDP answer`);
  return { answer, location: new URL(location, url) };
}

/** Ends the session; resolves to a problem description, or undefined when it went well. */
export async function whipDelete(
  location: URL,
  token: string | undefined,
  timeoutMs: number,
): Promise<string | undefined> {
  try {
    const response = await fetch(location, {
      method: 'DELETE',
      headers: headers(token),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.ok) {
      await response.body?.cancel();
      return undefined;
    }
    return `DELETE ${location.href} answered ${await describeErrorResponse(response)}`;
  } catch (error) {
    return `DELETE ${location.href} failed: ${describeFetchError(error)}`;
  }
}
