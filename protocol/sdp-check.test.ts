import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkOffer,
  DEFAULT_OFFER_SHAPE_LIMITS,
  parseSdp,
  parseSdpLines,
  parseTrickleFragment,
} from './sdp-check.ts';
import {
  CHROME_AUDIO_OFFER,
  CHROME_AUDIO_VIDEO_DATA_OFFER,
  FIREFOX_AUDIO_OFFER,
  manyAudioSectionsOffer,
  replaced,
  withoutLines,
} from './testdata/offers.ts';

function refused(offer: string, pattern: RegExp, options?: { maxBytes?: number }): void {
  const result = checkOffer(offer, options);
  assert.equal(result.ok, false, `expected a refusal matching ${pattern}`);
  if (!result.ok) assert.match(result.detail, pattern);
}

describe('checkOffer: offers browsers send', () => {
  test('Chrome audio-only', () => {
    const result = checkOffer(CHROME_AUDIO_OFFER);
    assert.deepEqual(result, { ok: true, summary: { mediaSections: 1, audioSections: 1, bundle: ['0'] } });
  });

  test('Firefox: fingerprint at session level', () => {
    assert.equal(checkOffer(FIREFOX_AUDIO_OFFER).ok, true);
  });

  test('audio, video and a data channel in one BUNDLE group (no rtcp-mux needed on SCTP)', () => {
    const result = checkOffer(CHROME_AUDIO_VIDEO_DATA_OFFER);
    assert.deepEqual(result, {
      ok: true,
      summary: { mediaSections: 3, audioSections: 1, bundle: ['0', '1', '2'] },
    });
  });

  test('LF line endings and a missing final newline are accepted', () => {
    assert.equal(checkOffer(CHROME_AUDIO_OFFER.replaceAll('\r\n', '\n')).ok, true);
    assert.equal(checkOffer(CHROME_AUDIO_OFFER.trimEnd()).ok, true);
  });

  test('a bundle-only section (port 0, a=bundle-only) shares the tagged transport', () => {
    const bundleOnlyVideo = CHROME_AUDIO_VIDEO_DATA_OFFER.replace('m=video 9', 'm=video 0').replace(
      /(m=video[\s\S]*?)a=ice-ufrag:Xl7c\r\na=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD\r\n/,
      '$1a=bundle-only\r\n',
    );
    assert.match(bundleOnlyVideo, /a=bundle-only/);
    assert.equal(checkOffer(bundleOnlyVideo).ok, true);
  });
});

describe('checkOffer: refusals name the missing piece', () => {
  test('not SDP at all', () => {
    refused('{"sdp":"v=0"}', /line 1 is not <letter>=<value>/);
    refused('', /empty/);
    refused('   \r\n', /empty|line 1/);
    refused(CHROME_AUDIO_OFFER.replace('v=0', 'o=x'), /starts with "v=0"/);
  });

  test('too large (bytes, not characters)', () => {
    refused(`${CHROME_AUDIO_OFFER}a=x:${'é'.repeat(600)}\r\n`, /bytes; the limit is 2048/, {
      maxBytes: 2048,
    });
  });

  test('a control character', () => {
    refused(CHROME_AUDIO_OFFER.replace('s=-', 's=-\u0000'), /control character \(U\+0000\)/);
  });

  test('no audio', () => {
    const videoOnly = replaced(
      CHROME_AUDIO_OFFER,
      'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
      'm=video 9 UDP/TLS/RTP/SAVPF 96',
    );
    refused(videoOnly, /no m=audio section/);
  });

  test('audio rejected with port 0 does not count', () => {
    refused(replaced(CHROME_AUDIO_OFFER, 'm=audio 9 ', 'm=audio 0 '), /no m=audio section/);
  });

  test('audio without DTLS-SRTP', () => {
    refused(replaced(CHROME_AUDIO_OFFER, 'UDP/TLS/RTP/SAVPF', 'RTP/AVP'), /uses RTP\/AVP, not DTLS-SRTP/);
  });

  test('a malformed m= line', () => {
    refused(replaced(CHROME_AUDIO_OFFER, /m=audio [^\r]*/, 'm=audio nine'), /line 8: malformed m= line/);
  });

  test('no BUNDLE group', () => {
    refused(
      withoutLines(CHROME_AUDIO_OFFER, (line) => line.startsWith('a=group:')),
      /no a=group:BUNDLE/,
    );
    refused(replaced(CHROME_AUDIO_OFFER, 'a=group:BUNDLE 0', 'a=group:LS 0'), /no a=group:BUNDLE/);
  });

  test('an empty BUNDLE group, or one naming a mid nobody has', () => {
    refused(replaced(CHROME_AUDIO_OFFER, 'a=group:BUNDLE 0', 'a=group:BUNDLE'), /lists no mid/);
    refused(
      replaced(CHROME_AUDIO_OFFER, 'a=group:BUNDLE 0', 'a=group:BUNDLE 0 7'),
      /mid "7", which no m= section has/,
    );
  });

  test('audio outside the BUNDLE group', () => {
    const offer = replaced(CHROME_AUDIO_VIDEO_DATA_OFFER, 'a=group:BUNDLE 0 1 2', 'a=group:BUNDLE 1 2');
    refused(offer, /no m=audio section is in the BUNDLE group/);
  });

  test('no rtcp-mux', () => {
    refused(
      withoutLines(CHROME_AUDIO_OFFER, (line) => line === 'a=rtcp-mux'),
      /m=audio \(line 8\) has no a=rtcp-mux/,
    );
    const videoWithout = CHROME_AUDIO_VIDEO_DATA_OFFER.replace(/(m=video[\s\S]*?)a=rtcp-mux\r\n/, '$1');
    refused(videoWithout, /m=video \(line 21\) has no a=rtcp-mux/);
  });

  test('no DTLS fingerprint, or a malformed one', () => {
    refused(
      withoutLines(CHROME_AUDIO_OFFER, (line) => line.startsWith('a=fingerprint:')),
      /has no a=fingerprint/,
    );
    refused(
      withoutLines(FIREFOX_AUDIO_OFFER, (line) => line.startsWith('a=fingerprint:')),
      /has no a=fingerprint/,
    );
    refused(
      replaced(CHROME_AUDIO_OFFER, /a=fingerprint:sha-256 [^\r]*/, 'a=fingerprint:sha-256 nothex'),
      /not a valid DTLS fingerprint/,
    );
    refused(
      replaced(FIREFOX_AUDIO_OFFER, /a=fingerprint:sha-256 [^\r]*/, 'a=fingerprint:sha-256'),
      /session-level a=fingerprint is not a valid/,
    );
  });

  test('a fingerprint missing from one of several sections', () => {
    const offer = CHROME_AUDIO_VIDEO_DATA_OFFER.replace(
      /(m=application[\s\S]*?)a=fingerprint:[^\r]*\r\n/,
      '$1',
    );
    refused(offer, /m=application \(line \d+\) has no a=fingerprint/);
  });

  test('no ICE credentials, or invalid ones', () => {
    refused(
      withoutLines(CHROME_AUDIO_OFFER, (line) => line.startsWith('a=ice-ufrag:')),
      /has no a=ice-ufrag/,
    );
    refused(
      withoutLines(CHROME_AUDIO_OFFER, (line) => line.startsWith('a=ice-pwd:')),
      /has no a=ice-pwd/,
    );
    refused(replaced(CHROME_AUDIO_OFFER, 'a=ice-ufrag:Xl7c', 'a=ice-ufrag:Xl7'), /not a valid ICE ufrag/);
    refused(
      replaced(CHROME_AUDIO_OFFER, 'a=ice-pwd:g9yN5o8KoX0m2z3Pzu2Qm0yD', 'a=ice-pwd:short'),
      /not a valid ICE password/,
    );
    refused(replaced(CHROME_AUDIO_OFFER, 'a=ice-ufrag:Xl7c', 'a=ice-ufrag:Xl 7c'), /not a valid ICE ufrag/);
  });
});

describe('parseSdp', () => {
  test('session attributes, media sections and their attributes', () => {
    const parsed = parseSdp(CHROME_AUDIO_VIDEO_DATA_OFFER);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.session.get('group'), ['BUNDLE 0 1 2']);
    assert.deepEqual(
      parsed.value.media.map((section) => [section.media, section.port, section.proto]),
      [
        ['audio', 9, 'UDP/TLS/RTP/SAVPF'],
        ['video', 9, 'UDP/TLS/RTP/SAVPF'],
        ['application', 9, 'UDP/DTLS/SCTP'],
      ],
    );
    assert.deepEqual(parsed.value.media[1]?.attributes.get('rtpmap'), ['96 VP8/90000', '97 rtx/90000']);
    assert.deepEqual(parsed.value.media[0]?.attributes.get('rtcp-mux'), ['']);
  });

  test('line numbers in errors', () => {
    assert.deepEqual(parseSdpLines('v=0\r\nbad line\r\n'), {
      ok: false,
      detail: 'line 2 is not <letter>=<value>: "bad line"',
    });
  });
});

describe('parseTrickleFragment', () => {
  test('a trickle fragment (RFC 9725 example shape)', () => {
    const fragment = [
      'a=group:BUNDLE 0',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111',
      'a=mid:0',
      'a=ice-ufrag:EsAw',
      'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1',
      'a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1',
      'a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2',
      'a=end-of-candidates',
      '',
    ].join('\r\n');
    assert.deepEqual(parseTrickleFragment(fragment), {
      ok: true,
      value: { iceUfrag: 'EsAw', icePwd: 'P2uYro0UCOQ4zxjKXaWCBui1', candidates: 2, endOfCandidates: true },
    });
  });

  test('refusals', () => {
    assert.equal(parseTrickleFragment('v=0\r\na=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n').ok, false);
    assert.equal(parseTrickleFragment('not a fragment').ok, false);
    assert.equal(parseTrickleFragment('a=ice-ufrag:x\r\n').ok, false);
    assert.equal(parseTrickleFragment('a=ice-pwd:short\r\n').ok, false);
    assert.equal(parseTrickleFragment(`a=candidate:${'1'.repeat(100)}`, { maxBytes: 50 }).ok, false);
  });

  test('an empty fragment is valid (nothing to add)', () => {
    assert.deepEqual(parseTrickleFragment(''), {
      ok: true,
      value: { iceUfrag: undefined, icePwd: undefined, candidates: 0, endOfCandidates: false },
    });
  });
});

describe('checkOffer: shape limits (offer-too-complex)', () => {
  const tooComplex = (offer: string, pattern: RegExp, shape?: Parameters<typeof checkOffer>[1]) => {
    const result = checkOffer(offer, shape);
    assert.equal(result.ok, false, `expected a refusal matching ${pattern}`);
    if (!result.ok) {
      assert.equal(result.problem, 'offer-too-complex');
      assert.match(result.detail, pattern);
    }
  };

  test('the offers real clients send pass with a wide margin', () => {
    for (const offer of [CHROME_AUDIO_OFFER, FIREFOX_AUDIO_OFFER, CHROME_AUDIO_VIDEO_DATA_OFFER])
      assert.equal(checkOffer(offer).ok, true);
    assert.equal(checkOffer(manyAudioSectionsOffer(DEFAULT_OFFER_SHAPE_LIMITS.maxMediaSections)).ok, true);
  });

  test('the ~700-section offer that fits in 64 KiB is refused, and fast', () => {
    const offer = manyAudioSectionsOffer(700);
    assert.ok(Buffer.byteLength(offer) < 64 * 1024, 'it fits the byte limit');
    const began = performance.now();
    for (let i = 0; i < 100; i++) tooComplex(offer, /lines; the limit is 1000/);
    const perOffer = (performance.now() - began) / 100;
    assert.ok(perOffer < 5, `a refusal costs ${perOffer.toFixed(2)} ms`);
  });

  test('one section more than the limit', () => {
    tooComplex(manyAudioSectionsOffer(9), /more than 8 mids|more than 8 m= sections/);
    // Sections left out of BUNDLE still count: werift answers them all.
    const unbundled = manyAudioSectionsOffer(9).replace(/a=group:BUNDLE [0-9 ]+/, 'a=group:BUNDLE 0');
    tooComplex(unbundled, /more than 8 m= sections/);
    assert.equal(checkOffer(manyAudioSectionsOffer(9), { shape: { maxMediaSections: 9 } }).ok, true);
  });

  test('repeated BUNDLE tags, long lines, many attributes, formats, ssrc and candidate lines', () => {
    tooComplex(replaced(CHROME_AUDIO_OFFER, 'a=group:BUNDLE 0', `a=group:BUNDLE${' 0'.repeat(9)}`), /mids/);
    tooComplex(replaced(CHROME_AUDIO_OFFER, 's=-', `s=${'x'.repeat(1100)}`), /line 3 is 1102 characters/);
    const extra = (line: string, count: number) =>
      replaced(CHROME_AUDIO_OFFER, 'a=rtcp-mux\r\n', `a=rtcp-mux\r\n${`${line}\r\n`.repeat(count)}`);
    tooComplex(extra('a=x-filler', 200), /more than 200 a= lines in m= section 1/);
    tooComplex(extra('a=ssrc:1 cname:x', 63), /more than 64 a=ssrc lines/);
    tooComplex(extra('a=candidate:1 1 udp 1 192.0.2.1 9 typ host', 33), /more than 32 a=candidate lines/);
    const formats = Array.from({ length: 65 }, (_, i) => 96 + (i % 32)).join(' ');
    tooComplex(replaced(CHROME_AUDIO_OFFER, '111 63 9 0 8 13 110 126', formats), /65 payload types/);
    tooComplex(CHROME_AUDIO_OFFER, /lines; the limit is 10/, { shape: { maxLines: 10 } });
  });

  test('a malformed offer is still bad-sdp', () => {
    const result = checkOffer('v=0\r\nnot sdp\r\n');
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.problem, 'bad-sdp');
  });
});
