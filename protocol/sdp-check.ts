// What signaling checks in a WHIP offer before it picks a transceiver: a cheap, pure gate that turns
// the common mistakes (no audio, no BUNDLE, no rtcp-mux, no DTLS fingerprint, no ICE credentials)
// into a 400 whose detail names the missing piece. It is not a full SDP parser: the transceiver
// (werift) negotiates; anything that passes here and still fails there comes back as its error.
// Also reads trickle-ICE SDP fragments (RFC 8840) for PATCH.

/** RFC 9725 does not fix one; offers from browsers are 2–10 KiB. */
export const DEFAULT_MAX_OFFER_BYTES = 64 * 1024;

/**
 * The shape an offer may have. The byte limit alone admits ~700 complete audio sections, and the
 * transceiver (werift) answers every section it is given: 16–23 MiB per session instead of ~0.7 MiB.
 * Real callers (Chromium, Firefox, libwebrtc, libdatachannel, werift) send audio, maybe video and a
 * data channel: 1–3 sections of at most ~60 lines each. The defaults leave a wide margin above that
 * and a small bound on what one offer can make the transceiver build (docs/whip.md#limits).
 */
export interface OfferShapeLimits {
  /** m= sections (rejected ones with port 0 included: werift answers them too). */
  readonly maxMediaSections: number;
  /** Lines in the whole offer. */
  readonly maxLines: number;
  /** Characters in one line. */
  readonly maxLineLength: number;
  /** a= lines in one m= section (or at session level). */
  readonly maxAttributesPerSection: number;
  /** Payload types on one m= line. */
  readonly maxFormatsPerSection: number;
  /** a=ssrc and a=ssrc-group lines in one section. */
  readonly maxSsrcLinesPerSection: number;
  /** a=candidate lines in one section (ICE-lite behind the relay ignores them; WHIP clients send few). */
  readonly maxCandidatesPerSection: number;
}

export const DEFAULT_OFFER_SHAPE_LIMITS: OfferShapeLimits = Object.freeze({
  maxMediaSections: 8,
  maxLines: 1_000,
  maxLineLength: 1_024,
  maxAttributesPerSection: 200,
  maxFormatsPerSection: 64,
  maxSsrcLinesPerSection: 64,
  maxCandidatesPerSection: 32,
});

export interface SdpLine {
  /** One letter: v, o, s, t, c, m, a, … */
  readonly type: string;
  readonly value: string;
  /** 1-based, for messages. */
  readonly lineNumber: number;
}

export interface MediaSection {
  /** `audio`, `video`, `application`, … */
  readonly media: string;
  readonly port: number;
  /** `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`, … */
  readonly proto: string;
  /** The `a=` lines of the section, as `name` → values (`a=rtcp-mux` gives `rtcp-mux` → `['']`). */
  readonly attributes: ReadonlyMap<string, readonly string[]>;
  readonly lineNumber: number;
}

export interface ParsedSdp {
  /** Session-level `a=` attributes. */
  readonly session: ReadonlyMap<string, readonly string[]>;
  readonly media: readonly MediaSection[];
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; detail: string };

/** An offer that passed; a few facts for logs. */
export interface OfferSummary {
  readonly mediaSections: number;
  readonly audioSections: number;
  readonly bundle: readonly string[];
}

/**
 * Why an offer was refused: `bad-sdp` (malformed or missing what WHIP needs) or `offer-too-complex`
 * (well formed, maybe, but past a shape limit: more sections, lines or attributes than allowed).
 */
export type OfferProblem = 'bad-sdp' | 'offer-too-complex';

export type OfferCheck =
  | { ok: true; summary: OfferSummary }
  | { ok: false; detail: string; problem: OfferProblem };

const LINE = /^([a-z])=(.*)$/;
// RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/"; ufrag 4–256, pwd 22–256.
const ICE_UFRAG = /^[A-Za-z0-9+/]{4,256}$/;
const ICE_PWD = /^[A-Za-z0-9+/]{22,256}$/;
// RFC 8122 §5: hash-func SP 2HEXDIG *(":" 2HEXDIG)
const FINGERPRINT = /^[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+$/;

/** Splits SDP text into typed lines (CRLF or LF; a final newline is optional). */
export function parseSdpLines(text: string): ParseResult<SdpLine[]> {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(text);
  if (control) {
    return { ok: false, detail: `contains a control character (U+${hex4(control[0].charCodeAt(0))})` };
  }
  const raw = text.split(/\r?\n/);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  const lines: SdpLine[] = [];
  for (let index = 0; index < raw.length; index++) {
    const line = raw[index]!;
    const match = LINE.exec(line);
    if (!match) {
      const shown = line.length > 40 ? `${line.slice(0, 40)}…` : line;
      return { ok: false, detail: `line ${index + 1} is not <letter>=<value>: ${JSON.stringify(shown)}` };
    }
    lines.push({ type: match[1]!, value: match[2]!, lineNumber: index + 1 });
  }
  return { ok: true, value: lines };
}

function hex4(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}

function addAttribute(target: Map<string, string[]>, value: string): void {
  const colon = value.indexOf(':');
  const name = colon === -1 ? value : value.slice(0, colon);
  const attributeValue = colon === -1 ? '' : value.slice(colon + 1);
  const list = target.get(name);
  if (list) list.push(attributeValue);
  else target.set(name, [attributeValue]);
}

/** Groups lines into the session part and media sections. `m=` lines must be well formed. */
export function parseSdp(text: string): ParseResult<ParsedSdp> {
  const lines = parseSdpLines(text);
  if (!lines.ok) return lines;
  const session = new Map<string, string[]>();
  const media: Array<MediaSection & { attributes: Map<string, string[]> }> = [];
  for (const line of lines.value) {
    if (line.type === 'm') {
      // RFC 8866 §5.14: m=<media> <port>[/<number>] <proto> <fmt> ...
      const match = /^([A-Za-z0-9_-]+) ([0-9]{1,5})(?:\/[0-9]+)? (\S+)(?: \S+)+$/.exec(line.value);
      if (!match || Number(match[2]) > 65535) {
        return {
          ok: false,
          detail: `line ${line.lineNumber}: malformed m= line ${JSON.stringify(line.value)}`,
        };
      }
      media.push({
        media: match[1]!,
        port: Number(match[2]),
        proto: match[3]!,
        attributes: new Map(),
        lineNumber: line.lineNumber,
      });
    } else if (line.type === 'a') {
      addAttribute(media.length === 0 ? session : media[media.length - 1]!.attributes, line.value);
    }
  }
  return { ok: true, value: { session, media } };
}

const isRtp = (section: MediaSection) => /\bRTP\//.test(section.proto);
/** Port 0 without `a=bundle-only` is a rejected or disabled section (RFC 8843 §7.3.3 for the other case). */
const isBundleOnly = (section: MediaSection) => section.port === 0 && section.attributes.has('bundle-only');
const isRejected = (section: MediaSection) => section.port === 0 && !section.attributes.has('bundle-only');
const describe = (section: MediaSection) => `m=${section.media} (line ${section.lineNumber})`;

/**
 * Checks a WHIP offer (RFC 9725 §4.2 and the WebRTC profile it relies on: RFC 9143 BUNDLE, RFC 5761
 * rtcp-mux, RFC 8122 fingerprints, RFC 8839 ICE credentials). The detail of a failure names what is
 * missing or wrong and is safe to show to the caller.
 */
export function checkOffer(
  text: string,
  options: { maxBytes?: number; shape?: Partial<OfferShapeLimits> } = {},
): OfferCheck {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_OFFER_BYTES;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) return tooComplex(`the offer is ${bytes} bytes; the limit is ${maxBytes}`);
  const shape = checkShape(text, { ...DEFAULT_OFFER_SHAPE_LIMITS, ...options.shape });
  if (shape !== undefined) return tooComplex(shape);
  const result = checkContent(text);
  return result.ok ? result : { ok: false, detail: result.detail, problem: 'bad-sdp' };
}

function tooComplex(detail: string): OfferCheck {
  return { ok: false, detail, problem: 'offer-too-complex' };
}

/**
 * The shape limits, on the raw lines: one pass, no allocation per line beyond the split, so that a
 * refused offer costs little (it runs before anything else looks at the SDP).
 */
export function checkShape(text: string, limits: OfferShapeLimits): string | undefined {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length > limits.maxLines)
    return `the offer has ${lines.length} lines; the limit is ${limits.maxLines}`;
  let sections = 0;
  let attributes = 0;
  let ssrcLines = 0;
  let candidates = 0;
  let bundleTags = 0;
  const where = () => (sections === 0 ? 'at session level' : `in m= section ${sections}`);
  for (const [index, raw] of lines.entries()) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length > limits.maxLineLength)
      return `line ${index + 1} is ${line.length} characters long; the limit is ${limits.maxLineLength}`;
    if (line.startsWith('m=')) {
      sections++;
      if (sections > limits.maxMediaSections)
        return `the offer has more than ${limits.maxMediaSections} m= sections (the limit)`;
      attributes = 0;
      ssrcLines = 0;
      candidates = 0;
      // m=<media> <port> <proto> <fmt> ...: the formats are the fourth field on.
      const formats = line.split(' ').length - 3;
      if (formats > limits.maxFormatsPerSection)
        return `line ${index + 1}: ${formats} payload types on one m= line; the limit is ${limits.maxFormatsPerSection}`;
      continue;
    }
    if (!line.startsWith('a=')) continue;
    if (++attributes > limits.maxAttributesPerSection)
      return `more than ${limits.maxAttributesPerSection} a= lines ${where()} (the limit)`;
    if (line.startsWith('a=ssrc') && ++ssrcLines > limits.maxSsrcLinesPerSection)
      return `more than ${limits.maxSsrcLinesPerSection} a=ssrc lines ${where()} (the limit)`;
    if (line.startsWith('a=candidate') && ++candidates > limits.maxCandidatesPerSection)
      return `more than ${limits.maxCandidatesPerSection} a=candidate lines ${where()} (the limit)`;
    if (line.startsWith('a=group:')) {
      // A group names each section at most once; repeated or extra tags only cost work.
      bundleTags += line.trim().split(/\s+/).length - 1;
      if (bundleTags > limits.maxMediaSections)
        return `a=group lines name more than ${limits.maxMediaSections} mids (the m= section limit)`;
    }
  }
  return undefined;
}

function checkContent(text: string): { ok: true; summary: OfferSummary } | { ok: false; detail: string } {
  if (text.trim() === '') return { ok: false, detail: 'the offer is empty' };
  const parsed = parseSdp(text);
  if (!parsed.ok) return parsed;
  const { session, media } = parsed.value;
  if (!/^v=0\r?\n/.test(text)) return { ok: false, detail: 'an SDP offer starts with "v=0"' };

  const active = media.filter((section) => !isRejected(section));
  const audio = active.filter((section) => section.media === 'audio');
  if (audio.length === 0) return { ok: false, detail: 'no m=audio section (voice-edge needs audio)' };
  for (const section of audio) {
    if (!/^(?:UDP|TCP)\/(?:TLS|DTLS)\/RTP\/SAVPF?$/.test(section.proto)) {
      return {
        ok: false,
        detail: `${describe(section)} uses ${section.proto}, not DTLS-SRTP (UDP/TLS/RTP/SAVPF)`,
      };
    }
  }

  const groups = (session.get('group') ?? []).filter((group) => /^BUNDLE(?:\s|$)/.test(group));
  if (groups.length === 0) return { ok: false, detail: 'no a=group:BUNDLE (RFC 9725 requires max-bundle)' };
  const bundle = groups.flatMap((group) => group.split(/\s+/).slice(1));
  if (bundle.length === 0) return { ok: false, detail: 'a=group:BUNDLE lists no mid' };
  const mids = new Map<string, MediaSection>();
  for (const section of media) {
    const mid = section.attributes.get('mid')?.[0];
    if (mid !== undefined) mids.set(mid, section);
  }
  for (const tag of bundle) {
    if (!mids.has(tag))
      return { ok: false, detail: `a=group:BUNDLE names mid "${tag}", which no m= section has` };
  }
  if (!audio.some((section) => bundle.includes(section.attributes.get('mid')?.[0] ?? '\u0000'))) {
    return { ok: false, detail: 'no m=audio section is in the BUNDLE group' };
  }

  for (const section of active) {
    if (isRtp(section) && !isBundleOnly(section) && !section.attributes.has('rtcp-mux')) {
      return { ok: false, detail: `${describe(section)} has no a=rtcp-mux` };
    }
  }

  // Transport attributes: at session level, or in every section that has its own transport (a
  // bundle-only section shares the transport of the section that tags the group).
  const transportSections = active.filter((section) => !isBundleOnly(section));
  const check = (name: string, valid: RegExp, label: string): { ok: false; detail: string } | undefined => {
    const sessionValues = session.get(name);
    for (const value of sessionValues ?? []) {
      if (!valid.test(value.trim()))
        return { ok: false, detail: `session-level a=${name} is not a valid ${label}` };
    }
    for (const section of transportSections) {
      const values = section.attributes.get(name);
      if (values === undefined) {
        if (sessionValues === undefined)
          return { ok: false, detail: `${describe(section)} has no a=${name}` };
        continue;
      }
      for (const value of values) {
        if (!valid.test(value.trim()))
          return { ok: false, detail: `${describe(section)}: a=${name} is not a valid ${label}` };
      }
    }
    return undefined;
  };
  const problem =
    check('fingerprint', FINGERPRINT, 'DTLS fingerprint (RFC 8122)') ??
    check('ice-ufrag', ICE_UFRAG, 'ICE ufrag (4–256 ice-chars)') ??
    check('ice-pwd', ICE_PWD, 'ICE password (22–256 ice-chars)');
  if (problem) return problem;
  return { ok: true, summary: { mediaSections: media.length, audioSections: audio.length, bundle } };
}

/** What a trickle-ICE fragment (RFC 8840 `application/trickle-ice-sdpfrag`) carries. */
export interface TrickleFragment {
  readonly iceUfrag: string | undefined;
  readonly icePwd: string | undefined;
  readonly candidates: number;
  readonly endOfCandidates: boolean;
}

/** Reads an SDP fragment: `a=` and `m=` lines only (RFC 8840 §9 grammar, loosely). */
export function parseTrickleFragment(
  text: string,
  options: { maxBytes?: number } = {},
): ParseResult<TrickleFragment> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_OFFER_BYTES;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes)
    return { ok: false, detail: `the fragment is ${bytes} bytes; the limit is ${maxBytes}` };
  const lines = parseSdpLines(text);
  if (!lines.ok) return lines;
  let iceUfrag: string | undefined;
  let icePwd: string | undefined;
  let candidates = 0;
  let endOfCandidates = false;
  for (const line of lines.value) {
    if (line.type !== 'a' && line.type !== 'm') {
      return {
        ok: false,
        detail: `line ${line.lineNumber}: a trickle-ice-sdpfrag holds only a= and m= lines`,
      };
    }
    if (line.type !== 'a') continue;
    if (line.value.startsWith('ice-ufrag:')) iceUfrag = line.value.slice('ice-ufrag:'.length).trim();
    else if (line.value.startsWith('ice-pwd:')) icePwd = line.value.slice('ice-pwd:'.length).trim();
    else if (line.value.startsWith('candidate:')) candidates++;
    else if (line.value === 'end-of-candidates') endOfCandidates = true;
  }
  if (iceUfrag !== undefined && !ICE_UFRAG.test(iceUfrag))
    return { ok: false, detail: 'a=ice-ufrag is not a valid ICE ufrag' };
  if (icePwd !== undefined && !ICE_PWD.test(icePwd))
    return { ok: false, detail: 'a=ice-pwd is not a valid ICE password' };
  return { ok: true, value: { iceUfrag, icePwd, candidates, endOfCandidates } };
}
