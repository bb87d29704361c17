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

const RATE_PARAMETERS = new Set(['maxplaybackrate', 'sprop-maxcapturerate']);
/** `a=fmtp:<payload type> <parameters>`. */
const FMTP_LINE = /^a=fmtp:(\d+) ?(.*)$/;

/**
 * Tells the client that this side plays and captures Opus at `rateHz` at most (RFC 7587 §6.1:
 * `maxplaybackrate`, `sprop-maxcapturerate` on every Opus format), when that is below Opus's
 * 48 kHz. The backend hears audio at its own rate, so wider audio would be decoded only to be
 * thrown away: a browser told 16 kHz encodes wideband SILK instead of fullband hybrid, which costs
 * less to decode here (about a third less) and spends the bitrate on what the backend hears.
 * werift's answer echoes the offer's parameters; those two are replaced, the others kept.
 */
export function limitOpusRate(sdp: string, rateHz: number): string {
  if (rateHz >= 48_000) return sdp;
  const input = lines(sdp);
  const opus = opusPayloadTypes(input);
  const limit = [`maxplaybackrate=${rateHz}`, `sprop-maxcapturerate=${rateHz}`];
  const withFmtp = new Set<string>();
  const out: string[] = [];
  for (const line of input) {
    const fmtp = FMTP_LINE.exec(line);
    if (fmtp !== null && opus.has(fmtp[1]!)) {
      withFmtp.add(fmtp[1]!);
      const kept = fmtp[2]!
        .split(';')
        .map((parameter) => parameter.trim())
        .filter(
          (parameter) => parameter !== '' && !RATE_PARAMETERS.has(parameter.split('=')[0]!.toLowerCase()),
        );
      out.push(`a=fmtp:${fmtp[1]} ${[...kept, ...limit].join(';')}`);
      continue;
    }
    out.push(line);
  }
  // An Opus format without parameters gets a line of its own after its rtpmap.
  for (const type of opus) {
    if (withFmtp.has(type)) continue;
    const at = out.findIndex((line) => new RegExp(`^a=rtpmap:${type} `).test(line));
    out.splice(at + 1, 0, `a=fmtp:${type} ${limit.join(';')}`);
  }
  return join(out);
}

/**
 * The highest Opus rate `sdp` says its author plays (`maxplaybackrate` of its first Opus format;
 * 48000 when it says nothing): what a sender should encode at most.
 */
export function opusMaxPlaybackRate(sdp: string): number {
  const input = lines(sdp);
  const opus = opusPayloadTypes(input);
  for (const line of input) {
    const fmtp = FMTP_LINE.exec(line);
    if (fmtp === null || !opus.has(fmtp[1]!)) continue;
    for (const parameter of fmtp[2]!.split(';')) {
      const [key, value] = parameter.trim().split('=');
      if (key?.toLowerCase() === 'maxplaybackrate' && value !== undefined && /^\d+$/.test(value))
        return Math.min(48_000, Number(value));
    }
    return 48_000;
  }
  return 48_000;
}
