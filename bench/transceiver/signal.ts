// The two ways a benchmark caller gets its offer answered, with the same caller on both.
import type { Signal } from './caller.ts';

async function post(url: string, offer: string, what: string): Promise<{ answer: string; location: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: offer,
  });
  const body = await response.text();
  if (response.status !== 201) throw new Error(`${what} answered ${response.status}: ${body.slice(0, 300)}`);
  const location = response.headers.get('location');
  if (location === null) throw new Error(`${what} answered without a Location`);
  return { answer: body, location: new URL(location, url).toString() };
}

async function remove(url: string): Promise<void> {
  const response = await fetch(url, { method: 'DELETE' });
  await response.arrayBuffer();
}

/**
 * The transceiver's session ID in a WHIP session URL (`…/whip/sessions/[<cluster>-]<transceiver>.<id>`,
 * signaling/resource-id.ts): what the benchmark agent receives in `start`, so both ends of a call
 * derive the same conversation from it (conversation.ts).
 */
export function sessionIdOf(location: string): string | undefined {
  const segment = new URL(location).pathname.split('/').pop() ?? '';
  const dot = segment.indexOf('.');
  return dot === -1 ? undefined : decodeURIComponent(segment.slice(dot + 1));
}

/** WHIP (RFC 9725) through the edge's signaling service; hang-up is the WHIP DELETE. */
export function whipSignal(whipUrl: string): Signal {
  return async (offer) => {
    const { answer, location } = await post(whipUrl, offer, 'WHIP POST');
    return { answer, hangUp: () => remove(location), sessionId: sessionIdOf(location) };
  };
}

/** The direct endpoint (direct-endpoint.ts): POST /calls, DELETE /calls/<id>. */
export function directSignal(baseUrl: string): Signal {
  return async (offer) => {
    const { answer, location } = await post(`${baseUrl}/calls`, offer, 'direct endpoint');
    return { answer, hangUp: () => remove(location) };
  };
}
