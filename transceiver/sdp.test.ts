import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHROME_AUDIO_OFFER, FIREFOX_AUDIO_OFFER } from '../protocol/testdata/offers.ts';
import {
  answerOpusParameters,
  iceUfragOf,
  opusMaxPlaybackRate,
  opusParameter,
  rewriteAnswer,
  setOpusParameters,
  stripCandidates,
} from './sdp.ts';

/** The answer's rate parameters alone (what limits a caller's bandwidth). */
function limitOpusRate(sdp: string, rateHz: number): string {
  const { usedtx: _, ...rate } = answerOpusParameters(rateHz, false);
  return setOpusParameters(sdp, rate);
}

const answer = [
  'v=0',
  'o=- 1 1 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd',
  'a=ice-lite',
  'a=candidate:x 1 udp 2130706431 10.1.2.3 50000 typ host',
  'a=end-of-candidates',
  'a=rtcp-mux',
].join('\r\n');

test('the answer advertises only the relays, with a session-level ice-lite', () => {
  const out = rewriteAnswer(answer, [
    { family: 4, address: '203.0.113.7', port: 3478 },
    { family: 6, address: '2001:db8::7', port: 3478 },
  ]);
  const lines = out.trim().split('\r\n');
  assert.equal(lines.indexOf('a=ice-lite'), lines.indexOf('m=audio 9 UDP/TLS/RTP/SAVPF 111') - 1);
  assert.equal(lines.filter((l) => l === 'a=ice-lite').length, 1);
  assert.deepEqual(
    lines.filter((l) => l.startsWith('a=candidate')),
    [
      'a=candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host',
      'a=candidate:2 1 udp 2130706430 2001:db8::7 3478 typ host',
    ],
  );
  assert.ok(!out.includes('10.1.2.3'), 'no internal address leaks');
  assert.equal(lines.at(-1), 'a=end-of-candidates');
  assert.ok(out.endsWith('\r\n'));
  assert.throws(() => rewriteAnswer(answer, []), /at least one relay/);
});

test('offer candidates are stripped; the ufrag is read', () => {
  const offer = `${answer}\r\na=candidate:y 1 udp 1 abc.local 9 typ host\r\n`;
  const stripped = stripCandidates(offer);
  assert.ok(!stripped.includes('a=candidate'));
  assert.ok(!stripped.includes('end-of-candidates'));
  assert.equal(iceUfragOf(stripped), 'abcd');
});

test('ICE-TCP relays are passive host candidates, below every UDP candidate (RFC 6544)', () => {
  const out = rewriteAnswer(answer, [
    { family: 4, address: '203.0.113.7', port: 3478 },
    { family: 4, address: '203.0.113.7', port: 443, transport: 'tcp' },
  ]);
  const candidates = out.split('\r\n').filter((l) => l.startsWith('a=candidate'));
  assert.deepEqual(candidates, [
    'a=candidate:1 1 udp 2130706431 203.0.113.7 3478 typ host',
    'a=candidate:2 1 tcp 2122317823 203.0.113.7 443 typ host tcptype passive',
  ]);
  // 126 << 24 | (4 << 13) − 1 << 8 | 255: host, passive, second in line, component 1.
  assert.equal(2122317823, 126 * 2 ** 24 + ((4 << 13) - 1) * 2 ** 8 + 255);
});

test('the Opus rate limit replaces echoed rate parameters and keeps the others (RFC 7587 §6.1)', () => {
  // Firefox offers maxplaybackrate=48000;stereo=1;useinbandfec=1 on payload type 109.
  const firefox = limitOpusRate(FIREFOX_AUDIO_OFFER, 16_000);
  assert.deepEqual(
    firefox.split('\r\n').filter((l) => l.startsWith('a=fmtp:109')),
    ['a=fmtp:109 stereo=1;useinbandfec=1;maxplaybackrate=16000;sprop-maxcapturerate=16000'],
  );
  assert.equal(opusMaxPlaybackRate(firefox), 16_000);
  assert.equal(opusMaxPlaybackRate(FIREFOX_AUDIO_OFFER), 48_000);
  // Other formats' parameters are not touched.
  const chrome = limitOpusRate(CHROME_AUDIO_OFFER, 8_000);
  const otherFmtp = (sdp: string) =>
    sdp.split('\r\n').filter((l) => l.startsWith('a=fmtp:') && !l.startsWith('a=fmtp:111 '));
  assert.deepEqual(otherFmtp(chrome), otherFmtp(CHROME_AUDIO_OFFER));
  assert.match(
    chrome,
    /\r\na=fmtp:111 minptime=10;useinbandfec=1;maxplaybackrate=8000;sprop-maxcapturerate=8000\r\n/,
  );
  assert.equal(opusMaxPlaybackRate(chrome), 8_000);
  // At Opus's own rate nothing is said.
  assert.equal(limitOpusRate(CHROME_AUDIO_OFFER, 48_000), CHROME_AUDIO_OFFER);
});

test('with callerDtx the answer asks the client for DTX (usedtx=1), replacing what the offer said', () => {
  assert.deepEqual(answerOpusParameters(16_000, true), {
    maxplaybackrate: '16000',
    'sprop-maxcapturerate': '16000',
    usedtx: '1',
  });
  assert.deepEqual(answerOpusParameters(48_000, true), { usedtx: '1' });
  const chrome = setOpusParameters(CHROME_AUDIO_OFFER, answerOpusParameters(48_000, true));
  assert.match(chrome, /\r\na=fmtp:111 minptime=10;useinbandfec=1;usedtx=1\r\n/);
  assert.equal(opusParameter(chrome, 'usedtx'), '1');
  assert.equal(opusParameter(CHROME_AUDIO_OFFER, 'usedtx'), undefined);
  // Without callerDtx the answer says usedtx=0, so an offer's usedtx=1 (which werift's answer would
  // echo) does not ask the caller for DTX after all.
  const offeredDtx = setOpusParameters(CHROME_AUDIO_OFFER, { usedtx: '1' });
  const off = setOpusParameters(offeredDtx, answerOpusParameters(48_000, false));
  assert.equal(opusParameter(off, 'usedtx'), '0');
  assert.equal(
    setOpusParameters(offeredDtx, answerOpusParameters(48_000, true)),
    chrome,
    'replaced, not repeated',
  );
});

test('an Opus format without parameters gets an fmtp line after its rtpmap', () => {
  const sdp = `${answer}\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n`;
  const lines = limitOpusRate(sdp, 24_000).trim().split('\r\n');
  assert.equal(
    lines[lines.indexOf('a=rtpmap:111 opus/48000/2') + 1],
    'a=fmtp:111 maxplaybackrate=24000;sprop-maxcapturerate=24000',
  );
  assert.equal(opusMaxPlaybackRate(lines.join('\r\n')), 24_000);
  assert.equal(opusMaxPlaybackRate(answer), 48_000, 'no Opus format: the default');
});
