// The patches in patches/ (applied by `npm install` through patch-package) each fix one problem of
// the pinned werift; each test here fails if its patch stops applying or stops working.
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { p256 } from '@noble/curves/p256';
import nacl from 'tweetnacl';
import {
  Candidate,
  CandidatePair,
  CipherContext,
  DtlsClient,
  DtlsServer,
  Event,
  GenericNack,
  getBit,
  HashAlgorithm,
  NamedCurveAlgorithm,
  NamedCurveAlgorithmList,
  ntpTime,
  ntpTime2Sec,
  ntpTimeToEpochMs,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  type Protocol,
  RTCCertificate,
  RTCDtlsParameters,
  RTCDtlsTransport,
  RTCPeerConnection,
  RtcpTransportLayerFeedback,
  RtpHeader,
  RtpPacket,
  SignatureAlgorithm,
  SrtcpSession,
  SrtpSession,
  useNACK,
  useOPUS,
} from 'werift';

/** What 003 and 007 add to werift's DTLS socket, and the cipher its records go through. */
interface DtlsSocketWithClose {
  closeNotify(level?: 1 | 2): Promise<void>;
  cipher: unknown;
}

describe('werift patches', () => {
  test('001 bound-incoming-transaction-ids: a candidate pair remembers recent check IDs only', () => {
    const remote = new Candidate('f', 1, 'udp', 1, '198.51.100.7', 40000, 'prflx');
    const pair = new CandidatePair({} as Protocol, remote, false);
    for (let index = 0; index < 10_000; index++) pair.noteIncomingRequest(`id-${index}`);
    // Unpatched: all 10,000 stay for the pair's life (a check flood grows memory without bound).
    const kept = (pair as unknown as { requestTransactionIds: Set<string> }).requestTransactionIds.size;
    assert.ok(kept <= 257, `${kept} IDs kept`);
    assert.equal(pair.noteIncomingRequest('id-9999'), true, 'a recent retransmission is still recognised');
    assert.equal(pair.noteIncomingRequest('id-0'), false, 'an ID long gone is new again');
  });

  test('002 srtp-cipher-key-object: SRTP/SRTCP ciphers use a key imported once per session', () => {
    for (const profile of [ProtectionProfileAes128CmHmacSha1_80, ProtectionProfileAeadAes128Gcm]) {
      const keyLength = 16;
      const saltLength = profile === ProtectionProfileAeadAes128Gcm ? 12 : 14;
      const a = { key: randomBytes(keyLength), salt: randomBytes(saltLength) };
      const b = { key: randomBytes(keyLength), salt: randomBytes(saltLength) };
      const keys = (local: typeof a, remote: typeof a) => ({
        keys: {
          localMasterKey: local.key,
          localMasterSalt: local.salt,
          remoteMasterKey: remote.key,
          remoteMasterSalt: remote.salt,
        },
        profile,
      });
      const sender = new SrtpSession(keys(a, b));
      const receiver = new SrtpSession(keys(b, a));
      const senderRtcp = new SrtcpSession(keys(a, b));
      const receiverRtcp = new SrtcpSession(keys(b, a));
      // The raw key bytes kept beside the imported key are overwritten: a cipher still built from
      // them per packet (unpatched) encrypts with garbage and the receiver's authentication fails.
      for (const session of [sender, senderRtcp]) {
        const cipher = (session.localContext as unknown as { cipher: Record<string, unknown> }).cipher;
        cipher.srtpSessionKey = Buffer.alloc(keyLength, 0xee);
        cipher.srtcpSessionKey = Buffer.alloc(keyLength, 0xee);
      }
      const payload = randomBytes(60);
      const header = new RtpHeader({ sequenceNumber: 7, timestamp: 960, ssrc: 1234, payloadType: 111 });
      const decrypted = receiver.decrypt(sender.encrypt(payload, header));
      assert.deepEqual(decrypted.subarray(decrypted.length - payload.length), payload, `profile ${profile}`);
      const rtcp = Buffer.concat([Buffer.from([0x81, 201, 0, 7]), randomBytes(28)]);
      assert.deepEqual(receiverRtcp.decrypt(senderRtcp.encrypt(rtcp)), rtcp, `profile ${profile} RTCP`);
    }
  });

  /** Two werift peers connected over loopback UDP (real ICE and DTLS). */
  async function connectedPair(opus = useOPUS()): Promise<[RTCPeerConnection, RTCPeerConnection]> {
    const peer = () =>
      new RTCPeerConnection({
        iceUseIpv4: true,
        iceUseIpv6: false,
        iceAdditionalHostAddresses: ['127.0.0.1'],
        codecs: { audio: [opus], video: [] },
      });
    const gathered = (pc: RTCPeerConnection) =>
      new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        else pc.iceGatheringStateChange.subscribe((state) => state === 'complete' && resolve());
      });
    const offerer = peer();
    const answerer = peer();
    offerer.addTransceiver('audio', { direction: 'sendrecv' });
    await offerer.setLocalDescription(await offerer.createOffer());
    await gathered(offerer);
    await answerer.setRemoteDescription(offerer.localDescription!);
    await answerer.setLocalDescription(await answerer.createAnswer());
    await gathered(answerer);
    await offerer.setRemoteDescription(answerer.localDescription!);
    const deadline = Date.now() + 10_000;
    while (offerer.connectionState !== 'connected' || answerer.connectionState !== 'connected') {
      if (Date.now() > deadline) {
        await offerer.close();
        await answerer.close();
        assert.fail('the two peers did not connect');
      }
      await sleep(10);
    }
    return [offerer, answerer];
  }

  test('003 dtls-close-notify: a peer that closes tells the other at once (close_notify)', async () => {
    const [offerer, answerer] = await connectedPair();
    try {
      // Both sides of the DTLS association: the one that closes is the server on one run and the
      // client on the other, whatever role the ICE negotiation gave each.
      const [transport] = answerer.dtlsTransports;
      const closed = new Promise<number>((resolve) =>
        transport!.onStateChange.subscribe((state) => state === 'closed' && resolve(performance.now())),
      );
      const closing = performance.now();
      await offerer.close();
      // Unpatched, nothing tells the answerer: its DTLS stays connected until ICE consent fails.
      const at = await Promise.race([closed, sleep(3_000).then(() => undefined)]);
      assert.ok(
        at !== undefined,
        "the answerer's DTLS transport is still connected 3 s after the offerer closed",
      );
      assert.ok(at - closing < 1_000, `closed ${at - closing} ms after`);
    } finally {
      await offerer.close();
      await answerer.close();
    }
  });

  test('007 dtls-close-notify-level: close_notify at the level asked for, and only once', async () => {
    const [offerer, answerer] = await connectedPair();
    try {
      // The alert records the closing side encrypts, seen in plaintext (content type 21).
      const socket = (offerer.dtlsTransports[0] as unknown as { dtls: DtlsSocketWithClose }).dtls;
      const alerts: number[][] = [];
      const cipher = socket.cipher as {
        encryptPacket(pkt: { recordLayerHeader: { contentType: number }; fragment: Buffer }): unknown;
      };
      const encrypt = cipher.encryptPacket.bind(cipher);
      cipher.encryptPacket = (pkt) => {
        if (pkt.recordLayerHeader.contentType === 21) alerts.push([...pkt.fragment]);
        return encrypt(pkt);
      };
      await socket.closeNotify(2);
      await socket.closeNotify(2);
      await offerer.close();
      // Unpatched, the level is ignored (warning, 1) and every call sends one more close_notify.
      assert.deepEqual(alerts, [[2, 0]], 'one close_notify (description 0), fatal (level 2)');
    } finally {
      await offerer.close();
      await answerer.close();
    }
  });

  test('008 dtls-fatal-alert-ends-connection: a fatal alert closes the connection that receives it', async () => {
    const [offerer, answerer] = await connectedPair();
    try {
      const [transport] = answerer.dtlsTransports;
      const closed = new Promise<void>((resolve) =>
        transport!.onStateChange.subscribe((state) => state === 'closed' && resolve()),
      );
      const socket = (offerer.dtlsTransports[0] as unknown as { dtls: DtlsSocketWithClose }).dtls;
      await socket.closeNotify(2);
      await Promise.race([closed, sleep(3_000)]);
      // Unpatched, werift throws the fatal alert away and stays connected (RFC 5246 §7.2: both
      // parties close the connection on a fatal alert).
      assert.equal(transport!.state, 'closed', `the receiver's DTLS transport is ${transport!.state}`);
    } finally {
      await offerer.close();
      await answerer.close();
    }
  });

  test('004 dtls-server-flight5-loss: a handshake recovers whichever records of flight 5 are lost', async () => {
    const certificate = await CipherContext.createSelfSignedCertificateWithKey(
      { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
      NamedCurveAlgorithm.secp256r1_23,
    );
    // The client's first flight 5 with records missing, as a lossy path delivers it (the
    // retransmission arrives whole). Unpatched, the server derives the keys again from each copy
    // of the ClientKeyExchange over whatever it holds by then, and the two ends never agree.
    for (const lost of [['finished'], ['certificate-verify'], ['client-key-exchange'], ['certificate']]) {
      const result = await dtlsHandshake(
        certificate,
        (from, record, copy) => from === 'client' && copy === 1 && lost.includes(record),
      );
      assert.ok(result.connected, `lost ${lost.join(' + ')}: not connected after ${result.ms} ms`);
      assert.deepEqual(
        result.received,
        ['to server', 'to client'],
        `lost ${lost.join(' + ')}: application data`,
      );
    }
  });

  test('005 dtls-client-flight4-complete: flight 5 is built from the whole of flight 4, whatever copy brought each part', async () => {
    const certificate = await CipherContext.createSelfSignedCertificateWithKey(
      { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
      NamedCurveAlgorithm.secp256r1_23,
    );
    // The first ServerHello is lost, so the rest of the first flight 4 waits; the retransmission
    // loses its CertificateRequest. Unpatched, the second ServerHelloDone builds flight 5 before the
    // first CertificateRequest is handled: no Certificate in it, and the server waits for one forever.
    const result = await dtlsHandshake(
      certificate,
      (from, record, copy) =>
        from === 'server' &&
        ((record === 'server-hello' && copy === 1) || (record === 'certificate-request' && copy === 2)),
    );
    assert.ok(result.connected, `not connected after ${result.ms} ms`);
    assert.deepEqual(result.received, ['to server', 'to client']);
  });

  test('006 dtls-record-sequence-after-finished: each epoch-1 record has a number of its own', async () => {
    const certificate = await CipherContext.createSelfSignedCertificateWithKey(
      { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
      NamedCurveAlgorithm.secp256r1_23,
    );
    const sent: { from: string; epoch: number; seq: number }[] = [];
    const result = await dtlsHandshake(certificate, () => false, {
      messages: 12,
      onRecord: (from, epoch, seq) => sent.push({ from, epoch, seq }),
    });
    assert.ok(result.connected);
    for (const from of ['client', 'server']) {
      // The Finished, then 12 application-data records. Unpatched, the numbers restart after the
      // Finished and one of them repeats the Finished's: a replay to the peer, and the same AES-GCM
      // nonce twice under one key.
      const numbers = sent.filter((r) => r.from === from && r.epoch === 1).map((r) => r.seq);
      assert.equal(numbers.length, 13, `${from}: ${numbers}`);
      assert.equal(new Set(numbers).size, numbers.length, `${from} repeats a number: ${numbers}`);
      assert.ok(
        numbers.every((seq, index) => index === 0 || seq > numbers[index - 1]!),
        `${from}: ${numbers}`,
      );
    }
  });

  test('009 getbit-without-strings: RTP headers are parsed without turning bytes into strings', () => {
    for (let byte = 0; byte < 256; byte++)
      for (let start = 0; start < 8; start++)
        for (let length = 1; start + length <= 8; length++) {
          const expected = Number.parseInt(
            byte
              .toString(2)
              .padStart(8, '0')
              .slice(start, start + length),
            2,
          );
          assert.equal(getBit(byte, start, length), expected, `getBit(${byte}, ${start}, ${length})`);
        }
    // Unpatched, every bit field read converts its byte to a binary string (six per RTP header).
    const header = Buffer.from([
      0x90, 0xef, 0x12, 0x34, 0, 0, 0x03, 0xc0, 0xde, 0xad, 0xbe, 0xef, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0,
    ]);
    const numberToString = Number.prototype.toString;
    let conversions = 0;
    Number.prototype.toString = function (this: number, radix?: number) {
      conversions++;
      return numberToString.call(this, radix);
    };
    let parsed: RtpHeader;
    try {
      parsed = RtpHeader.deSerialize(header);
    } finally {
      Number.prototype.toString = numberToString;
    }
    assert.equal(conversions, 0, `${conversions} number-to-string conversions parsing one header`);
    assert.deepEqual(
      [
        parsed.version,
        parsed.padding,
        parsed.extension,
        parsed.csrcLength,
        parsed.marker,
        parsed.payloadType,
      ],
      [2, false, true, 0, true, 111],
    );
    assert.equal(parsed.sequenceNumber, 0x1234);
  });

  test('010 event-execute-without-async-subscribers: an event with synchronous subscribers only makes no promise', async () => {
    const event = new Event<[number]>();
    let total = 0;
    event.subscribe((value) => {
      total += value;
    });
    let promises = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'PROMISE') promises++;
      },
    }).enable();
    try {
      for (let index = 0; index < 100; index++) event.execute(1);
    } finally {
      hook.disable();
    }
    assert.equal(total, 100);
    // Unpatched: one async function started per emit, for nothing.
    assert.equal(promises, 0, `${promises} promises for 100 emits`);
    // Async subscribers still run, after the synchronous ones, one after the other.
    const order: string[] = [];
    const mixed = new Event<[string]>();
    mixed.queuingSubscribe(async (value) => {
      await sleep(5);
      order.push(`async ${value}`);
    });
    mixed.subscribe((value) => order.push(`sync ${value}`));
    mixed.execute('a');
    assert.deepEqual(order, ['sync a']);
    await sleep(20);
    assert.deepEqual(order, ['sync a', 'async a']);
  });
  test('011 ntp-timestamp-format: NTP timestamps carry a binary fraction of a second (RFC 3550 §4)', async () => {
    const ntpEpoch = Date.UTC(1900, 0, 1);
    // 2026-01-01T00:00:00.5Z: the fraction is half of 2^32.
    const halfPast = (BigInt((Date.UTC(2026, 0, 1) - ntpEpoch) / 1000) << 32n) | 0x80000000n;
    assert.equal(ntpTimeToEpochMs(halfPast), Date.UTC(2026, 0, 1) + 500);
    assert.equal(ntpTime2Sec(halfPast), (Date.UTC(2026, 0, 1) - ntpEpoch) / 1000 + 0.5);
    // Unpatched, the decimal digits of the fraction were written as the binary fraction: 0.5 s as 5.
    for (let sample = 0; sample < 10; sample++) {
      const ntp = ntpTime();
      const ms = Number(ntp >> 32n) * 1000 + (Number(ntp & 0xffffffffn) / 2 ** 32) * 1000 + ntpEpoch;
      assert.ok(Math.abs(ms - Date.now()) < 5, `sample ${sample}: NTP says ${ms}, the clock ${Date.now()}`);
      await sleep(37);
    }
  });
  test('014 rtp-history-only-with-nack: sent packets are kept for retransmission only when NACK is negotiated', async () => {
    /** Sends 10 packets, then asks for the first again; the sequence numbers the receiver saw. */
    const sendAndNack = async (opus: ReturnType<typeof useOPUS>) => {
      const [offerer, answerer] = await connectedPair(opus);
      try {
        const sender = offerer.getTransceivers()[0]!.sender;
        const [receiving] = answerer.dtlsTransports;
        const seen: number[] = [];
        receiving!.onRtp.subscribe((rtp) => seen.push(rtp.header.sequenceNumber));
        for (let index = 0; index < 10; index++) {
          const header = new RtpHeader({
            sequenceNumber: 1000 + index,
            timestamp: 960 * index,
            payloadType: 111,
          });
          await sender.sendRtp(new RtpPacket(header, Buffer.alloc(80, index)));
        }
        const deadline = Date.now() + 2_000;
        while (seen.length < 10 && Date.now() < deadline) await sleep(5);
        assert.equal(seen.length, 10, `${seen.length} of 10 packets arrived`);
        const first = seen[0]!;
        await receiving!.sendRtcp([
          new RtcpTransportLayerFeedback({
            feedback: new GenericNack({ senderSsrc: 1, mediaSourceSsrc: sender.ssrc, lost: [first] }),
          }),
        ]);
        await sleep(300);
        return { keeps: sender.keepsRtpHistory, resent: seen.slice(10) };
      } finally {
        await offerer.close();
        await answerer.close();
      }
    };
    // Without NACK for the codec (audio, as browsers negotiate it) no peer asks for a packet again:
    // unpatched, the sender kept its last 128 anyway, each one living seconds for nothing.
    const plain = await sendAndNack(useOPUS());
    assert.deepEqual(plain.resent, [], 'a packet kept and sent again although NACK was not negotiated');
    assert.equal(plain.keeps, false);
    // With NACK negotiated the history is kept and a lost packet is sent again.
    const withNack = await sendAndNack(useOPUS({ rtcpFeedback: [useNACK()] }));
    assert.equal(withNack.keeps, true);
    assert.equal(withNack.resent.length, 1, 'the packet asked for again was not sent again');
  });

  test('012 dtls-ecdhe-node-crypto: the key exchange runs in node:crypto, with either curve', async () => {
    const certificate = await CipherContext.createSelfSignedCertificateWithKey(
      { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
      NamedCurveAlgorithm.secp256r1_23,
    );
    // werift's own pure-JavaScript curves (tweetnacl's X25519, @noble/curves' P-256), watched:
    // unpatched, each handshake calls them for both ends' key pairs and secrets (milliseconds each).
    const calls: string[] = [];
    const watch = <T extends object, K extends keyof T>(owner: T, name: K, label: string) => {
      const original = owner[name] as (...args: unknown[]) => unknown;
      owner[name] = ((...args: unknown[]) => {
        calls.push(label);
        return original.apply(owner, args);
      }) as T[K];
      return () => {
        owner[name] = original as T[K];
      };
    };
    const restore = [
      watch(nacl, 'scalarMult', 'tweetnacl scalarMult'),
      watch(nacl.box, 'keyPair', 'tweetnacl keyPair'),
      watch(p256, 'getSharedSecret', 'noble getSharedSecret'),
      watch(p256, 'getPublicKey', 'noble getPublicKey'),
    ];
    const preference = [...NamedCurveAlgorithmList];
    try {
      // The server takes the first curve of the client's list: X25519 as werift lists them, then P-256.
      for (const first of [NamedCurveAlgorithm.x25519_29, NamedCurveAlgorithm.secp256r1_23]) {
        NamedCurveAlgorithmList.sort((a, b) => (a === first ? -1 : b === first ? 1 : 0));
        const result = await dtlsHandshake(certificate, () => false);
        assert.ok(result.connected, `curve ${first}: not connected after ${result.ms} ms`);
        assert.deepEqual(result.received, ['to server', 'to client'], `curve ${first}: application data`);
      }
    } finally {
      NamedCurveAlgorithmList.splice(0, NamedCurveAlgorithmList.length, ...preference);
      for (const undo of restore) undo();
    }
    assert.deepEqual(calls, [], 'pure-JavaScript curve operations during the handshakes');
  });
  test('013 dtls-start-without-delay: a client sends its first flight at once; a server keeps what came before it started', async () => {
    const certificate = await CipherContext.createSelfSignedCertificateWithKey(
      { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
      NamedCurveAlgorithm.secp256r1_23,
    );
    const local = new RTCCertificate(certificate.keyPem, certificate.certPem, certificate.signatureHash);
    // werift's ICE connection as the DTLS transport uses it: what it sends (to `peer` once set), and
    // an event that delivers.
    interface FakeConnection {
      sent: Buffer[];
      peer: FakeConnection | undefined;
      onData: Event<[Buffer]>;
      send(data: Buffer): Promise<void>;
    }
    const iceTransport = () => {
      const connection: FakeConnection = {
        sent: [],
        peer: undefined,
        onData: new Event<[Buffer]>(),
        send: async (data) => {
          connection.sent.push(data);
          const peer = connection.peer;
          if (peer !== undefined) setImmediate(() => peer.onData.execute(data));
        },
      };
      return { connection, stop: async () => {} };
    };
    const dtlsTransport = (ice: ReturnType<typeof iceTransport>, role: 'client' | 'server') => {
      const transport = new RTCDtlsTransport({} as never, ice as never, local, []);
      // Both ends hold the same certificate: each expects the other's fingerprint to be its own.
      transport.setRemoteParams(new RTCDtlsParameters(local.getFingerprints(), 'auto'));
      transport.role = role;
      return transport;
    };
    const clientIce = iceTransport();
    const serverIce = iceTransport();
    const client = dtlsTransport(clientIce, 'client');
    const server = dtlsTransport(serverIce, 'server');
    try {
      const clientStarted = client.start();
      await new Promise((resolve) => setImmediate(resolve));
      // Unpatched, the client waits 100 ms after ICE connects before its ClientHello.
      const clientHello = clientIce.connection.sent[0];
      assert.ok(clientHello !== undefined, 'no ClientHello right after start()');
      assert.deepEqual([clientHello[0], clientHello[13]], [22, 1], 'a handshake record: ClientHello');
      // It reaches the server before the server has started (its ICE connected a moment later).
      serverIce.connection.onData.execute(clientHello);
      clientIce.connection.peer = serverIce.connection;
      serverIce.connection.peer = clientIce.connection;
      const serverStarted = server.start();
      // Unpatched, the early ClientHello was lost and the client repeats it only 500 ms later.
      const connected = await Promise.race([
        Promise.all([clientStarted, serverStarted]).then(() => true),
        sleep(400).then(() => false),
      ]);
      assert.ok(connected, `not connected within 400 ms: client ${client.state}, server ${server.state}`);
    } finally {
      await client.stop();
      await server.stop();
    }
  });
});

const HANDSHAKE_NAMES: Record<number, string> = {
  2: 'server-hello',
  11: 'certificate',
  12: 'server-key-exchange',
  13: 'certificate-request',
  14: 'server-hello-done',
  15: 'certificate-verify',
  16: 'client-key-exchange',
};

/** The record a handshake datagram carries (one record each, as werift sends them), else 'other'. */
function recordOf(datagram: Buffer): string {
  if (datagram[0] !== 22) return 'other';
  if (datagram.readUInt16BE(3) === 1) return 'finished'; // encrypted: epoch 1
  return HANDSHAKE_NAMES[datagram[13]!] ?? 'other';
}

/**
 * A werift DTLS client and server over an in-memory path that drops the copies `drop` names (the
 * `copy`th time `from` sends that record, from 1); resolves when both ends are connected and
 * application data crossed both ways, or after 4 s (two retransmissions).
 */
async function dtlsHandshake(
  certificate: Awaited<ReturnType<typeof CipherContext.createSelfSignedCertificateWithKey>>,
  drop: (from: 'client' | 'server', record: string, copy: number) => boolean,
  options: {
    /** Application-data messages each way once connected (default 1). */
    messages?: number;
    /** Every record that leaves an end: its epoch and sequence number. */
    onRecord?: (from: 'client' | 'server', epoch: number, seq: number) => void;
  } = {},
): Promise<{ connected: boolean; received: string[]; ms: number }> {
  const copies = new Map<string, number>();
  const receivers: { client?: (data: Buffer) => void; server?: (data: Buffer) => void } = {};
  const path = (from: 'client' | 'server') => ({
    send: async (datagram: Buffer) => {
      for (let offset = 0; offset + 13 <= datagram.length; offset += 13 + datagram.readUInt16BE(offset + 11))
        options.onRecord?.(from, datagram.readUInt16BE(offset + 3), datagram.readUIntBE(offset + 5, 6));
      const record = recordOf(datagram);
      const copy = (copies.get(`${from} ${record}`) ?? 0) + 1;
      copies.set(`${from} ${record}`, copy);
      if (record !== 'other' && drop(from, record, copy)) return;
      setImmediate(() => receivers[from === 'client' ? 'server' : 'client']?.(datagram));
    },
    set onData(receive: (data: Buffer) => void) {
      receivers[from] = receive;
    },
    close: () => {},
  });
  const dtlsOptions = {
    cert: certificate.certPem,
    key: certificate.keyPem,
    signatureHash: certificate.signatureHash,
    extendedMasterSecret: true,
  };
  const server = new DtlsServer({
    ...dtlsOptions,
    transport: path('server') as never,
    certificateRequest: true,
  });
  const client = new DtlsClient({ ...dtlsOptions, transport: path('client') as never });
  let connected = 0;
  server.onConnect.once(() => connected++);
  client.onConnect.once(() => connected++);
  const received: string[] = [];
  server.onData.subscribe((data) => received.push(String(data)));
  client.onData.subscribe((data) => received.push(String(data)));
  const started = performance.now();
  void client.connect().catch(() => {});
  while (connected < 2 && performance.now() - started < 4_000) await sleep(20);
  if (connected === 2) {
    for (let message = 0; message < (options.messages ?? 1); message++) {
      await client.send(Buffer.from('to server'));
      await server.send(Buffer.from('to client'));
    }
    await sleep(50);
  }
  return { connected: connected === 2, received, ms: Math.round(performance.now() - started) };
}
