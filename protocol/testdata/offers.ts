// SDP offers for tests, written by hand in the shape browsers produce (JSEP, RFC 8829 §5.2.1):
// session part, then one m= section per transceiver with ICE and DTLS attributes in each.

const FINGERPRINT =
  'sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08';

/** Chrome, `pc.addTransceiver('audio', { direction: 'sendrecv' })`, before ICE gathering. */
export const CHROME_AUDIO_OFFER = [
  'v=0',
  'o=- 4215775240449105457 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Xl7c',
  'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD',
  'a=ice-options:trickle',
  `a=fingerprint:${FINGERPRINT}`,
  'a=setup:actpass',
  'a=mid:0',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=sendrecv',
  'a=msid:- 6f2b1c9e-2d6a-4c59-9a43-0f1d3c0b7a21',
  'a=rtcp-mux',
  'a=rtcp-rsize',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=fmtp:63 111/111',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:13 CN/8000',
  'a=rtpmap:110 telephone-event/48000',
  'a=rtpmap:126 telephone-event/8000',
  'a=ssrc:3735928559 cname:p8bUjzX0rZbq1Vm6',
  'a=ssrc:3735928559 msid:- 6f2b1c9e-2d6a-4c59-9a43-0f1d3c0b7a21',
  '',
].join('\r\n');

/** Firefox puts the fingerprint and ice-options at session level. */
export const FIREFOX_AUDIO_OFFER = [
  'v=0',
  'o=mozilla...THIS_IS_SDPARTA-99.0 6154431476546431185 0 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  `a=fingerprint:${FINGERPRINT}`,
  'a=group:BUNDLE 0',
  'a=ice-options:trickle',
  'a=msid-semantic:WMS *',
  'm=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101',
  'c=IN IP4 0.0.0.0',
  'a=sendrecv',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1',
  'a=fmtp:101 0-15',
  'a=ice-pwd:4a5bd6a6f4c9e1a0b2c3d4e5f6a7b8c9',
  'a=ice-ufrag:5b1e7c2d',
  'a=mid:0',
  'a=msid:{8c1b0a39-5c43-4b2a-9f0e-2a1d6c3b4e5f} {1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b}',
  'a=rtcp-mux',
  'a=rtpmap:109 opus/48000/2',
  'a=rtpmap:9 G722/8000/1',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000/1',
  'a=setup:actpass',
  'a=ssrc:2581832418 cname:{7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f}',
  '',
].join('\r\n');

/** Audio, video and a data channel in one BUNDLE group (Chrome shape). */
export const CHROME_AUDIO_VIDEO_DATA_OFFER = [
  'v=0',
  'o=- 8034237532094412612 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1 2',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Xl7c',
  'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD',
  'a=ice-options:trickle',
  `a=fingerprint:${FINGERPRINT}`,
  'a=setup:actpass',
  'a=mid:0',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Xl7c',
  'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD',
  'a=ice-options:trickle',
  `a=fingerprint:${FINGERPRINT}`,
  'a=setup:actpass',
  'a=mid:1',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtcp-rsize',
  'a=rtpmap:96 VP8/90000',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:Xl7c',
  'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD',
  'a=ice-options:trickle',
  `a=fingerprint:${FINGERPRINT}`,
  'a=setup:actpass',
  'a=mid:2',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  '',
].join('\r\n');

/** The offer with every line for which `drop` is true removed. */
export function withoutLines(offer: string, drop: (line: string) => boolean): string {
  return offer
    .split('\r\n')
    .filter((line) => line === '' || !drop(line))
    .join('\r\n');
}

/** The offer with `from` replaced by `to` (every occurrence; `from` must occur). */
export function replaced(offer: string, from: string | RegExp, to: string): string {
  const pattern =
    typeof from === 'string' ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : from;
  if (!pattern.test(offer)) throw new Error(`test bug: ${String(from)} is not in the offer`);
  return offer.replace(
    new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`),
    to,
  );
}

/**
 * An offer of `count` audio sections in one BUNDLE group, with ICE and DTLS attributes at session
 * level (valid SDP, ~83 bytes a section: what the 64 KiB body limit alone let through, ~700).
 */
export function manyAudioSectionsOffer(count: number): string {
  const mids = Array.from({ length: count }, (_, index) => index);
  return [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mids.join(' ')}`,
    'a=ice-ufrag:Xl7c',
    'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD',
    `a=fingerprint:${FINGERPRINT}`,
    'a=setup:actpass',
    ...mids.flatMap((mid) => [
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      `a=mid:${mid}`,
      'a=rtcp-mux',
      'a=rtpmap:111 opus/48000/2',
    ]),
    '',
  ].join('\r\n');
}
