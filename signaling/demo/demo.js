// The voice-edge demo page (index.html): a WHIP client (RFC 9725) with live call figures.
//
// Talk: getUserMedia → RTCPeerConnection → POST the offer to ./whip → apply the answer → play what
// comes back. Hang up (or leaving the page): DELETE the session URL. While the call runs, getStats()
// once a second feeds five charts drawn on canvases (the last 60 s). Every failure is said in plain
// words with its reason. The current figures are on window.voiceEdgeDemo (for tests and curious
// people): { state, error, failure, setupMs, setup, samples: { rtt, jitter, loss, levelIn,
// levelOut }, ... }; a sample is { t: seconds since connected, value }.

const SAMPLE_MS = 1_000;
const WINDOW_S = 60;
const MAX_POINTS = 300;
const POST_TIMEOUT_MS = 15_000;
/** Chromium gives up on ICE after about 30 s; the page says what is wrong sooner. */
const CONNECT_TIMEOUT_MS = 20_000;
/** Seconds without a received packet before the page says so. */
const QUIET_SECONDS = 3;

const $ = (id) => document.getElementById(id);
const whipUrl = new URL('whip', document.baseURI).href;

/** @type {Record<string, string>} */
const STATE_TEXT = {
  idle: 'Ready',
  microphone: 'Waiting for the microphone…',
  offering: 'Sending the offer to signaling…',
  connecting: 'Connecting to the relay…',
  connected: 'Connected: talk now',
  interrupted: 'Connection interrupted…',
  ending: 'Hanging up…',
  ended: 'Call ended',
  failed: 'Failed',
};
const BUSY = new Set(['microphone', 'offering', 'connecting', 'interrupted', 'ending']);

/** A call's figures before it starts (the page's first state, and every new call's). */
function freshFigures() {
  return {
    /** The failure in plain words (title. explanation), or null. */
    error: null,
    /** What failed, for programs: { kind: microphone|whip|ice|dtls|edge, status?, code?, detail?, retryAfterSeconds? } */
    failure: null,
    /** A warning or note shown while the call runs (e.g. no audio arriving), or null. */
    notice: null,
    /** Talk → connectionState 'connected', in ms. */
    setupMs: null,
    setup: { microphoneMs: null, offerToAnswerMs: null, connectMs: null },
    whipStatus: null,
    sessionUrl: null,
    /** The relay address (ip:port) the answer gave as the media path. */
    relay: null,
    hangUpStatus: null,
    /** Where the latest RTT came from: 'rtcp' (remote-inbound-rtp) or 'ice' (candidate pair). */
    rttSource: null,
    samples: { rtt: [], jitter: [], loss: [], levelIn: [], levelOut: [] },
    packets: { received: 0, lost: 0, sent: 0 },
    callSeconds: 0,
  };
}

const demo = {
  /** idle | microphone | offering | connecting | connected | interrupted | ending | ended | failed */
  state: 'idle',
  ...freshFigures(),
  whipUrl,
  events: [],
};
window.voiceEdgeDemo = demo;

const pageStart = performance.now();
function log(text) {
  const ms = Math.round(performance.now() - pageStart);
  demo.events.push({ ms, text });
  if (demo.events.length > 200) demo.events.shift();
  const line = `${String(ms).padStart(7)} ms  ${text}\n`;
  $('log').textContent += line;
}

// ---------------------------------------------------------------------------------------------
// The call

/**
 * The call in progress (null when none): one object per Talk, so the late results of an old call
 * (a POST answered after Hang up) can tell they are late.
 */
let call = null;

function newCall() {
  return {
    startedAt: performance.now(),
    token: $('token').value.trim(),
    processing: $('processing').checked,
    mic: null,
    pc: null,
    audio: null,
    sessionUrl: null,
    answeredAt: null,
    connectedAt: null,
    iceConnected: false,
    connectTimer: null,
    sampler: null,
    previous: null,
    quietSeconds: 0,
    /** True while the WHIP POST is in flight. */
    posting: false,
    done: false,
  };
}

function authHeaders(current) {
  return current.token ? { Authorization: `Bearer ${current.token}` } : {};
}

async function talk() {
  if (call !== null) return;
  const current = newCall();
  call = current;
  resetFigures();
  setMessage(null);
  setState('microphone');
  log('Talk');

  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    return fail(
      current,
      { kind: 'microphone' },
      'The microphone is not available on this page',
      `Browsers only give the microphone to https:// pages and to http://localhost; this page is ${location.origin}. Serve signaling behind TLS, or open the page on localhost.`,
    );
  }
  const constraints = current.processing
    ? { audio: true }
    : { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } };
  try {
    current.mic = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (error) {
    const [title, text] = describeMicrophoneError(error);
    return fail(current, { kind: 'microphone', detail: `${error?.name}: ${error?.message}` }, title, text);
  }
  if (current.done) return release(current);
  demo.setup.microphoneMs = performance.now() - current.startedAt;
  const [track] = current.mic.getAudioTracks();
  log(`microphone: ${track?.label || 'open'}`);

  // No ICE servers: the answer's relay address is the only path, and the edge learns ours from
  // our connectivity checks (it is ICE-lite), so there is no need to wait for candidate gathering.
  const pc = new RTCPeerConnection();
  current.pc = pc;
  pc.addTransceiver(track, { direction: 'sendrecv', streams: [current.mic] });
  const audio = new Audio();
  audio.autoplay = true;
  current.audio = audio;
  pc.ontrack = (event) => {
    audio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    audio.play().catch((error) => log(`audio playback: ${error.message}`));
  };
  pc.oniceconnectionstatechange = () => {
    log(`ICE: ${pc.iceConnectionState}`);
    if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed')
      current.iceConnected = true;
  };
  pc.onconnectionstatechange = () => onConnectionState(current);

  let offer;
  try {
    offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
  } catch (error) {
    return fail(
      current,
      { kind: 'whip' },
      'The browser could not create an offer',
      String(error?.message ?? error),
    );
  }
  if (current.done) return release(current);

  setState('offering');
  const posted = performance.now();
  current.posting = true;
  let response;
  try {
    response = await fetch(whipUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...authHeaders(current) },
      body: pc.localDescription.sdp,
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
  } catch (error) {
    const why =
      error?.name === 'TimeoutError'
        ? `no answer within ${POST_TIMEOUT_MS / 1000} s`
        : `${error?.message ?? error}`;
    return fail(
      current,
      { kind: 'whip', detail: why },
      'Signaling could not be reached',
      `POST ${whipUrl} failed: ${why}. Is signaling running, and is this page served by it?`,
    );
  }
  const body = await response.text().catch(() => '');
  current.posting = false;
  const sessionPath = response.headers.get('Location');
  if (response.status === 201 && sessionPath) current.sessionUrl = new URL(sessionPath, whipUrl).href;
  if (current.done) return release(current); // hung up while the offer was on its way
  demo.whipStatus = response.status;
  demo.setup.offerToAnswerMs = performance.now() - posted;
  log(`WHIP POST: ${response.status}${sessionPath ? ` ${sessionPath}` : ''}`);
  if (response.status !== 201) {
    const [failure, title, text] = describeWhipError(response, body, current.token !== '');
    return fail(current, failure, title, text);
  }
  demo.sessionUrl = current.sessionUrl;
  demo.relay = relayOf(body);
  if (!sessionPath) {
    setMessage(
      'warning',
      'The answer has no session URL',
      'Signaling sent no Location header (or CORS hides it), so Hang up cannot end the session on the server.',
    );
  }

  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
  } catch (error) {
    return fail(
      current,
      { kind: 'whip', status: 201, detail: String(error?.message ?? error) },
      'The browser refused the answer',
      `Signaling answered 201, but the SDP answer could not be applied: ${error?.message ?? error}`,
    );
  }
  current.answeredAt = performance.now();
  setState('connecting');
  // The transceiver ending the session shows here at once if it sends a DTLS close_notify; werift
  // does not today, and then Chromium notices by its consent checks going unanswered (about 15 s:
  // connectionState disconnected, then failed).
  const dtls = pc.getSenders()[0]?.transport;
  if (dtls) {
    dtls.onstatechange = () => {
      log(`DTLS: ${dtls.state}`);
      if (dtls.state === 'closed' && !current.done) {
        endedByEdge(
          current,
          'The transceiver closed the secure (DTLS) connection: the session was ended on the server side (a DELETE from elsewhere, a transceiver shutdown, or its backend going away).',
        );
      }
    };
  }
  current.connectTimer = setTimeout(() => {
    if (current.connectedAt === null && !current.done)
      connectionFailed(current, ` within ${CONNECT_TIMEOUT_MS / 1000} s`);
  }, CONNECT_TIMEOUT_MS);
}

function onConnectionState(current) {
  const { pc } = current;
  log(`connection: ${pc.connectionState}`);
  if (current.done) return;
  switch (pc.connectionState) {
    case 'connected':
      if (current.connectedAt === null) {
        current.connectedAt = performance.now();
        clearTimeout(current.connectTimer);
        demo.setupMs = current.connectedAt - current.startedAt;
        demo.setup.connectMs = current.connectedAt - current.answeredAt;
        log(`connected: setup ${Math.round(demo.setupMs)} ms`);
        current.sampler = setInterval(() => sample(current), SAMPLE_MS);
        void sample(current);
      } else if (demo.notice?.kind === 'interrupted') {
        setMessage(null);
      }
      setState('connected');
      break;
    case 'disconnected':
      if (current.connectedAt !== null) {
        setState('interrupted');
        setMessage(
          'warning',
          'Connection interrupted',
          'Nothing has arrived from the relay for a few seconds; waiting for the path to come back…',
          'interrupted',
        );
      }
      break;
    case 'failed':
      if (current.connectedAt === null) connectionFailed(current, '');
      else
        endedByEdge(
          current,
          `The media connection to the relay at ${demo.relay ?? '?'} was lost and did not come back: the network path broke, or the transceiver ended the session without saying so.`,
        );
      break;
  }
}

function connectionFailed(current, within) {
  const relay = demo.relay ?? 'the address in the answer';
  if (current.iceConnected) {
    fail(
      current,
      { kind: 'dtls' },
      'The secure connection (DTLS) failed',
      `Connectivity checks through the relay at ${relay} succeeded, but the DTLS handshake with the transceiver did not complete${within}. The transceiver logs say why.`,
    );
  } else {
    fail(
      current,
      { kind: 'ice' },
      'No media connection (ICE failed)',
      `Signaling answered, but no connectivity check between this browser and the relay at ${relay} (UDP) succeeded${within}. UDP to that address and port must be reachable from this browser: firewalls, VPNs and many corporate or guest networks block UDP.`,
    );
  }
}

async function hangUp() {
  const current = call;
  if (current === null || current.done) return;
  current.done = true;
  setState('ending');
  log('Hang up');
  const { sessionUrl, posting } = current;
  const status = await release(current);
  demo.hangUpStatus = status;
  setState('ended');
  if (status === null || status === 200 || status === 404) {
    setMessage(
      'info',
      'Call ended',
      status === null
        ? posting
          ? 'Hung up before signaling answered: a session it opens is ended at once.'
          : 'No session was open on the server.'
        : `The session was ended on the server (DELETE answered ${status}).`,
    );
  } else {
    setMessage(
      'warning',
      'Call ended here, but the server did not confirm',
      `DELETE ${sessionUrl} answered ${status || 'nothing (the request failed)'}; the transceiver ends the session by itself once media stops.`,
    );
  }
}

/** The edge (or the path to it) ended an established call. */
function endedByEdge(current, why) {
  if (current.done) return;
  current.done = true;
  log(`ended by the edge: ${why}`);
  demo.failure = { kind: 'edge' };
  demo.error = `The call ended from the edge's side. ${why}`;
  setState('ended');
  setMessage('warning', "The call ended from the edge's side", why);
  void release(current);
}

/** A call that could not be set up: say what and why, free what was taken. */
function fail(current, failure, title, text) {
  if (current.done) return;
  current.done = true;
  demo.failure = failure;
  demo.error = `${title}. ${text}`;
  log(`failed: ${title}: ${text}`);
  setState('failed');
  setMessage('error', title, text);
  void release(current);
}

/**
 * Stops everything the call holds and DELETEs its session (if there is one); resolves to the
 * DELETE status (null if no session, 0 if the request failed). Idempotent.
 */
async function release(current) {
  current.done = true;
  clearTimeout(current.connectTimer);
  clearInterval(current.sampler);
  current.pc?.close();
  for (const track of current.mic?.getTracks() ?? []) track.stop();
  if (current.audio) current.audio.srcObject = null;
  if (call === current) call = null;
  render();
  const url = current.sessionUrl;
  current.sessionUrl = null;
  if (!url) return null;
  try {
    const response = await fetch(url, { method: 'DELETE', headers: authHeaders(current) });
    log(`DELETE ${new URL(url).pathname}: ${response.status}`);
    return response.status;
  } catch (error) {
    log(`DELETE failed: ${error?.message ?? error}`);
    return 0;
  }
}

// Leaving the page ends the session too (keepalive lets the request outlive the page).
addEventListener('pagehide', () => {
  if (call?.sessionUrl) {
    fetch(call.sessionUrl, { method: 'DELETE', headers: authHeaders(call), keepalive: true }).catch(() => {});
    call.sessionUrl = null;
  }
});

function describeMicrophoneError(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return [
        'Microphone access was denied',
        'Without the microphone there is nothing to send. Allow the microphone for this site (the icon in the address bar, or the site settings) and press Talk again.',
      ];
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      return [
        'No microphone found',
        'This device has no microphone the browser can use. Connect one and press Talk again.',
      ];
    case 'NotReadableError':
    case 'TrackStartError':
      return [
        'The microphone could not be opened',
        'Another application may be using it, or the operating system does not let the browser use it.',
      ];
    default:
      return ['The microphone could not be opened', `${error?.name ?? 'Error'}: ${error?.message ?? error}`];
  }
}

/** A WHIP error answer (problem+json from signaling, or anything else) in plain words. */
function describeWhipError(response, body, sentToken) {
  const status = response.status;
  let problem = null;
  if (/json/i.test(response.headers.get('Content-Type') ?? '')) {
    try {
      problem = JSON.parse(body);
    } catch {
      problem = null;
    }
  }
  const detail = (typeof problem?.detail === 'string' && problem.detail) || body.trim().slice(0, 300) || '';
  const title = (typeof problem?.title === 'string' && problem.title) || response.statusText || 'error';
  const retryAfter = response.headers.get('Retry-After');
  const retryAfterSeconds = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
  let hint;
  switch (status) {
    case 401:
      hint = sentToken
        ? 'The bearer token was refused: check it under Options.'
        : 'This signaling requires a bearer token: enter it under Options and press Talk again.';
      break;
    case 503:
      hint = `No transceiver can take a call right now${retryAfterSeconds !== null ? `; try again in ${retryAfterSeconds} s (Retry-After)` : ''}.`;
      break;
    case 502:
      hint = 'The media server behind signaling failed; the signaling and transceiver logs say more.';
      break;
    case 400:
      hint = 'Signaling or the media server refused the offer this browser made.';
      break;
    case 404:
    case 405:
      hint = `There is no WHIP endpoint at ${whipUrl}.`;
      break;
    default:
      hint = '';
  }
  const failure = { kind: 'whip', status, code: problem?.code ?? null, detail, retryAfterSeconds };
  const text = [detail && `${detail.replace(/\.$/, '')}.`, hint].filter(Boolean).join(' ');
  return [failure, `Signaling refused the call: ${status} ${title}`, text];
}

/** The first ICE candidate's address in an SDP answer (the relay), as ip:port. */
function relayOf(sdp) {
  const match = /^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ/im.exec(sdp);
  if (!match) return null;
  const [, protocol, address, port] = match;
  return `${address.includes(':') ? `[${address}]` : address}:${port}${protocol.toLowerCase() === 'udp' ? '' : ` (${protocol})`}`;
}

// ---------------------------------------------------------------------------------------------
// Figures

function resetFigures() {
  Object.assign(demo, freshFigures());
}

function pickStats(report) {
  const out = {};
  for (const entry of report.values()) {
    if (entry.kind !== undefined && entry.kind !== 'audio') continue;
    if (entry.type === 'inbound-rtp') out.inbound = entry;
    else if (entry.type === 'outbound-rtp') out.outbound = entry;
    else if (entry.type === 'remote-inbound-rtp') out.remoteInbound = entry;
    else if (entry.type === 'media-source') out.source = entry;
    else if (entry.type === 'transport' && entry.selectedCandidatePairId)
      out.pair = report.get(entry.selectedCandidatePairId);
  }
  if (!out.pair) {
    for (const entry of report.values())
      if (entry.type === 'candidate-pair' && entry.nominated && entry.state === 'succeeded') out.pair = entry;
  }
  return out;
}

/**
 * The RMS level (0..1) over the last interval from totalAudioEnergy / totalSamplesDuration (what
 * the spec recommends for an average); the instantaneous audioLevel when those do not move.
 */
function levelOf(now, before) {
  if (now === undefined) return undefined;
  if (typeof now.totalAudioEnergy === 'number' && typeof now.totalSamplesDuration === 'number') {
    const energy = now.totalAudioEnergy - (before?.totalAudioEnergy ?? 0);
    const duration = now.totalSamplesDuration - (before?.totalSamplesDuration ?? 0);
    if (duration > 0) return Math.sqrt(Math.max(0, energy) / duration);
  }
  return typeof now.audioLevel === 'number' ? now.audioLevel : undefined;
}

function push(series, t, value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) return;
  series.push({ t, value });
  if (series.length > MAX_POINTS) series.shift();
}

async function sample(current) {
  let report;
  try {
    report = await current.pc.getStats();
  } catch {
    return;
  }
  if (current.done) return;
  const stats = pickStats(report);
  const first = current.previous === null;
  const before = current.previous ?? {};
  current.previous = stats;
  const t = (performance.now() - current.connectedAt) / 1000;
  demo.callSeconds = t;
  const { samples } = demo;

  const rtcpRtt = stats.remoteInbound?.roundTripTime;
  const iceRtt = stats.pair?.currentRoundTripTime;
  if (typeof rtcpRtt === 'number') {
    demo.rttSource = 'rtcp';
    push(samples.rtt, t, rtcpRtt * 1000);
  } else if (typeof iceRtt === 'number') {
    demo.rttSource = 'ice';
    push(samples.rtt, t, iceRtt * 1000);
  }
  const inbound = stats.inbound;
  if (inbound) {
    if (typeof inbound.jitter === 'number') push(samples.jitter, t, inbound.jitter * 1000);
    const received = (inbound.packetsReceived ?? 0) - (before.inbound?.packetsReceived ?? 0);
    const lost = Math.max(0, (inbound.packetsLost ?? 0) - (before.inbound?.packetsLost ?? 0));
    if (received + lost > 0) push(samples.loss, t, (100 * lost) / (received + lost));
    current.quietSeconds = received > 0 ? 0 : current.quietSeconds + 1;
    demo.packets.received = inbound.packetsReceived ?? 0;
    demo.packets.lost = inbound.packetsLost ?? 0;
  } else {
    current.quietSeconds += 1;
  }
  demo.packets.sent = stats.outbound?.packetsSent ?? 0;
  // Levels are averages since the last sample: the first sample is only their starting point.
  if (!first) {
    push(samples.levelIn, t, levelOf(stats.source, before.source));
    push(samples.levelOut, t, levelOf(inbound, before.inbound));
  }

  if (current.quietSeconds >= QUIET_SECONDS && demo.state === 'connected') {
    setMessage(
      'warning',
      'No audio is arriving',
      `No packet has come back from the edge for ${current.quietSeconds} s, though the connection is up. The backend may have stopped sending.`,
      'quiet',
    );
  } else if (current.quietSeconds === 0 && demo.notice?.kind === 'quiet') {
    setMessage(null);
  }
  render();
}

// ---------------------------------------------------------------------------------------------
// Drawing

const dbfs = (level) => 20 * Math.log10(Math.max(level, 1e-6));
const formatLevel = (level) => (level < 0.001 ? 'silent' : `${dbfs(level).toFixed(0)} dBFS`);
const formatMs = (ms) => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

/** How each series is drawn: a linear scale from 0 (at least up to `floor`), or a dBFS scale. */
const CHARTS = {
  rtt: { color: '#1f6feb', floor: 10, format: formatMs },
  jitter: { color: '#8250df', floor: 5, format: formatMs },
  loss: {
    color: '#cf222e',
    floor: 5,
    ceiling: 100,
    format: (v) => `${v < 10 ? v.toFixed(1) : Math.round(v)} %`,
  },
  levelIn: { color: '#1a7f37', db: true, format: formatLevel },
  levelOut: { color: '#bc4c00', db: true, format: formatLevel },
};
const DB_FLOOR = -60;

/** 1, 2, 2.5, 5 × 10^n at or above value. */
function niceCeil(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function drawChart(name, points, nowT) {
  const spec = CHARTS[name];
  const canvas = $(`${name}-chart`);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 320;
  const height = canvas.clientHeight || 120;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 52;
  const right = 8;
  const top = 6;
  const bottom = 18;
  const plotW = width - left - right;
  const plotH = height - top - bottom;

  const from = nowT - WINDOW_S;
  const visible = points.filter((p) => p.t >= from - 1);
  let low = 0;
  let high;
  let toY;
  if (spec.db) {
    low = DB_FLOOR;
    high = 0;
    toY = (v) => Math.min(high, Math.max(low, dbfs(v)));
  } else {
    const peak = visible.reduce((max, p) => Math.max(max, p.value), 0);
    high = Math.min(spec.ceiling ?? Number.POSITIVE_INFINITY, niceCeil(Math.max(spec.floor, peak * 1.15)));
    toY = (v) => v;
  }
  const y = (v) => top + plotH - ((toY(v) - low) / (high - low)) * plotH;
  const yOfScale = (s) => top + plotH - ((s - low) / (high - low)) * plotH;
  const x = (t) => left + ((t - from) / WINDOW_S) * plotW;

  // Grid and labels.
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#5b6475';
  g.strokeStyle = '#e6e9ef';
  g.lineWidth = 1;
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  for (const fraction of [0, 0.5, 1]) {
    const scale = low + (high - low) * fraction;
    const py = Math.round(yOfScale(scale)) + 0.5;
    g.beginPath();
    g.moveTo(left, py);
    g.lineTo(left + plotW, py);
    g.stroke();
    const label = spec.db ? `${scale} dB` : spec.format(scale).replace('.0 ', ' ');
    g.fillText(label, left - 6, py);
  }
  g.textBaseline = 'alphabetic';
  g.textAlign = 'center';
  for (const ago of [60, 45, 30, 15, 0]) {
    const label = ago === 0 ? 'now' : `−${ago} s`;
    g.textAlign = ago === 60 ? 'left' : ago === 0 ? 'right' : 'center';
    g.fillText(label, x(nowT - ago), height - 4);
  }

  if (visible.length === 0) {
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillStyle = '#9aa3b2';
    g.fillText(
      demo.state === 'connected' ? 'waiting for data…' : 'no data yet',
      left + plotW / 2,
      top + plotH / 2,
    );
    return;
  }

  // The line (broken where samples are missing), with the area under it, clipped to the plot.
  g.save();
  g.beginPath();
  g.rect(left, top, plotW, plotH + 1);
  g.clip();
  const runs = [];
  let run = [];
  for (const p of visible) {
    if (run.length > 0 && p.t - run[run.length - 1].t > 2.5 * (SAMPLE_MS / 1000)) {
      runs.push(run);
      run = [];
    }
    run.push(p);
  }
  runs.push(run);
  for (const part of runs) {
    g.beginPath();
    g.moveTo(x(part[0].t), y(part[0].value));
    for (const p of part.slice(1)) g.lineTo(x(p.t), y(p.value));
    g.strokeStyle = spec.color;
    g.lineWidth = 2;
    g.lineJoin = 'round';
    g.stroke();
    g.lineTo(x(part[part.length - 1].t), top + plotH);
    g.lineTo(x(part[0].t), top + plotH);
    g.closePath();
    g.globalAlpha = 0.12;
    g.fillStyle = spec.color;
    g.fill();
    g.globalAlpha = 1;
  }
  const last = visible[visible.length - 1];
  g.beginPath();
  g.arc(x(last.t), y(last.value), 3, 0, 2 * Math.PI);
  g.fillStyle = spec.color;
  g.fill();
  g.restore();
}

function render() {
  const { samples } = demo;
  // The window scrolls: now at the right edge, the last minute to its left.
  const nowT = demo.callSeconds;
  for (const name of Object.keys(CHARTS)) {
    drawChart(name, samples[name], nowT);
    const last = samples[name][samples[name].length - 1];
    $(`${name}-now`).textContent = last ? CHARTS[name].format(last.value) : '—';
  }
  $('rtt-label').textContent =
    demo.rttSource === 'rtcp'
      ? 'Round-trip time (RTCP)'
      : demo.rttSource === 'ice'
        ? 'Round-trip time (ICE checks)'
        : 'Round-trip time';

  $('setup').textContent = demo.setupMs === null ? '—' : `${Math.round(demo.setupMs)} ms`;
  const parts = [];
  if (demo.setup.microphoneMs !== null) parts.push(`microphone ${Math.round(demo.setup.microphoneMs)} ms`);
  if (demo.setup.offerToAnswerMs !== null)
    parts.push(`WHIP offer → answer ${Math.round(demo.setup.offerToAnswerMs)} ms`);
  if (demo.setup.connectMs !== null) parts.push(`ICE + DTLS ${Math.round(demo.setup.connectMs)} ms`);
  $('setup-parts').textContent = parts.join(' · ');

  $('path').textContent = demo.relay === null ? '—' : `relay ${demo.relay}`;
  $('session').textContent = demo.sessionUrl === null ? '' : `session ${new URL(demo.sessionUrl).pathname}`;
  const seconds = Math.floor(demo.callSeconds);
  $('duration').textContent =
    demo.setupMs === null ? '—' : `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
  $('packets').textContent =
    demo.setupMs === null
      ? ''
      : `packets sent ${demo.packets.sent}, received ${demo.packets.received}, lost ${demo.packets.lost}`;

  const active = call !== null;
  $('talk').disabled = active;
  $('hangup').disabled = !active;
}

function setState(state) {
  demo.state = state;
  document.body.dataset.state = state;
  $('state-text').textContent = STATE_TEXT[state] ?? state;
  $('state-dot').className =
    `dot ${state === 'connected' ? 'connected' : state === 'failed' ? 'failed' : BUSY.has(state) ? 'busy' : 'idle'}`;
  render();
}

/** Shows one message (error, warning or info) above the figures; null hides it. */
function setMessage(level, title, text, kind = level) {
  const box = $('message');
  if (level === null) {
    demo.notice = null;
    box.hidden = true;
    return;
  }
  if (level !== 'error') demo.notice = { kind, title, text };
  box.className = `message ${level}`;
  $('message-title').textContent = title;
  $('message-text').textContent = text;
  box.hidden = false;
}

$('talk').addEventListener('click', () => {
  talk().catch((error) => {
    if (call)
      fail(call, { kind: 'page' }, 'Something went wrong on this page', String(error?.stack ?? error));
  });
});
$('hangup').addEventListener('click', () => void hangUp());
$('whip-url').textContent = whipUrl;
addEventListener('resize', () => render());
setState('idle');
