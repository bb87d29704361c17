// SDP edits around werift (docs/transceiver.md), line-based and pure.
import type { TransportAddress } from '../protocol/address.ts';

function lines(sdp: string): string[] {
  return sdp.split(/\r?\n/).filter((line) => line !== '');
}

function join(sdpLines: string[]): string {
  return `${sdpLines.join('\r\n')}\r\n`;
}

/**
 * Drops the offer's candidates. An ICE-lite server learns client addresses from the checks it
 * receives (peer-reflexive), and werift would otherwise resolve `.local` candidates over mDNS and
 * refuse to nominate a pair whose SDP candidate predates an ICE restart (generation mismatch).
 */
export function stripCandidates(offer: string): string {
  return join(
    lines(offer).filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates'),
  );
}

/**
 * Candidate lines naming the relays, in order: UDP ones (priority 2130706431 − index: host type
 * preference 126, local preference 65535 − index), then ICE-TCP ones as passive host candidates
 * (RFC 6544 §4.5), whose local preference 2^13 × 4 (passive) − index keeps them below every UDP
 * candidate: a client uses TCP only when UDP fails.
 */
export function relayCandidateLines(relays: readonly TransportAddress[]): string[] {
  return relays.map((relay, index) => {
    if (relay.transport !== 'tcp') {
      const priority = 2130706431 - index;
      return `a=candidate:${index + 1} 1 udp ${priority} ${relay.address} ${relay.port} typ host`;
    }
    const localPreference = (1 << 13) * 4 - index;
    const priority = 126 * 2 ** 24 + localPreference * 2 ** 8 + 255;
    return `a=candidate:${index + 1} 1 tcp ${priority} ${relay.address} ${relay.port} typ host tcptype passive`;
  });
}

/**
 * The answer as sent to the client: the relays are its only candidates, and `a=ice-lite` is at
 * session level, where browsers read it (werift writes it inside media sections only).
 */
export function rewriteAnswer(answer: string, relays: readonly TransportAddress[]): string {
  if (relays.length === 0) throw new RangeError('an answer needs at least one relay address');
  const out: string[] = [];
  const candidates = relayCandidateLines(relays);
  let inMedia = false;
  let sessionLiteWritten = false;
  const closeMedia = () => {
    if (inMedia) out.push(...candidates, 'a=end-of-candidates');
  };
  for (const line of lines(answer)) {
    if (line.startsWith('a=candidate:') || line === 'a=end-of-candidates' || line === 'a=ice-lite') continue;
    if (line.startsWith('m=')) {
      closeMedia();
      if (!sessionLiteWritten) {
        out.push('a=ice-lite');
        sessionLiteWritten = true;
      }
      inMedia = true;
    }
    out.push(line);
  }
  closeMedia();
  return join(out);
}

/** The first `a=ice-ufrag` value (session or media level). */
export function iceUfragOf(sdp: string): string | undefined {
  for (const line of lines(sdp))
    if (line.startsWith('a=ice-ufrag:')) return line.slice('a=ice-ufrag:'.length).trim();
  return undefined;
}

/** The first `a=ice-ufrag` and `a=ice-pwd` (session or media level: a bundled offer has one pair). */
export function iceCredentialsOf(sdp: string): { ufrag: string; password: string } | undefined {
  let ufrag: string | undefined;
  let password: string | undefined;
  for (const line of lines(sdp)) {
    if (ufrag === undefined && line.startsWith('a=ice-ufrag:'))
      ufrag = line.slice('a=ice-ufrag:'.length).trim();
    if (password === undefined && line.startsWith('a=ice-pwd:'))
      password = line.slice('a=ice-pwd:'.length).trim();
  }
  return ufrag === undefined || password === undefined ? undefined : { ufrag, password };
}

/** The RTP payload types of Opus in `sdp` (`a=rtpmap:<pt> opus/48000…`, any case). */
function opusPayloadTypes(sdpLines: readonly string[]): Set<string> {
  const types = new Set<string>();
  for (const line of sdpLines) {
    const match = /^a=rtpmap:(\d+) opus\/48000/i.exec(line);
    if (match !== null) types.add(match[1]!);
  }
  return types;
}

/** `a=fmtp:<payload type> <parameters>`. */
const FMTP_LINE = /^a=fmtp:(\d+) ?(.*)$/;

/**
 * The Opus parameters (RFC 7587 §6.1) an answer states for a backend hearing `rateHz`:
 * - below Opus's 48 kHz, `maxplaybackrate` and `sprop-maxcapturerate`: this side plays and captures
 *   no wider. The backend hears audio at its own rate, so wider audio would be decoded only to be
 *   thrown away: a browser told 16 kHz encodes wideband SILK instead of fullband hybrid, which costs
 *   less to decode here (about a third less) and spends the bitrate on what the backend hears;
 * - with `callerDtx`, `usedtx=1`: the client may stop sending while its user is silent (a packet
 *   every 400 ms instead of 50 a second), which spares the relay and the transceiver half of a
 *   conversation's packets; the backend still gets every frame (audio/arrival-order.ts). Without
 *   it, `usedtx=0`.
 */
export function answerOpusParameters(rateHz: number, callerDtx: boolean): Record<string, string> {
  const parameters: Record<string, string> = {};
  if (rateHz < 48_000) {
    parameters.maxplaybackrate = String(rateHz);
    parameters['sprop-maxcapturerate'] = String(rateHz);
  }
  // Said either way: werift's answer would echo an offer's usedtx=1, which asks this side's sender.
  parameters.usedtx = callerDtx ? '1' : '0';
  return parameters;
}

/**
 * Sets `parameters` on every Opus format of `sdp`: werift's answer echoes the offer's parameters;
 * those named are replaced, the others kept. An Opus format without an fmtp line gets one after
 * its rtpmap.
 */
export function setOpusParameters(sdp: string, parameters: Readonly<Record<string, string>>): string {
  const names = new Set(Object.keys(parameters));
  if (names.size === 0) return sdp;
  const input = lines(sdp);
  const opus = opusPayloadTypes(input);
  const set = Object.entries(parameters).map(([name, value]) => `${name}=${value}`);
  const withFmtp = new Set<string>();
  const out: string[] = [];
  for (const line of input) {
    const fmtp = FMTP_LINE.exec(line);
    if (fmtp !== null && opus.has(fmtp[1]!)) {
      withFmtp.add(fmtp[1]!);
      const kept = fmtp[2]!
        .split(';')
        .map((parameter) => parameter.trim())
        .filter((parameter) => parameter !== '' && !names.has(parameter.split('=')[0]!.toLowerCase()));
      out.push(`a=fmtp:${fmtp[1]} ${[...kept, ...set].join(';')}`);
      continue;
    }
    out.push(line);
  }
  for (const type of opus) {
    if (withFmtp.has(type)) continue;
    const at = out.findIndex((line) => new RegExp(`^a=rtpmap:${type} `).test(line));
    out.splice(at + 1, 0, `a=fmtp:${type} ${set.join(';')}`);
  }
  return join(out);
}

/** The value of Opus parameter `name` in the first Opus format of `sdp`, if it states one. */
export function opusParameter(sdp: string, name: string): string | undefined {
  const input = lines(sdp);
  const opus = opusPayloadTypes(input);
  for (const line of input) {
    const fmtp = FMTP_LINE.exec(line);
    if (fmtp === null || !opus.has(fmtp[1]!)) continue;
    for (const parameter of fmtp[2]!.split(';')) {
      const [key, value] = parameter.trim().split('=');
      if (key?.toLowerCase() === name) return value;
    }
    return undefined;
  }
  return undefined;
}

/**
 * The highest Opus rate `sdp` says its author plays (`maxplaybackrate`; 48000 when it says
 * nothing): what a sender should encode at most.
 */
export function opusMaxPlaybackRate(sdp: string): number {
  const value = opusParameter(sdp, 'maxplaybackrate');
  return value !== undefined && /^\d+$/.test(value) ? Math.min(48_000, Number(value)) : 48_000;
}
