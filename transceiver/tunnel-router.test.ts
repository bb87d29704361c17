import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { TransportAddress } from '../protocol/address.ts';
import { CidrSet, parseCidr } from '../protocol/cidr.ts';
import {
  decodeErrorCode,
  encodeStun,
  findAttribute,
  parseStun,
  readUsername,
  StunAttr,
  StunType,
  verifyFingerprint,
  verifyMessageIntegrity,
} from '../protocol/stun.ts';
import { decodeTunnelPacket, encodeTunnelPacket } from '../protocol/tunnel.ts';
import { rtpPacket } from '../test/support/ice.ts';
import { TunnelRouter, type TunnelSessionPort } from './tunnel-router.ts';

const SERVER_PWD = 'password-a-0123456789xyz';
const CLIENT = { ufrag: 'cli1', password: 'client-password-0123456789' };

function check(
  ufrag: string,
  password: string,
  options: { fingerprint?: boolean; type?: number; transactionId?: Buffer } = {},
) {
  return encodeStun({
    type: options.type ?? StunType.BindingRequest,
    transactionId: options.transactionId ?? randomBytes(12),
    attributes: [
      { type: StunAttr.Username, value: Buffer.from(`${ufrag}:${CLIENT.ufrag}`) },
      { type: StunAttr.UseCandidate, value: Buffer.alloc(0) },
    ],
    integrityKey: password,
    fingerprint: options.fingerprint ?? true,
  });
}

class RecordingSession implements TunnelSessionPort {
  readonly stun: TransportAddress[] = [];
  readonly data: Buffer[] = [];
  activity = 0;
  /** The packets this session's key "authenticates" (the real check is werift-tunnel's verifyClientSrtp). */
  readonly genuine = new Set<string>();
  verifications = 0;
  verifyNewPathMedia(packet: Buffer) {
    this.verifications++;
    return this.genuine.has(packet.toString('hex')) ? 'verified' : 'bad-auth';
  }
  onStunRequest(_stun: Buffer, client: TransportAddress) {
    this.stun.push(client);
  }
  /** The packets this session's SRTP refuses (the real check is werift-tunnel's CallerRtpShortcut). */
  readonly forged = new Set<string>();
  onData(packet: Buffer) {
    if (this.forged.has(packet.toString('hex'))) return 'srtp_rejected' as const;
    this.data.push(packet);
    return undefined;
  }
  onPathActivity() {
    this.activity++;
  }
}

interface Sent {
  client: TransportAddress;
  payload: Buffer;
  relay: { address: string; port: number };
}

function rig() {
  const sent: Sent[] = [];
  const router = new TunnelRouter({
    sink: {
      send: (parts, relay) => {
        const decoded = decodeTunnelPacket(Buffer.concat(parts as Buffer[]));
        assert.ok(decoded.ok);
        sent.push({ client: decoded.packet.client, payload: Buffer.from(decoded.packet.payload), relay });
      },
    },
    relays: new CidrSet([parseCidr('10.0.0.0/8')]),
  });
  const session = new RecordingSession();
  router.addCredentials('ufrag-a', SERVER_PWD, session);
  router.setRemoteCredentials(session, CLIENT);
  return { router, session, sent };
}

/** The challenges the router sent to `to`. */
function challengesTo(sent: Sent[], to: TransportAddress) {
  return sent.filter(
    (item) => item.client.port === to.port && item.client.address === to.address && item.payload[0]! < 4,
  );
}

/** What a real client does with a challenge: a success response keyed with its own password. */
function answer(challenge: Buffer): Buffer {
  const parsed = parseStun(challenge);
  assert.ok(parsed.ok);
  assert.equal(parsed.message.type, StunType.BindingRequest);
  assert.equal(readUsername(parsed.message), `${CLIENT.ufrag}:ufrag-a`);
  assert.ok(verifyMessageIntegrity(parsed.message, CLIENT.password), 'keyed with the client password');
  assert.ok(findAttribute(parsed.message, StunAttr.IceControlled), 'an ICE-lite agent is controlled');
  return encodeStun({
    type: StunType.BindingSuccess,
    transactionId: parsed.message.transactionId,
    integrityKey: CLIENT.password,
    fingerprint: true,
  });
}

const client: TransportAddress = { family: 4, address: '198.51.100.7', port: 40000 };
const moved: TransportAddress = { family: 4, address: '203.0.113.9', port: 50000 };
const relayA = { address: '10.0.0.1', port: 5000 };
const relayB = { address: '10.0.0.2', port: 5001 };
const tunnel = (to: TransportAddress, payload: Buffer) => encodeTunnelPacket(to, payload);

/** Binds `client` and validates its path. */
function connect(r: ReturnType<typeof rig>, who = client, now = 0) {
  assert.equal(r.router.onDatagram(tunnel(who, check('ufrag-a', SERVER_PWD)), relayA, now), undefined);
  const challenge = challengesTo(r.sent, who).at(-1)!;
  assert.equal(r.router.onDatagram(tunnel(who, answer(challenge.payload)), relayA, now + 1), undefined);
}

describe('TunnelRouter', () => {
  test('tunnel datagrams from an address that is not a known relay are dropped and bind nothing', () => {
    const r = rig();
    const stranger = { address: '192.0.2.66', port: 5000 };
    assert.equal(
      r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), stranger, 0),
      'tunnel_unknown_source',
    );
    assert.equal(r.router.clientCount, 0);
    assert.deepEqual(r.session.stun, []);
    r.router.setRelays(new CidrSet([parseCidr('192.0.2.66')]));
    assert.equal(r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), stranger, 0), undefined);
    assert.equal(
      r.router.onDatagram(tunnel(client, Buffer.from([23, 1])), relayA, 1),
      'tunnel_unknown_source',
      'the old relay set is replaced',
    );
  });

  test('a verified check binds the client and is challenged; the answer validates the path', () => {
    const r = rig();
    assert.equal(r.router.onDatagram(tunnel(client, Buffer.from([23, 1, 2])), relayA, 0), 'unknown_client');
    assert.equal(r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 1), undefined);
    assert.deepEqual(r.session.stun, [client]);
    assert.equal(r.router.currentPath(r.session), undefined, 'not validated yet');
    assert.equal(r.session.activity, 0, 'an unvalidated check does not keep the call alive');
    const challenges = challengesTo(r.sent, client);
    assert.equal(challenges.length, 1);
    assert.equal(r.router.onDatagram(tunnel(client, answer(challenges[0]!.payload)), relayA, 2), undefined);
    assert.deepEqual(r.router.currentPath(r.session), client);
    assert.equal(r.router.pathsValidated, 1);
    assert.equal(r.session.activity, 1);
    // Data follows the client, replies go through the relay that delivered its latest packet.
    assert.equal(r.router.onDatagram(tunnel(client, Buffer.from([23, 1, 2])), relayB, 3), undefined);
    assert.deepEqual(r.session.data, [Buffer.from([23, 1, 2])]);
    assert.ok(r.router.sendData(r.session, Buffer.from([0x80, 1])));
    const last = r.sent.at(-1)!;
    assert.deepEqual(last.relay, relayB);
    assert.deepEqual(last.payload, Buffer.from([0x80, 1]));
  });

  test('an answer with a wrong transaction ID or key validates nothing', () => {
    const r = rig();
    r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 0);
    const wrongId = encodeStun({
      type: StunType.BindingSuccess,
      transactionId: randomBytes(12),
      integrityKey: CLIENT.password,
    });
    assert.equal(r.router.onDatagram(tunnel(client, wrongId), relayA, 1), 'stun_unexpected_response');
    const challenge = parseStun(challengesTo(r.sent, client)[0]!.payload);
    assert.ok(challenge.ok);
    const wrongKey = encodeStun({
      type: StunType.BindingSuccess,
      transactionId: challenge.message.transactionId,
      integrityKey: 'not-the-client-password-x',
    });
    assert.equal(r.router.onDatagram(tunnel(client, wrongKey), relayA, 2), 'stun_bad_integrity');
    assert.equal(r.router.currentPath(r.session), undefined);
  });

  test('before any path is validated, data goes out within 3× the bytes received, the rest is held', () => {
    const r = rig();
    const request = check('ufrag-a', SERVER_PWD);
    r.router.onDatagram(tunnel(client, request), relayA, 0);
    const budget = 3 * request.length - challengesTo(r.sent, client)[0]!.payload.length;
    const before = r.sent.length;
    const packet = Buffer.alloc(100, 0x16);
    let out = 0;
    for (let i = 0; i < 10; i++) r.router.sendData(r.session, packet);
    out = (r.sent.length - before) * packet.length;
    assert.ok(out <= budget, `sent ${out} bytes, budget ${budget}`);
    assert.ok(out > 0, 'a first flight goes out at once');
    const held = 10 - out / packet.length;
    // The answer releases what was held.
    const sentBefore = r.sent.length;
    r.router.onDatagram(tunnel(client, answer(challengesTo(r.sent, client)[0]!.payload)), relayA, 1);
    assert.equal(r.sent.length - sentBefore, held);
  });

  test('spoofed-source checks: the victim gets at most 3× the bytes sent from its address, and no media', () => {
    const r = rig();
    connect(r);
    const victim: TransportAddress = { family: 4, address: '192.0.2.200', port: 9 };
    let bytesFromVictim = 0;
    for (let i = 0; i < 200; i++) {
      const request = check('ufrag-a', SERVER_PWD);
      bytesFromVictim += request.length;
      r.router.onDatagram(tunnel(victim, request), relayA, 10 + i * 100);
      // werift answers every check it is given; the router lets through what the budget allows.
      r.router.sendStun(r.session, victim, Buffer.alloc(80, 1));
      r.router.sendData(r.session, Buffer.alloc(160, 0x90));
    }
    const toVictim = r.sent.filter((item) => item.client.address === victim.address);
    const bytesToVictim = toVictim.reduce((total, item) => total + item.payload.length, 0);
    assert.ok(bytesToVictim <= 3 * bytesFromVictim, `${bytesToVictim} > 3 × ${bytesFromVictim}`);
    assert.ok(
      toVictim.every((item) => item.payload[0]! < 4),
      'only STUN (replies, challenges), never media',
    );
    assert.deepEqual(r.router.currentPath(r.session), client, 'media stays on the validated path');
    assert.equal(r.session.activity, 1, 'forged checks do not keep the session alive');
  });

  test('a check replayed from another address moves nothing and reaches no one', () => {
    const r = rig();
    const captured = check('ufrag-a', SERVER_PWD);
    r.router.onDatagram(tunnel(client, captured), relayA, 0);
    r.router.onDatagram(tunnel(client, answer(challengesTo(r.sent, client)[0]!.payload)), relayA, 1);
    const attacker: TransportAddress = { family: 4, address: '192.0.2.99', port: 4444 };
    for (let i = 0; i < 50; i++)
      assert.equal(r.router.onDatagram(tunnel(attacker, captured), relayA, 2 + i), 'stun_replayed');
    assert.equal(r.sent.filter((item) => item.client.address === attacker.address).length, 0);
    assert.deepEqual(r.router.currentPath(r.session), client);
    // A retransmission from the same address is not a replay.
    assert.equal(r.router.onDatagram(tunnel(client, captured), relayA, 100), undefined);
  });

  test('a client that moves keeps its media on the old path until the new one answers and carries its media', () => {
    const r = rig();
    connect(r);
    r.router.onDatagram(tunnel(client, Buffer.from([0x80, 1])), relayA, 5);
    r.router.onDatagram(tunnel(moved, check('ufrag-a', SERVER_PWD)), relayB, 10);
    r.router.onDatagram(tunnel(moved, Buffer.from([0x80, 2])), relayB, 11);
    r.router.sendData(r.session, Buffer.from([0x80, 7]));
    assert.deepEqual(r.sent.at(-1)!.client, client, 'not before the new path answered');
    const challenge = challengesTo(r.sent, moved).at(-1)!;
    r.router.onDatagram(tunnel(moved, answer(challenge.payload)), relayB, 12);
    r.router.sendData(r.session, Buffer.from([0x80, 8]));
    assert.deepEqual(r.sent.at(-1)!.client, moved);
    assert.deepEqual(r.sent.at(-1)!.relay, relayB);
    assert.equal(r.router.pathsValidated, 2);
  });

  test("a client's second address that answers but carries no media does not take the media", () => {
    const r = rig();
    connect(r);
    r.router.onDatagram(tunnel(client, Buffer.from([0x80, 1])), relayA, 5);
    const second = { ...client, port: 40002 };
    r.router.onDatagram(tunnel(second, check('ufrag-a', SERVER_PWD)), relayA, 10);
    r.router.onDatagram(tunnel(second, answer(challengesTo(r.sent, second).at(-1)!.payload)), relayA, 11);
    assert.equal(r.router.pathsValidated, 2);
    assert.deepEqual(r.router.currentPath(r.session), client);
  });

  test('checks are rate limited per session and paths are bounded', () => {
    const r = rig();
    connect(r);
    let limited = 0;
    for (let i = 0; i < 5_000; i++)
      if (
        r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 10) === 'stun_rate_limited'
      )
        limited++;
    assert.ok(limited >= 4_800, `${limited} of 5000 checks in one instant refused`);
    for (let port = 1; port <= 50; port++)
      r.router.onDatagram(
        tunnel({ ...moved, port }, check('ufrag-a', SERVER_PWD)),
        relayA,
        10_000 + port * 100,
      );
    assert.ok(r.router.clientCount <= 8, `${r.router.clientCount} addresses bound`);
    assert.deepEqual(r.router.currentPath(r.session), client, 'the validated path is never evicted');
  });

  test('forged, unknown or unfingerprinted checks never reach the session and bind nothing', () => {
    const { router, session } = rig();
    const cases: [Buffer, string][] = [
      [check('ufrag-a', 'wrong-password-xxxxxxxxxx'), 'stun_bad_integrity'],
      [check('ufrag-b', SERVER_PWD), 'stun_unknown_ufrag'],
      [check('ufrag-a', SERVER_PWD, { fingerprint: false }), 'stun_bad_fingerprint'],
      [check('ufrag-a', SERVER_PWD, { type: StunType.BindingIndication }), 'stun_not_request'],
      [Buffer.from([0, 1, 0, 8, 0x21, 0x12]), 'stun_malformed'],
      [
        encodeStun({ type: StunType.BindingSuccess, transactionId: randomBytes(12) }),
        'stun_unexpected_response',
      ],
    ];
    for (const [packet, reason] of cases)
      assert.equal(router.onDatagram(tunnel(client, packet), relayA, 0), reason);
    assert.equal(router.onDatagram(Buffer.from([1, 2, 3]), relayA, 0), 'tunnel_malformed');
    assert.deepEqual(session.stun, []);
    assert.equal(router.clientCount, 0);
    assert.equal(router.sendStun(session, client, Buffer.from([1])), false);
  });

  test('removing a session forgets its ufrags and clients; idle clients expire', () => {
    const r = rig();
    connect(r);
    const other = { ...client, port: 40001 };
    r.router.onDatagram(tunnel(other, check('ufrag-a', SERVER_PWD)), relayA, 5_000);
    assert.equal(r.router.clientCount, 2);
    r.router.expireClients(10_000, 6_000);
    assert.equal(r.router.clientCount, 1, 'the client idle for 10 s expired, the other stays');
    assert.equal(r.router.currentPath(r.session), undefined, 'the expired path was the validated one');
    r.router.removeSession(r.session, 10_000);
    assert.equal(r.router.clientCount, 0);
    assert.equal(
      r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 0),
      'stun_unknown_ufrag',
    );
  });

  test("an ended session's client is refused (403) from its media address, for 30 s, a few times", () => {
    const r = rig();
    connect(r);
    r.router.removeSession(r.session, 1_000);
    const sentBefore = r.sent.length;
    const probe = check('ufrag-a', SERVER_PWD);
    assert.equal(r.router.onDatagram(tunnel(client, probe), relayA, 2_000), 'stun_call_ended');
    const [refusal] = r.sent.slice(sentBefore);
    assert.deepEqual(refusal?.client, client);
    assert.deepEqual(refusal?.relay, relayA);
    const parsed = parseStun(refusal!.payload);
    assert.ok(parsed.ok);
    assert.equal(parsed.message.type, StunType.BindingError);
    assert.deepEqual(parsed.message.transactionId, probe.subarray(8, 20), 'the check it answers');
    assert.deepEqual(decodeErrorCode(findAttribute(parsed.message, StunAttr.ErrorCode)!.value)?.code, 403);
    assert.ok(verifyMessageIntegrity(parsed.message, SERVER_PWD), "keyed with the session's password");
    assert.ok(verifyFingerprint(parsed.message));
    assert.deepEqual(r.session.stun.length, 1, 'the ended session hears nothing');
    // Not from another address (no reflection toward a victim), not unverified.
    const stranger = { ...client, port: 40009 };
    assert.equal(
      r.router.onDatagram(tunnel(stranger, check('ufrag-a', SERVER_PWD)), relayA, 2_001),
      'stun_unknown_ufrag',
    );
    assert.equal(
      r.router.onDatagram(tunnel(client, check('ufrag-a', 'wrong-password-0123456789')), relayA, 2_002),
      'stun_bad_integrity',
    );
    assert.equal(r.sent.length, sentBefore + 1);
    // At most 8 refusals, then silence; forgotten after 30 s.
    for (let i = 0; i < 20; i++)
      r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 3_000 + i);
    assert.equal(r.sent.length, sentBefore + 8);
    assert.equal(
      r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 31_001),
      'stun_unknown_ufrag',
    );
    r.router.expireClients(31_001, 60_000);
    assert.equal(
      r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 2_000),
      'stun_unknown_ufrag',
      'forgotten',
    );
  });

  test('a session that ended before its path was validated leaves nothing to refuse', () => {
    const r = rig();
    assert.equal(r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 0), undefined);
    r.router.removeSession(r.session, 10);
    const sentBefore = r.sent.length;
    assert.equal(
      r.router.onDatagram(tunnel(client, check('ufrag-a', SERVER_PWD)), relayA, 20),
      'stun_unknown_ufrag',
    );
    assert.equal(r.sent.length, sentBefore);
  });
});

describe('TunnelRouter with ICE-TCP clients', () => {
  test('a TCP client is a path of its own, apart from a UDP client of the same address and port', () => {
    const r = rig();
    const overTcp: TransportAddress = { ...client, transport: 'tcp' };
    connect(r, overTcp);
    assert.deepEqual(r.router.currentPath(r.session), overTcp);
    assert.ok(
      challengesTo(r.sent, client).every((item) => item.client.transport === 'tcp'),
      'the challenge went back over TCP',
    );
    // Media from the same address and port over UDP is not the TCP client's.
    assert.equal(r.router.onDatagram(tunnel(client, Buffer.from([23, 1])), relayA, 5), 'unknown_client');
    assert.equal(r.router.onDatagram(tunnel(overTcp, Buffer.from([23, 1])), relayA, 6), undefined);
    assert.ok(r.router.sendData(r.session, Buffer.from([0x80, 1])));
    assert.equal(r.sent.at(-1)!.client.transport, 'tcp', 'media goes back over TCP');
    assert.ok(r.router.sendStun(r.session, overTcp, Buffer.from([1, 1, 0, 0])));
    assert.equal(r.router.sendStun(r.session, client, Buffer.from([1, 1, 0, 0])), false, 'no UDP path');
  });
});

describe("TunnelRouter: a NAT rebinding found by the client's SRTP", () => {
  const rtp = (ssrc: number, seq: number) => rtpPacket(72, { ssrc, seq });

  /** A connected client that has sent RTP with `ssrc` on its validated path. */
  function talking(ssrc = 0xabcd) {
    const r = rig();
    connect(r);
    assert.equal(r.router.onDatagram(tunnel(client, rtp(ssrc, 1)), relayA, 10), undefined);
    return r;
  }

  test('verified SRTP from a new address is delivered, binds it and challenges it; the answer moves the media there', () => {
    const r = talking();
    const fromMoved = rtp(0xabcd, 2);
    r.session.genuine.add(fromMoved.toString('hex'));
    const delivered = r.session.data.length;
    assert.equal(r.router.onDatagram(tunnel(moved, fromMoved), relayB, 100), undefined);
    assert.equal(r.session.data.length, delivered + 1, 'the packet itself is audio: delivered');
    assert.equal(r.router.mediaPathsBound, 1);
    assert.deepEqual(r.router.currentPath(r.session), client, 'not before the new path answers');
    const [challenge] = challengesTo(r.sent, moved);
    assert.ok(challenge, 'challenged at once');
    assert.deepEqual(challenge.relay, relayB, 'through the relay the packet came from');
    // Until then the media still goes to the validated path; then to the new one.
    r.router.sendData(r.session, Buffer.from([0x80, 111, 0, 3]));
    assert.deepEqual(r.sent.at(-1)!.client, client);
    assert.equal(r.router.onDatagram(tunnel(moved, answer(challenge.payload)), relayB, 130), undefined);
    assert.deepEqual(r.router.currentPath(r.session), moved);
    r.router.sendData(r.session, Buffer.from([0x80, 111, 0, 4]));
    assert.deepEqual(r.sent.at(-1)!.client, moved);
    // Later packets from there are the bound address's: no verification.
    const verifications = r.session.verifications;
    assert.equal(r.router.onDatagram(tunnel(moved, rtp(0xabcd, 3)), relayB, 140), undefined);
    assert.equal(r.session.verifications, verifications);
  });

  test("media that does not verify, or names no session's SSRC, binds nothing and sends nothing", () => {
    const r = talking();
    const sentBefore = r.sent.length;
    assert.equal(r.router.onDatagram(tunnel(moved, rtp(0xabcd, 2)), relayB, 100), 'media_candidate_rejected');
    assert.equal(r.router.onDatagram(tunnel(moved, rtp(0x1111, 2)), relayB, 100), 'unknown_client');
    assert.equal(r.router.onDatagram(tunnel(moved, Buffer.from([23, 1, 2])), relayB, 100), 'unknown_client');
    assert.equal(r.router.clientCount, 1);
    assert.equal(r.sent.length, sentBefore, 'not even a challenge');
    assert.equal(r.router.mediaPathsBound, 0);
  });

  test('verifications are rate-limited per session (they cost a cipher operation)', () => {
    const r = talking();
    let limited = 0;
    for (let i = 0; i < 200; i++) {
      const reason = r.router.onDatagram(tunnel(moved, rtp(0xabcd, 2 + i)), relayB, 100);
      if (reason === 'media_candidate_rate_limited') limited++;
    }
    assert.ok(limited >= 90, `limited ${limited} of 200 in one instant`);
    assert.ok(r.session.verifications <= 110);
  });

  test('SRTP on the validated path that the session refuses is a counted drop and keeps nothing alive', () => {
    const r = talking();
    const activity = r.session.activity;
    const forged = rtp(0xabcd, 2);
    r.session.forged.add(forged.toString('hex'));
    assert.equal(r.router.onDatagram(tunnel(client, forged), relayA, 100), 'srtp_rejected');
    assert.equal(r.router.drops.get('srtp_rejected'), 1);
    assert.equal(r.session.activity, activity, 'not activity of the client');
    assert.equal(r.router.onDatagram(tunnel(client, rtp(0xabcd, 3)), relayA, 120), undefined);
    assert.equal(r.session.activity, activity + 1);
  });

  test("an ended session's SSRC names nothing", () => {
    const r = talking();
    r.router.removeSession(r.session, 50);
    const late = rtp(0xabcd, 2);
    r.session.genuine.add(late.toString('hex'));
    assert.equal(r.router.onDatagram(tunnel(moved, late), relayB, 100), 'unknown_client');
  });
});
