import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AddressFamily } from '../protocol/address.ts';
import { encodeStun, StunAttr, StunType } from '../protocol/stun.ts';
import {
  encodeTunnelHeader,
  encodeTunnelPacket,
  TUNNEL_HEADER_LENGTH_V4,
  TUNNEL_HEADER_LENGTH_V6,
} from '../protocol/tunnel.ts';
import {
  base32Decode,
  base32Encode,
  deriveIcePassword,
  encodeUfrag,
  NONCE_BYTES,
  newUfrag,
  type RoutingKey,
  RoutingKeyring,
  UFRAG_LENGTH,
} from '../protocol/ufrag.ts';
import { rtpPacket } from '../test/support/ice.ts';
import { DROP_REASONS, type DropReason, dropSlotOf, newCounters, SLOT } from './counters.ts';
import { type Flow, FlowTable } from './flow-table.ts';
import { type PathCandidate, PathCandidates } from './path-candidates.ts';
import {
  type ClientDecision,
  DRAIN_CLOCK_TOLERANCE_S,
  FLOW_STUN_BURST,
  FLOW_STUN_PER_SECOND,
  LookupRequest,
  RelayCore,
} from './relay-core.ts';
import { Routes } from './routes.ts';
import { SourceRateLimiter } from './source-rate-limiter.ts';

const CLUSTER = 7;
const KEY1: RoutingKey = { id: 1, secret: Buffer.alloc(32, 0x11) };
const KEY2: RoutingKey = { id: 2, secret: Buffer.alloc(32, 0x22) };
const KEY9: RoutingKey = { id: 9, secret: Buffer.alloc(32, 0x99) };
const KEYRING1 = new RoutingKeyring([KEY1]);

/** 2026-03-14T15:09:26Z: when ufragFor's sessions were issued unless a test says otherwise. */
const ISSUED_AT = 1_773_500_966;
/** When makeRoutes' tables are seen (ms): an hour after ISSUED_AT. */
const SEEN_AT_MS = (ISSUED_AT + 3600) * 1000;

type RouteSpec = {
  id: number;
  port: number;
  state?: 'active' | 'draining';
  drainingSince?: number;
  address?: string;
};

function makeRoutes(
  generation: number,
  specs: readonly RouteSpec[],
  nowMs = SEEN_AT_MS,
  previous?: Routes,
): Routes {
  return new Routes(
    {
      generation,
      transceivers: specs.map((spec) => ({
        id: spec.id,
        tunnel: { family: 4, address: spec.address ?? '10.0.0.1', port: spec.port },
        state: spec.state ?? 'active',
        ...(spec.drainingSince === undefined ? {} : { drainingSince: spec.drainingSince }),
      })),
    },
    nowMs,
    previous,
  );
}

/** Three transceivers on 10.0.0.1:4001..4003. */
const THREE = makeRoutes(1, [
  { id: 1, port: 4001 },
  { id: 2, port: 4002 },
  { id: 3, port: 4003 },
]);

interface Harness {
  core: RelayCore;
  flows: FlowTable;
  limiter: SourceRateLimiter;
  counters: Float64Array;
}

function makeCore(
  options: {
    routes?: Routes;
    keyring?: RoutingKeyring;
    maxFlows?: number;
    idleTimeoutMs?: number;
    perSecond?: number;
    recovery?: boolean;
    /** Flow cache lookups per source IP per second (default 5, the config's). */
    lookupsPerSource?: number;
  } = {},
): Harness {
  const flows = new FlowTable({
    maxFlows: options.maxFlows ?? 1000,
    idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
  });
  const limiter = new SourceRateLimiter(options.perSecond ?? 100);
  const counters = newCounters();
  const core = new RelayCore({
    clusterId: CLUSTER,
    keyring: options.keyring ?? KEYRING1,
    routes: options.routes ?? THREE,
    flows,
    newFlowLimiter: limiter,
    counters,
    recovery: options.recovery ?? false,
    lookups: {
      maxConcurrent: 256,
      lookupsPerSourcePerSecond: options.lookupsPerSource ?? 5,
      negativeCacheMs: 5_000,
    },
  });
  return { core, flows, limiter, counters };
}

function ufragFor(
  transceiverId: number,
  key: RoutingKey = KEY1,
  clusterId = CLUSTER,
  issuedAt = ISSUED_AT,
): string {
  return encodeUfrag(
    { clusterId, transceiverId, keyId: key.id, issuedAt, nonce: randomBytes(NONCE_BYTES) },
    key,
  );
}

/** The ufrag with its last (tag) character replaced. */
function withTamperedTag(ufrag: string): string {
  const last = ufrag.length - 1;
  return `${ufrag.slice(0, last)}${ufrag[last] === 'a' ? 'b' : 'a'}`;
}

interface RequestOptions {
  type?: number;
  /** Key whose derived password signs MESSAGE-INTEGRITY; null: no MESSAGE-INTEGRITY. Default KEY1. */
  key?: RoutingKey | null;
  /** Overrides the integrity password. */
  password?: string;
  /** Overrides the whole USERNAME; null: no USERNAME. */
  username?: string | null;
}

/** A client's connectivity check: USERNAME serverUfrag:clientUfrag, integrity, fingerprint. */
function bindingRequest(serverUfrag: string, options: RequestOptions = {}): Buffer {
  const key = options.key === undefined ? KEY1 : options.key;
  const username = options.username === undefined ? `${serverUfrag}:cl1e` : options.username;
  const attributes: { type: number; value: Buffer }[] = [];
  if (username !== null) attributes.push({ type: StunAttr.Username, value: Buffer.from(username) });
  const priority = Buffer.alloc(4);
  priority.writeUInt32BE(0x6e7f1eff);
  attributes.push({ type: StunAttr.Priority, value: priority });
  attributes.push({ type: StunAttr.IceControlling, value: randomBytes(8) });
  const integrityKey = options.password ?? (key === null ? undefined : deriveIcePassword(serverUfrag, key));
  return encodeStun({
    type: options.type ?? StunType.BindingRequest,
    transactionId: randomBytes(12),
    attributes,
    ...(integrityKey === undefined ? {} : { integrityKey }),
    fingerprint: true,
  });
}

const DTLS = Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const RTP = Buffer.concat([Buffer.from([0x80, 111]), randomBytes(40)]);

let nextPort = 40_000;
/** A fresh client address (IPv4 unless asked). */
function client(address = '198.51.100.10', family: AddressFamily = 4) {
  return { address, family, port: nextPort++ };
}

function send(
  h: Harness,
  packet: Buffer,
  from: { address: string; family: AddressFamily; port: number },
  now = 1_000,
  socketIndex = 0,
): ClientDecision {
  return h.core.onClientPacket(packet, from.address, from.family, from.port, socketIndex, now);
}

function asFlow(decision: ClientDecision | Flow | DropReason): Flow {
  assert.equal(typeof decision, 'object', `expected a flow, got ${String(decision)}`);
  return decision as Flow;
}

function dropCounts(counters: Float64Array): Record<string, number> {
  return Object.fromEntries(DROP_REASONS.map((reason) => [reason, counters[dropSlotOf(reason)]!]));
}

/** Runs `act`, which must return `reason`, bump exactly that drop slot by one and create no flow. */
function expectDrop(h: Harness, reason: DropReason, act: () => unknown): void {
  const before = dropCounts(h.counters);
  const flowsBefore = h.flows.size;
  const created = h.counters[SLOT.flowsCreatedStun]! + h.counters[SLOT.flowsCreatedRedis]!;
  const forwarded = h.counters[SLOT.packetsToTransceiver]! + h.counters[SLOT.packetsToClient]!;
  assert.equal(act(), reason);
  const after = dropCounts(h.counters);
  assert.deepEqual(after, { ...before, [reason]: before[reason]! + 1 }, `only ${reason} counted`);
  assert.equal(h.flows.size, flowsBefore, 'no flow created or removed');
  assert.equal(h.counters[SLOT.flowsCreatedStun]! + h.counters[SLOT.flowsCreatedRedis]!, created);
  assert.equal(h.counters[SLOT.packetsToTransceiver]! + h.counters[SLOT.packetsToClient]!, forwarded);
}

function totalDrops(counters: Float64Array): number {
  let sum = 0;
  for (const reason of DROP_REASONS) sum += counters[dropSlotOf(reason)]!;
  return sum;
}

describe('RelayCore: new flows from STUN', () => {
  test('a valid Binding request creates a flow to the transceiver its ufrag names, and only that one', () => {
    const h = makeCore();
    for (const id of [1, 2, 3]) {
      const from = client();
      const request = bindingRequest(ufragFor(id));
      const flow = asFlow(send(h, request, from, 5_000, 1));
      assert.equal(flow.route.transceiverId, id);
      assert.deepEqual(flow.route.tunnel, { family: 4, address: '10.0.0.1', port: 4000 + id });
      assert.deepEqual(flow.client, from);
      assert.equal(flow.socketIndex, 1);
      assert.equal(flow.lastSeen, 5_000);
      assert.equal(flow.recordedAt, 0);
      assert.equal(h.flows.get(`${from.address}|${from.port}`), flow);
      // The tunnel header names the client.
      assert.equal(flow.header.length, TUNNEL_HEADER_LENGTH_V4);
      assert.equal(flow.header.readUInt16BE(4), from.port);
    }
    assert.equal(h.flows.size, 3);
    assert.equal(h.counters[SLOT.flows], 3);
    assert.equal(h.counters[SLOT.flowsCreatedStun], 3);
    assert.equal(h.counters[SLOT.packetsToTransceiver], 3);
    assert.equal(totalDrops(h.counters), 0);
  });

  test('IPv6 clients get a flow with an IPv6 tunnel header', () => {
    const h = makeCore();
    const from = client('2001:db8::7', 6);
    const flow = asFlow(send(h, bindingRequest(ufragFor(2)), from));
    assert.equal(flow.header.length, TUNNEL_HEADER_LENGTH_V6);
    assert.deepEqual(flow.client, from);
  });

  test('bytes and packets towards transceivers are counted', () => {
    const h = makeCore();
    const from = client();
    const request = bindingRequest(ufragFor(1));
    send(h, request, from);
    send(h, RTP, from);
    assert.equal(h.counters[SLOT.packetsToTransceiver], 2);
    assert.equal(h.counters[SLOT.bytesToTransceiver], request.length + RTP.length);
  });
});

describe('RelayCore: every client-side drop reason', () => {
  test('unclassified: empty packets and first bytes outside the RFC 7983 ranges', () => {
    const h = makeCore({ recovery: true });
    expectDrop(h, 'unclassified', () => send(h, Buffer.alloc(0), client()));
    // 4..19 (incl. ZRTP), 64..127 (incl. TURN channels), 192..255
    for (const first of [4, 15, 16, 19, 64, 79, 100, 127, 192, 255]) {
      expectDrop(h, 'unclassified', () => send(h, Buffer.from([first, 1, 2, 3]), client()));
    }
  });

  test('unknown_flow: DTLS/RTP from an unknown address without recovery', () => {
    const h = makeCore({ recovery: false });
    expectDrop(h, 'unknown_flow', () => send(h, DTLS, client()));
    expectDrop(h, 'unknown_flow', () => send(h, RTP, client()));
    for (const first of [20, 63, 128, 191]) {
      expectDrop(h, 'unknown_flow', () => send(h, Buffer.from([first, 0, 0]), client()));
    }
  });

  test('malformed_stun: STUN first byte but not a parseable message', () => {
    const h = makeCore();
    const valid = bindingRequest(ufragFor(1));
    const badCookie = Buffer.from(valid);
    badCookie.writeUInt32BE(0xdeadbeef, 4);
    const badLength = Buffer.from(valid);
    badLength.writeUInt16BE(valid.length, 2); // longer than the datagram
    const oddLength = Buffer.from(valid);
    oddLength.writeUInt16BE(valid.length - 20 - 2, 2);
    const badAttribute = Buffer.from(valid);
    badAttribute.writeUInt16BE(0xfff0, 22); // USERNAME length beyond the message
    for (const packet of [
      Buffer.from([0]),
      Buffer.from([1, 1, 0, 0]),
      valid.subarray(0, 19),
      badCookie,
      badLength,
      oddLength,
      badAttribute,
    ]) {
      expectDrop(h, 'malformed_stun', () => send(h, packet, client()));
    }
  });

  test('not_binding_request: indications, success and error responses, other methods', () => {
    const h = makeCore();
    const ufrag = ufragFor(1);
    for (const type of [StunType.BindingIndication, StunType.BindingSuccess, StunType.BindingError, 0x0003]) {
      // Fully valid otherwise: right ufrag, right integrity.
      expectDrop(h, 'not_binding_request', () => send(h, bindingRequest(ufrag, { type }), client()));
    }
  });

  test('no_username: no USERNAME, no colon, empty server part, non-ASCII', () => {
    const h = makeCore();
    const ufrag = ufragFor(1);
    for (const username of [null, ufrag, `:${ufrag}`, `${ufrag} x:y`, `${ufrag}\u00e9:y`]) {
      expectDrop(h, 'no_username', () => send(h, bindingRequest(ufrag, { username }), client()));
    }
  });

  test('bad_ufrag: wrong length, alphabet or version', () => {
    const h = makeCore();
    const valid = ufragFor(1);
    const version2 = Buffer.alloc(25);
    version2[0] = 2;
    version2[1] = KEY1.id;
    version2.writeUInt16BE(CLUSTER, 2);
    version2.writeUInt32BE(1, 4);
    version2.writeUInt32BE(ISSUED_AT, 8);
    assert.equal(valid.length, UFRAG_LENGTH);
    for (const ufrag of [
      'abcd',
      valid.slice(0, UFRAG_LENGTH - 1),
      valid.slice(0, 32), // the length of the layout without the issue time
      `${valid}a`,
      `${valid.slice(0, UFRAG_LENGTH - 1)}1`, // '1' is outside the base32 alphabet
      valid.toUpperCase(),
      base32Encode(version2),
    ]) {
      expectDrop(h, 'bad_ufrag', () => send(h, bindingRequest(ufrag), client()));
    }
  });

  test('unknown_key: a key ID not in the keyring', () => {
    const h = makeCore();
    const ufrag = ufragFor(1, KEY9);
    expectDrop(h, 'unknown_key', () => send(h, bindingRequest(ufrag, { key: KEY9 }), client()));
  });

  test('bad_tag: a tampered or forged tag', () => {
    const h = makeCore();
    const valid = ufragFor(1);
    expectDrop(h, 'bad_tag', () => send(h, bindingRequest(withTamperedTag(valid)), client()));
    // Signed with another secret under the same key ID.
    const forged = ufragFor(1, { id: 1, secret: Buffer.alloc(32, 0x55) });
    expectDrop(h, 'bad_tag', () => send(h, bindingRequest(forged), client()));
    // Re-pointed at another transceiver without re-signing.
    const other = ufragFor(2);
    const spliced = `${other.slice(0, 28)}${valid.slice(28)}`; // payload of 2 (but 4 nonce bits), tag of 1
    expectDrop(h, 'bad_tag', () => send(h, bindingRequest(spliced), client()));
  });

  test('bad_tag: the issue time cannot be changed without the key (no backdating past a drain)', () => {
    const h = makeCore({
      routes: makeRoutes(2, [{ id: 1, port: 4001, state: 'draining', drainingSince: ISSUED_AT }]),
    });
    const late = ufragFor(1, KEY1, CLUSTER, ISSUED_AT + 3600);
    const bytes = base32Decode(late, 25)!;
    bytes.writeUInt32BE(ISSUED_AT - 3600, 8);
    const backdated = base32Encode(bytes);
    expectDrop(h, 'bad_tag', () => send(h, bindingRequest(backdated), client()));
    expectDrop(h, 'transceiver_draining', () => send(h, bindingRequest(late), client()));
  });

  test('wrong_cluster: a valid ufrag of another cluster', () => {
    const h = makeCore();
    const ufrag = ufragFor(1, KEY1, CLUSTER + 1);
    expectDrop(h, 'wrong_cluster', () => send(h, bindingRequest(ufrag), client()));
  });

  test('unknown_transceiver: a valid ufrag naming a transceiver not in the routing table', () => {
    const h = makeCore();
    expectDrop(h, 'unknown_transceiver', () => send(h, bindingRequest(ufragFor(99)), client()));
  });

  test('transceiver_draining: a session issued after drainingSince plus the tolerance gets no flow', () => {
    const drainingSince = ISSUED_AT + 600;
    const h = makeCore({
      routes: makeRoutes(2, [
        { id: 1, port: 4001 },
        { id: 2, port: 4002, state: 'draining', drainingSince },
      ]),
    });
    assert.equal(DRAIN_CLOCK_TOLERANCE_S, 10);
    for (const issuedAt of [
      drainingSince + DRAIN_CLOCK_TOLERANCE_S + 1,
      drainingSince + 86_400,
      0xffffffff,
    ]) {
      expectDrop(h, 'transceiver_draining', () =>
        send(h, bindingRequest(ufragFor(2, KEY1, CLUSTER, issuedAt)), client()),
      );
    }
    // Minted by the transceiver's clock 11 s into the drain (newUfrag takes milliseconds).
    const minted = newUfrag(KEYRING1, { clusterId: CLUSTER, transceiverId: 2 }, (drainingSince + 11) * 1000);
    expectDrop(h, 'transceiver_draining', () => send(h, bindingRequest(minted), client()));
    // An active transceiver takes sessions whenever they were issued.
    for (const issuedAt of [0, drainingSince + 86_400, 0xffffffff]) {
      asFlow(send(h, bindingRequest(ufragFor(1, KEY1, CLUSTER, issuedAt)), client()));
    }
  });

  test('a draining transceiver keeps sessions issued before drainingSince, on new addresses too', () => {
    const drainingSince = ISSUED_AT + 600;
    const h = makeCore();
    // A session that began on this relay while transceiver 2 was active.
    const known = ufragFor(2);
    const first = client();
    const firstFlow = asFlow(send(h, bindingRequest(known), first));
    h.core.setRoutes(
      makeRoutes(2, [
        { id: 1, port: 4001 },
        { id: 2, port: 4002, state: 'draining', drainingSince },
      ]),
    );
    assert.equal(firstFlow.route.state, 'draining');
    assert.equal(send(h, RTP, first), firstFlow);
    // It moves to a new address (NAT rebinding) and gets a flow there.
    const moved = asFlow(send(h, bindingRequest(known), client('192.0.2.40')));
    assert.equal(moved.route.transceiverId, 2);
    assert.equal(moved.route.state, 'draining');
    assert.equal(moved.route.drainingSince, drainingSince);
    assert.equal(h.flows.size, 2);
    // A session this relay has never seen (it began on another worker or relay, or the flow expired):
    // the issue time alone decides, from any address.
    const elsewhere = newUfrag(
      KEYRING1,
      { clusterId: CLUSTER, transceiverId: 2 },
      (drainingSince - 1) * 1000,
    );
    const a = asFlow(send(h, bindingRequest(elsewhere), client('198.51.100.50')));
    const b = asFlow(send(h, bindingRequest(elsewhere), client('203.0.113.60')));
    assert.notEqual(a, b);
    assert.equal(a.route.transceiverId, 2);
    assert.equal(b.route.transceiverId, 2);
    assert.equal(send(h, RTP, a.client), a);
    assert.equal(h.flows.size, 4);
    // Issued long before, even at time 0.
    asFlow(send(h, bindingRequest(ufragFor(2, KEY1, CLUSTER, 0)), client()));
    // Other transceivers still take new sessions.
    asFlow(send(h, bindingRequest(ufragFor(1, KEY1, CLUSTER, drainingSince + 3600)), client()));
  });

  test('transceiver_draining: sessions issued within the clock tolerance of the drain are accepted', () => {
    const drainingSince = ISSUED_AT;
    const h = makeCore({
      routes: makeRoutes(2, [{ id: 2, port: 4002, state: 'draining', drainingSince }]),
    });
    for (const issuedAt of [drainingSince - 1, drainingSince, drainingSince + 1, drainingSince + 10]) {
      const flow = asFlow(send(h, bindingRequest(ufragFor(2, KEY1, CLUSTER, issuedAt)), client()));
      assert.equal(flow.route.transceiverId, 2, String(issuedAt));
    }
    expectDrop(h, 'transceiver_draining', () =>
      send(h, bindingRequest(ufragFor(2, KEY1, CLUSTER, drainingSince + 11)), client()),
    );
    // newUfrag rounds down to whole seconds: 10.999 s into the drain is still within.
    const edge = newUfrag(
      KEYRING1,
      { clusterId: CLUSTER, transceiverId: 2 },
      (drainingSince + 10) * 1000 + 999,
    );
    asFlow(send(h, bindingRequest(edge), client()));
  });

  test('transceiver_draining is decided the same way by relays that share nothing', () => {
    const routes = () =>
      makeRoutes(2, [{ id: 2, port: 4002, state: 'draining', drainingSince: ISSUED_AT + 600 }]);
    const relays = [makeCore({ routes: routes() }), makeCore({ routes: routes() })];
    const before = ufragFor(2, KEY1, CLUSTER, ISSUED_AT);
    const after = ufragFor(2, KEY1, CLUSTER, ISSUED_AT + 600 + DRAIN_CLOCK_TOLERANCE_S + 1);
    for (const h of relays) {
      asFlow(send(h, bindingRequest(before), client()));
      expectDrop(h, 'transceiver_draining', () => send(h, bindingRequest(after), client()));
    }
  });

  test('without drainingSince in the table, the drain dates from when this relay first saw it', () => {
    const seenMs = (ISSUED_AT + 600) * 1000 + 500;
    const specs: RouteSpec[] = [{ id: 2, port: 4002, state: 'draining' }];
    const first = makeRoutes(2, specs, seenMs);
    assert.equal(first.byId(2)?.drainingSince, ISSUED_AT + 600);
    const h = makeCore({ routes: first });
    const atTolerance = ufragFor(2, KEY1, CLUSTER, ISSUED_AT + 600 + DRAIN_CLOCK_TOLERANCE_S);
    const pastTolerance = ufragFor(2, KEY1, CLUSTER, ISSUED_AT + 600 + DRAIN_CLOCK_TOLERANCE_S + 1);
    asFlow(send(h, bindingRequest(atTolerance), client()));
    expectDrop(h, 'transceiver_draining', () => send(h, bindingRequest(pastTolerance), client()));
    // A later table, still without the field, keeps the first sighting rather than moving the drain on.
    h.core.setRoutes(makeRoutes(3, specs, seenMs + 3_600_000, h.core.routes));
    assert.equal(h.core.routes.byId(2)?.drainingSince, ISSUED_AT + 600);
    asFlow(send(h, bindingRequest(atTolerance), client()));
    expectDrop(h, 'transceiver_draining', () => send(h, bindingRequest(pastTolerance), client()));
  });

  test('bad_integrity: missing, wrong-key or wrong-password MESSAGE-INTEGRITY', () => {
    const h = makeCore();
    const ufrag = ufragFor(1);
    expectDrop(h, 'bad_integrity', () => send(h, bindingRequest(ufrag, { key: null }), client()));
    expectDrop(h, 'bad_integrity', () => send(h, bindingRequest(ufrag, { key: KEY2 }), client()));
    expectDrop(h, 'bad_integrity', () =>
      send(h, bindingRequest(ufrag, { password: 'x'.repeat(32) }), client()),
    );
    // Password of another valid ufrag.
    const other = deriveIcePassword(ufragFor(1), KEY1);
    expectDrop(h, 'bad_integrity', () => send(h, bindingRequest(ufrag, { password: other }), client()));
    // A flipped byte in the signed part.
    const flipped = bindingRequest(ufrag);
    const at = flipped.length - 40; // inside ICE-CONTROLLING, before MESSAGE-INTEGRITY
    flipped.writeUInt8(flipped[at]! ^ 1, at);
    expectDrop(h, 'bad_integrity', () => send(h, flipped, client()));
  });

  test('rate_limited: new flows per source IP per second', () => {
    const h = makeCore({ perSecond: 2 });
    asFlow(send(h, bindingRequest(ufragFor(1)), client('203.0.113.5'), 1_000));
    asFlow(send(h, bindingRequest(ufragFor(1)), client('203.0.113.5'), 1_100));
    expectDrop(h, 'rate_limited', () => send(h, bindingRequest(ufragFor(1)), client('203.0.113.5'), 1_200));
    // Another source is not affected, and the window ends after a second.
    asFlow(send(h, bindingRequest(ufragFor(1)), client('203.0.113.6'), 1_200));
    asFlow(send(h, bindingRequest(ufragFor(1)), client('203.0.113.5'), 2_000));
  });

  test('flow_table_full: the cap holds, and replacing a flow at the same address still fits', () => {
    const h = makeCore({ maxFlows: 2 });
    const a = client();
    asFlow(send(h, bindingRequest(ufragFor(1)), a));
    asFlow(send(h, bindingRequest(ufragFor(2)), client()));
    expectDrop(h, 'flow_table_full', () => send(h, bindingRequest(ufragFor(3)), client()));
    const replaced = asFlow(send(h, bindingRequest(ufragFor(3)), a));
    assert.equal(replaced.route.transceiverId, 3);
    assert.equal(h.flows.size, 2);
  });

  test('relay_draining: no new flows, existing flows keep forwarding, no lookups', () => {
    const h = makeCore({ recovery: true });
    const known = client();
    const flow = asFlow(send(h, bindingRequest(ufragFor(1)), known));
    h.core.startDraining();
    assert.equal(h.core.draining, true);
    expectDrop(h, 'relay_draining', () => send(h, bindingRequest(ufragFor(1)), client()));
    // Draining is decided before parsing: any STUN-looking packet from an unknown address.
    expectDrop(h, 'relay_draining', () => send(h, Buffer.from([0, 1]), client()));
    assert.equal(send(h, RTP, known), flow);
    // No Redis lookups while draining either.
    expectDrop(h, 'unknown_flow', () => send(h, DTLS, client()));
  });
});

describe('RelayCore: known flows', () => {
  test('packets from a known address are forwarded without inspection and refresh lastSeen', () => {
    const h = makeCore();
    const from = client();
    const flow = asFlow(send(h, bindingRequest(ufragFor(1)), from, 1_000));
    const packets = [
      RTP,
      DTLS,
      Buffer.from([0xff, 0xff]), // unclassified from an unknown address
      Buffer.alloc(0),
      Buffer.from([0, 1, 2]), // malformed STUN
      bindingRequest(flow.ufrag, { type: StunType.BindingSuccess }),
      bindingRequest(flow.ufrag, { type: StunType.BindingIndication }),
      // Its own ufrag again, even with a bad password: the transceiver answers checks, not the relay.
      bindingRequest(flow.ufrag, { password: 'wrong' }),
    ];
    let now = 2_000;
    for (const packet of packets) {
      assert.equal(send(h, packet, from, now), flow);
      assert.equal(flow.lastSeen, now);
      now += 10;
    }
    assert.equal(totalDrops(h.counters), 0);
    assert.equal(h.counters[SLOT.packetsToTransceiver], packets.length + 1);
  });

  test('a Binding request from a known address naming another valid ufrag re-routes the flow', () => {
    const h = makeCore({ recovery: true });
    const from = client();
    const old = asFlow(send(h, bindingRequest(ufragFor(1)), from));
    const newUfrag = ufragFor(3);
    const moved = asFlow(send(h, bindingRequest(newUfrag), from, 2_000));
    assert.notEqual(moved, old);
    assert.equal(moved.route.transceiverId, 3);
    assert.equal(moved.ufrag, newUfrag);
    assert.equal(h.flows.get(old.key), moved);
    assert.equal(h.flows.size, 1);
    assert.deepEqual(
      [...h.flows.values()].map((flow) => flow.ufrag),
      [newUfrag],
    );
    assert.equal(h.counters[SLOT.flowsCreatedStun], 2);
    // Only the current flow is handed to the cache writer.
    assert.deepEqual(h.core.takeUnrecorded(), [moved]);
    assert.equal(send(h, RTP, from), moved);
  });

  test('a Binding request from a known address naming another, invalid ufrag is dropped; the flow stays', () => {
    const h = makeCore();
    const from = client();
    const flow = asFlow(send(h, bindingRequest(ufragFor(1)), from));
    expectDrop(h, 'unknown_transceiver', () => send(h, bindingRequest(ufragFor(42)), from));
    expectDrop(h, 'bad_integrity', () => send(h, bindingRequest(ufragFor(2), { key: KEY2 }), from));
    const other = ufragFor(2);
    expectDrop(h, 'bad_tag', () => send(h, bindingRequest(withTamperedTag(other)), from));
    assert.equal(h.flows.get(flow.key), flow);
    assert.equal(send(h, RTP, from), flow);
  });

  test('NAT rebinding: the same ufrag from a new address creates a second flow to the same transceiver', () => {
    const h = makeCore();
    const ufrag = ufragFor(2);
    const before = client('198.51.100.20');
    const after = client('192.0.2.30');
    const first = asFlow(send(h, bindingRequest(ufrag), before, 1_000));
    const second = asFlow(send(h, bindingRequest(ufrag), after, 2_000));
    assert.notEqual(first, second);
    assert.equal(second.route.transceiverId, 2);
    assert.equal(second.ufrag, ufrag);
    assert.equal(h.flows.size, 2);
    assert.equal(send(h, RTP, after), second);
    assert.equal(send(h, RTP, before), first);
    // Only a verified request moves a session: DTLS from another new address does not.
    expectDrop(h, 'unknown_flow', () => send(h, DTLS, client('192.0.2.31')));
  });
});

describe('RelayCore: recovery from the flow cache', () => {
  test('a lookup for DTLS/RTP from unknown addresses only when recovery is on', () => {
    const on = makeCore({ recovery: true, lookupsPerSource: 100 });
    for (const packet of [
      DTLS,
      RTP,
      Buffer.from([20]),
      Buffer.from([63]),
      Buffer.from([128]),
      Buffer.from([191]),
    ]) {
      assert.ok(send(on, packet, client()) instanceof LookupRequest);
    }
    assert.equal(totalDrops(on.counters), 0);
    assert.equal(on.flows.size, 0);
    // Not for STUN or unclassified packets, nor for known addresses.
    expectDrop(on, 'malformed_stun', () => send(on, Buffer.from([0, 1, 0, 0]), client()));
    expectDrop(on, 'unclassified', () => send(on, Buffer.from([70]), client()));
    const known = client();
    const flow = asFlow(send(on, bindingRequest(ufragFor(1)), known));
    assert.equal(send(on, DTLS, known), flow);

    const off = makeCore({ recovery: false });
    expectDrop(off, 'unknown_flow', () => send(off, DTLS, client()));
  });

  test('recoverFlow creates a flow for a valid record', () => {
    const h = makeCore({ recovery: true });
    const from = client('2001:db8::9', 6);
    const ufrag = ufragFor(3);
    const flow = asFlow(h.core.recoverFlow(from.address, from.family, from.port, 1, ufrag, 7_000));
    assert.equal(flow.route.transceiverId, 3);
    assert.equal(flow.ufrag, ufrag);
    assert.equal(flow.socketIndex, 1);
    assert.equal(flow.recordedAt, 7_000, 'it came from the cache: no need to write it back');
    assert.equal(h.counters[SLOT.flowsCreatedRedis], 1);
    assert.equal(h.counters[SLOT.flowsCreatedStun], 0);
    assert.equal(h.counters[SLOT.flows], 1);
    assert.deepEqual(h.core.takeUnrecorded(), []);
    assert.equal(send(h, RTP, from), flow);
    // A second answer for the same address returns the flow already there.
    assert.equal(h.core.recoverFlow(from.address, from.family, from.port, 1, ufragFor(1), 8_000), flow);
  });

  test('settleLookup: the held packets go where the answer says, and every outcome is counted', () => {
    const h = makeCore({ recovery: true, lookupsPerSource: 100 });
    // Found by address: the flow is restored and the packets held meanwhile are released to it.
    const a = client('192.0.2.40');
    const request = send(h, RTP, a, 1_000) as LookupRequest;
    assert.ok(request instanceof LookupRequest);
    assert.deepEqual([request.address, request.port], [a.address, a.port]);
    assert.equal(request.ssrc, RTP.readUInt32BE(8), "an RTP packet's SSRC goes with the question");
    assert.equal(send(h, DTLS, a, 1_001), 'held');
    const released = h.core.settleLookup(request.key, { ufrag: ufragFor(2), by: 'address' }, 1_010)!;
    assert.equal(released.target, h.flows.get(request.key));
    assert.deepEqual(released.packets, [RTP, DTLS]);
    assert.equal(h.counters[SLOT.redisLookupHit], 1);
    assert.equal(h.counters[SLOT.packetsToTransceiver], 2);
    assert.equal(
      h.core.settleLookup(request.key, null, 1_020),
      undefined,
      'a second answer releases nothing',
    );
    // Found by SSRC: a candidate path, no flow.
    const b = client('192.0.2.41');
    const byB = send(h, RTP, b, 1_000) as LookupRequest;
    const toCandidate = h.core.settleLookup(byB.key, { ufrag: ufragFor(3), by: 'ssrc' }, 1_010)!;
    assert.equal(toCandidate.target.route.transceiverId, 3);
    assert.equal(h.flows.get(byB.key), undefined);
    assert.equal(h.core.candidates.size, 1);
    // A miss drops what was held and is remembered; an error drops too and is not.
    const c = client('192.0.2.42');
    const byC = send(h, DTLS, c, 1_000) as LookupRequest;
    send(h, DTLS, c, 1_001);
    assert.equal(h.core.settleLookup(byC.key, null, 1_010), undefined);
    assert.equal(h.counters[SLOT.redisLookupMiss], 1);
    assert.equal(h.counters[dropSlotOf('redis_miss')], 2);
    expectDrop(h, 'redis_miss', () => send(h, DTLS, c, 1_100));
    const d = client('192.0.2.43');
    const byD = send(h, DTLS, d, 1_000) as LookupRequest;
    assert.equal(h.core.settleLookup(byD.key, 'error', 1_010), undefined);
    assert.equal(h.counters[SLOT.redisLookupError], 1);
    assert.equal(h.counters[dropSlotOf('redis_error')], 1);
    assert.ok(send(h, DTLS, d, 1_100) instanceof LookupRequest, 'asked again after an error');
  });

  test('lookups are bounded per source, and not made while draining or for TCP', () => {
    const h = makeCore({ recovery: true, lookupsPerSource: 2 });
    assert.ok(send(h, DTLS, client('192.0.2.50'), 1_000) instanceof LookupRequest);
    assert.ok(send(h, DTLS, client('192.0.2.50'), 1_000) instanceof LookupRequest);
    expectDrop(h, 'rate_limited', () => send(h, DTLS, client('192.0.2.50'), 1_000));
    h.core.startDraining();
    expectDrop(h, 'unknown_flow', () => send(h, DTLS, client('192.0.2.51'), 1_000));
  });

  test('recoverFlow re-verifies the ufrag: tampered, foreign or unroutable records are refused', () => {
    const h = makeCore({ recovery: true });
    const valid = ufragFor(1);
    const tampered = withTamperedTag(valid);
    const recover = (ufrag: string) => () => h.core.recoverFlow('192.0.2.1', 4, 5000, 0, ufrag, 1_000);
    expectDrop(h, 'redis_miss', recover(tampered));
    expectDrop(h, 'redis_miss', recover('garbage'));
    expectDrop(h, 'redis_miss', recover(ufragFor(1, KEY9)));
    expectDrop(h, 'redis_miss', recover(ufragFor(1, KEY1, CLUSTER + 1)));
    expectDrop(h, 'unknown_transceiver', recover(ufragFor(77)));
  });

  test('recoverFlow respects the flow cap and draining', () => {
    const full = makeCore({ recovery: true, maxFlows: 1 });
    asFlow(full.core.recoverFlow('192.0.2.1', 4, 1, 0, ufragFor(1), 1_000));
    expectDrop(full, 'flow_table_full', () =>
      full.core.recoverFlow('192.0.2.1', 4, 2, 0, ufragFor(1), 1_000),
    );

    const draining = makeCore({ recovery: true });
    draining.core.startDraining();
    expectDrop(draining, 'relay_draining', () =>
      draining.core.recoverFlow('192.0.2.1', 4, 1, 0, ufragFor(1), 1_000),
    );
  });
});

describe('RelayCore: tunnel side', () => {
  function withFlows() {
    const h = makeCore();
    const a = client();
    const b = client('2001:db8::42', 6);
    const flowA = asFlow(send(h, bindingRequest(ufragFor(1)), a));
    const flowB = asFlow(send(h, bindingRequest(ufragFor(2)), b));
    return { h, a, b, flowA, flowB };
  }

  test('a datagram from the owning transceiver is sent to its client', () => {
    const { h, a, b, flowA, flowB } = withFlows();
    const payload = randomBytes(100);
    const datagram = encodeTunnelPacket(a, payload);
    assert.equal(h.core.onTunnelPacket(datagram, '10.0.0.1', 4001, 0), flowA);
    assert.deepEqual(datagram.subarray(flowA.header.length), payload);
    const v6 = encodeTunnelPacket(b, payload);
    assert.equal(h.core.onTunnelPacket(v6, '10.0.0.1', 4002, 0), flowB);
    assert.deepEqual(v6.subarray(flowB.header.length), payload);
    assert.equal(h.counters[SLOT.packetsToClient], 2);
    assert.equal(h.counters[SLOT.bytesToClient], 200);
    assert.equal(totalDrops(h.counters), 0);
  });

  test('tunnel_unknown_source: only tunnel addresses in the routing table are accepted', () => {
    const { h, a } = withFlows();
    const datagram = encodeTunnelPacket(a, RTP);
    expectDrop(h, 'tunnel_unknown_source', () => h.core.onTunnelPacket(datagram, '10.0.0.2', 4001, 0));
    expectDrop(h, 'tunnel_unknown_source', () => h.core.onTunnelPacket(datagram, '10.0.0.1', 4999, 0));
    // Even the client itself cannot use the relay as a reflector.
    expectDrop(h, 'tunnel_unknown_source', () => h.core.onTunnelPacket(datagram, a.address, a.port, 0));
  });

  test('tunnel_malformed', () => {
    const { h, a } = withFlows();
    const good = encodeTunnelPacket(a, RTP);
    const badMagic = Buffer.from(good);
    badMagic[0] = 0;
    const badVersion = Buffer.from(good);
    badVersion[1] = 0x21;
    const badType = Buffer.from(good);
    badType[1] = 0x13;
    const badFamily = Buffer.from(good);
    badFamily[2] = 5;
    const shortV6 = Buffer.from(good.subarray(0, 12));
    shortV6[2] = 6;
    for (const datagram of [
      Buffer.alloc(0),
      good.subarray(0, 9),
      badMagic,
      badVersion,
      badType,
      badFamily,
      shortV6,
    ]) {
      expectDrop(h, 'tunnel_malformed', () => h.core.onTunnelPacket(datagram, '10.0.0.1', 4001, 0));
    }
  });

  test('tunnel_no_flow: no flow for the client, or a flow owned by another transceiver', () => {
    const { h, a, b } = withFlows();
    const stranger = encodeTunnelPacket({ family: 4, address: '203.0.113.99', port: 1234 }, RTP);
    expectDrop(h, 'tunnel_no_flow', () => h.core.onTunnelPacket(stranger, '10.0.0.1', 4001, 0));
    // a's flow belongs to transceiver 1; transceiver 2 and 3 may not send to it.
    expectDrop(h, 'tunnel_no_flow', () =>
      h.core.onTunnelPacket(encodeTunnelPacket(a, RTP), '10.0.0.1', 4002, 0),
    );
    expectDrop(h, 'tunnel_no_flow', () =>
      h.core.onTunnelPacket(encodeTunnelPacket(a, RTP), '10.0.0.1', 4003, 0),
    );
    expectDrop(h, 'tunnel_no_flow', () =>
      h.core.onTunnelPacket(encodeTunnelPacket(b, RTP), '10.0.0.1', 4001, 0),
    );
  });

  test('a draining transceiver still reaches its clients', () => {
    const { h, a, flowA } = withFlows();
    h.core.setRoutes(
      makeRoutes(2, [
        { id: 1, port: 4001, state: 'draining' },
        { id: 2, port: 4002 },
      ]),
    );
    assert.equal(h.core.onTunnelPacket(encodeTunnelPacket(a, RTP), '10.0.0.1', 4001, 0), flowA);
  });

  test('countSendError and countDrop count under their reasons', () => {
    const h = makeCore();
    expectDrop(h, 'send_error', () => {
      h.core.countSendError();
      return 'send_error';
    });
    expectDrop(h, 'hold_overflow', () => {
      h.core.countDrop('hold_overflow');
      return 'hold_overflow';
    });
  });
});

describe('RelayCore: routes, time, cache writer, keys', () => {
  test('setRoutes relinks flows and removes those whose transceiver vanished', () => {
    const h = makeCore();
    assert.equal(h.counters[SLOT.routingTableGeneration], 1);
    const a = client();
    const b = client();
    const c = client();
    const flowA = asFlow(send(h, bindingRequest(ufragFor(1)), a));
    const flowB = asFlow(send(h, bindingRequest(ufragFor(2)), b));
    const flowC = asFlow(send(h, bindingRequest(ufragFor(2)), c));
    const next = makeRoutes(5, [
      { id: 1, port: 5001, address: '10.0.0.9' }, // moved
      { id: 3, port: 4003 },
    ]);
    h.core.setRoutes(next);
    assert.equal(h.core.routes, next);
    assert.equal(h.counters[SLOT.routingTableGeneration], 5);
    assert.equal(h.flows.size, 1);
    assert.equal(h.counters[SLOT.flows], 1);
    assert.equal(h.counters[SLOT.flowsRemoved], 2);
    assert.equal(h.flows.get(flowB.key), undefined);
    assert.equal(h.flows.get(flowC.key), undefined);
    assert.deepEqual([...h.flows.values()], [flowA]);
    assert.equal(flowA.route, next.byId(1));
    assert.deepEqual(flowA.route.tunnel, { family: 4, address: '10.0.0.9', port: 5001 });
    // Return traffic is accepted from the new tunnel address only.
    const datagram = encodeTunnelPacket(a, RTP);
    assert.equal(h.core.onTunnelPacket(datagram, '10.0.0.9', 5001, 0), flowA);
    expectDrop(h, 'tunnel_unknown_source', () => h.core.onTunnelPacket(datagram, '10.0.0.1', 4001, 0));
    // The removed clients' packets are no longer forwarded.
    expectDrop(h, 'unknown_flow', () => send(h, RTP, b));
  });

  test('tick expires idle flows and sweeps the new-flow limiter', () => {
    const h = makeCore({ idleTimeoutMs: 30_000 });
    const idle = client('192.0.2.1');
    const busy = client('192.0.2.2');
    asFlow(send(h, bindingRequest(ufragFor(1)), idle, 0));
    asFlow(send(h, bindingRequest(ufragFor(1)), busy, 0));
    assert.equal(h.limiter.size, 2);
    send(h, RTP, busy, 20_000);
    h.core.tick(30_000);
    assert.equal(h.flows.size, 2, 'idle for exactly the timeout: kept');
    assert.equal(h.limiter.size, 0);
    h.core.tick(30_001);
    assert.equal(h.flows.size, 1);
    assert.equal(h.counters[SLOT.flowsExpired], 1);
    assert.equal(h.counters[SLOT.flows], 1);
    expectDrop(h, 'unknown_flow', () => send(h, DTLS, idle, 30_002));
    // Return traffic does not keep a flow alive.
    h.core.onTunnelPacket(encodeTunnelPacket(busy, RTP), '10.0.0.1', 4001, 0);
    h.core.tick(50_001);
    assert.equal(h.flows.size, 0);
    assert.equal(h.counters[SLOT.flowsExpired], 2);
  });

  test('takeUnrecorded hands each new flow out once', () => {
    const h = makeCore({ recovery: true });
    const first = asFlow(send(h, bindingRequest(ufragFor(1)), client()));
    const second = asFlow(send(h, bindingRequest(ufragFor(2)), client()));
    assert.deepEqual(h.core.takeUnrecorded(), [first, second]);
    assert.deepEqual(h.core.takeUnrecorded(), []);
    const third = asFlow(send(h, bindingRequest(ufragFor(3)), client(), 1_000));
    // A flow that ended before the writer ran is not written.
    const gone = asFlow(send(h, bindingRequest(ufragFor(3)), client(), 90_000));
    h.core.tick(60_000);
    assert.equal(h.flows.get(third.key), undefined);
    assert.deepEqual(h.core.takeUnrecorded(), [gone]);
    assert.deepEqual(h.core.takeUnrecorded(), []);
  });

  test('takeUnrecorded stays empty when recovery is off', () => {
    const h = makeCore({ recovery: false });
    for (let i = 0; i < 50; i++) asFlow(send(h, bindingRequest(ufragFor(1 + (i % 3))), client()));
    assert.equal(h.flows.size, 50);
    assert.deepEqual(h.core.takeUnrecorded(), []);
  });

  test('key rotation via setKeyring', () => {
    const h = makeCore({ keyring: KEYRING1 });
    const old = newUfrag(KEYRING1, { clusterId: CLUSTER, transceiverId: 1 });
    const oldFlow = asFlow(send(h, bindingRequest(old), client()));

    const both = new RoutingKeyring([KEY1, KEY2]);
    assert.equal(both.current.id, 2);
    h.core.setKeyring(both);
    const fresh = newUfrag(both, { clusterId: CLUSTER, transceiverId: 2 });
    const freshFlow = asFlow(send(h, bindingRequest(fresh, { key: KEY2 }), client()));
    assert.equal(freshFlow.route.transceiverId, 2);
    // The old key still verifies, e.g. after a NAT rebinding.
    asFlow(send(h, bindingRequest(old), client()));

    h.core.setKeyring(new RoutingKeyring([KEY2]));
    expectDrop(h, 'unknown_key', () => send(h, bindingRequest(old), client()));
    expectDrop(h, 'unknown_key', () => send(h, bindingRequest(ufragFor(3, KEY1)), client()));
    expectDrop(h, 'redis_miss', () => h.core.recoverFlow('192.0.2.77', 4, 1, 0, old, 1_000));
    asFlow(send(h, bindingRequest(fresh, { key: KEY2 }), client()));
    // Established flows are not re-verified.
    assert.equal(send(h, RTP, oldFlow.client), oldFlow);
  });
});

describe('RelayCore: hostile input', () => {
  const addressArb = fc.oneof(
    fc.ipV4().map((address) => ({ address, family: 4 as const })),
    fc.ipV6().map((address) => ({ address, family: 6 as const })),
  );
  /** Header with the STUN cookie and a plausible length, then random bytes: reaches the attribute parser. */
  const stunish = fc
    .tuple(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 255 }),
      fc.uint8Array({ maxLength: 120 }),
    )
    .map(([first, second, body]) => {
      const packet = Buffer.alloc(20 + body.length);
      packet[0] = first;
      packet[1] = second;
      packet.writeUInt16BE(body.length & ~3, 2);
      packet.writeUInt32BE(0x2112a442, 4);
      Buffer.from(body).copy(packet, 20);
      return packet;
    });
  const packetArb = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    stunish,
  );

  test('random bytes from random addresses never throw and never create a flow', () => {
    for (const recovery of [false, true]) {
      const h = makeCore({ recovery });
      let lookups = 0;
      fc.assert(
        fc.property(packetArb, addressArb, fc.integer({ min: 0, max: 65535 }), (packet, from, port) => {
          const decision = h.core.onClientPacket(packet, from.address, from.family, port, 0, 1_000);
          if (decision instanceof LookupRequest || decision === 'held') lookups++;
          else assert.equal(typeof decision, 'string');
          assert.equal(h.flows.size, 0);
        }),
        { numRuns: 3_000 },
      );
      assert.equal(h.counters[SLOT.flowsCreatedStun], 0);
      assert.equal(h.limiter.size, 0);
      assert.equal(totalDrops(h.counters) + lookups, 3_000);
      if (!recovery) assert.equal(lookups, 0);
    }
  });

  test('random tunnel datagrams from a known or unknown source never throw', () => {
    const h = makeCore();
    const from = client('192.0.2.200');
    asFlow(send(h, bindingRequest(ufragFor(1)), from));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, known) => {
        const decision = h.core.onTunnelPacket(Buffer.from(bytes), known ? '10.0.0.1' : '10.9.9.9', 4001, 0);
        assert.equal(typeof decision, 'string');
      }),
      { numRuns: 2_000 },
    );
    assert.equal(h.flows.size, 1);
  });

  test('100,000 forged Binding requests leave the flow table and the limiter empty', () => {
    const h = makeCore({ recovery: true });
    const payload = Buffer.alloc(25);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    const valid = Array.from({ length: 64 }, (_, i) => ufragFor(1 + (i % 3)));
    const transactionId = Buffer.alloc(12);
    const N = 100_000;
    for (let i = 0; i < N; i++) {
      let ufrag: string;
      let password: string | Buffer;
      const kind = i % 3;
      if (kind === 0) {
        // Random characters of the right alphabet and length.
        const random = randomBytes(UFRAG_LENGTH);
        ufrag = '';
        for (const byte of random) ufrag += alphabet[byte & 31];
        password = random;
      } else if (kind === 1) {
        // Right version, key ID, cluster, a routable transceiver and a plausible issue time, random tag.
        payload[0] = 1;
        payload[1] = KEY1.id;
        payload.writeUInt16BE(CLUSTER, 2);
        payload.writeUInt32BE(1 + (i % 3), 4);
        payload.writeUInt32BE(ISSUED_AT + (i % 1000), 8);
        randomBytes(13).copy(payload, 12);
        ufrag = base32Encode(payload);
        password = ufrag;
      } else {
        // A genuine ufrag, a wrong password.
        ufrag = valid[i % valid.length]!;
        password = createHmac('sha1', 'forger').update(String(i)).digest();
      }
      transactionId.writeUInt32BE(i, 0);
      const packet = encodeStun({
        type: StunType.BindingRequest,
        transactionId,
        attributes: [{ type: StunAttr.Username, value: Buffer.from(`${ufrag}:evil`) }],
        integrityKey: password,
        fingerprint: true,
      });
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      h.core.onClientPacket(packet, address, 4, 1024 + (i % 60_000), 0, 1_000 + i);
    }
    assert.equal(h.flows.size, 0);
    assert.equal(h.limiter.size, 0);
    assert.deepEqual(h.core.takeUnrecorded(), []);
    assert.equal(totalDrops(h.counters), N);
    const counts = dropCounts(h.counters);
    assert.equal(counts.bad_integrity, Math.floor(N / 3));
    assert.ok(counts.bad_tag! >= Math.floor(N / 3));
    assert.equal(
      counts.bad_ufrag! +
        counts.bad_tag! +
        counts.unknown_key! +
        counts.wrong_cluster! +
        counts.unknown_transceiver! +
        counts.bad_integrity!,
      N,
    );
  });
});

describe('RelayCore: STUN rate of a known flow', () => {
  test('a flow flooding STUN is cut at FLOW_STUN_BURST then FLOW_STUN_PER_SECOND; media is untouched', () => {
    const h = makeCore();
    const from = client();
    const ufrag = ufragFor(1);
    asFlow(send(h, bindingRequest(ufrag), from, 1_000));
    let forwarded = 1;
    let limited = 0;
    // 5,000 checks in one second, as a flooding client sends them.
    for (let i = 0; i < 5_000; i++) {
      const decision = send(h, bindingRequest(ufrag), from, 1_000 + i / 5);
      if (decision === 'flow_stun_rate_limited') limited++;
      else forwarded++;
    }
    assert.ok(forwarded <= FLOW_STUN_BURST + FLOW_STUN_PER_SECOND + 1, `${forwarded} forwarded`);
    assert.ok(forwarded >= FLOW_STUN_BURST, `${forwarded} forwarded`);
    assert.equal(h.counters[dropSlotOf('flow_stun_rate_limited')], limited);
    // Media of the same flow is never limited, and a quiet second refills the bucket.
    asFlow(send(h, RTP, from, 2_000));
    asFlow(send(h, bindingRequest(ufrag), from, 4_000));
  });
});

describe('RelayCore: ICE-TCP connections', () => {
  const tcp = (
    h: Harness,
    flow: Flow | undefined,
    packet: Buffer,
    from: ReturnType<typeof client>,
    now = 1_000,
  ) => h.core.onTcpPacket(flow, packet, from.address, from.family, from.port, now);

  test('a connection’s first packet makes a TCP flow under the same checks as UDP; its header is type 2', () => {
    const h = makeCore({ recovery: true });
    const from = client();
    const flow = asFlow(tcp(h, undefined, bindingRequest(ufragFor(2)), from));
    assert.equal(flow.key, `tcp|${from.address}|${from.port}`);
    assert.deepEqual(flow.client, { ...from, transport: 'tcp' });
    assert.equal(flow.route.tunnel.port, 4002);
    assert.equal(flow.header[1], 0x12);
    assert.deepEqual(
      h.core.takeUnrecorded(),
      [],
      'never written to the flow cache: a connection cannot move',
    );
    assert.equal(tcp(h, flow, DTLS, from, 2_000), flow);
    assert.equal(flow.lastSeen, 2_000);
  });

  test('a first packet that is not a valid check: counted, no flow (the worker closes the connection)', () => {
    const h = makeCore();
    const from = client();
    expectDrop(h, 'tcp_not_stun', () => tcp(h, undefined, DTLS, from));
    expectDrop(h, 'tcp_not_stun', () => tcp(h, undefined, Buffer.alloc(0), from));
    expectDrop(h, 'bad_tag', () => tcp(h, undefined, bindingRequest(withTamperedTag(ufragFor(1))), from));
    expectDrop(h, 'bad_integrity', () =>
      tcp(h, undefined, bindingRequest(ufragFor(1), { password: 'x'.repeat(22) }), from),
    );
    expectDrop(h, 'unknown_transceiver', () => tcp(h, undefined, bindingRequest(ufragFor(9)), from));
  });

  test('a TCP flow and a UDP flow of the same address and port are apart, both ways', () => {
    const h = makeCore();
    const from = client();
    const overUdp = asFlow(send(h, bindingRequest(ufragFor(1)), from));
    const overTcp = asFlow(tcp(h, undefined, bindingRequest(ufragFor(2)), from));
    assert.notEqual(overUdp, overTcp);
    assert.equal(h.flows.size, 2);
    const toTcp = encodeTunnelPacket({ ...from, transport: 'tcp' }, RTP);
    assert.equal(h.core.onTunnelPacket(toTcp, '10.0.0.1', 4002, 0), overTcp);
    const toUdp = encodeTunnelPacket(from, RTP);
    assert.equal(h.core.onTunnelPacket(toUdp, '10.0.0.1', 4001, 0), overUdp);
    expectDrop(h, 'tunnel_no_flow', () => h.core.onTunnelPacket(toTcp, '10.0.0.1', 4001, 0));
  });

  test('one connection, one session: a check naming another ufrag is dropped; STUN is rate-limited', () => {
    const h = makeCore();
    const from = client();
    const flow = asFlow(tcp(h, undefined, bindingRequest(ufragFor(1)), from));
    expectDrop(h, 'tcp_other_ufrag', () => tcp(h, flow, bindingRequest(ufragFor(2)), from));
    let limited = 0;
    for (let i = 0; i < FLOW_STUN_BURST + 10; i++)
      if (tcp(h, flow, bindingRequest(flow.ufrag), from, 1_000) === 'flow_stun_rate_limited') limited++;
    assert.ok(limited >= 10, `${limited} rate-limited`);
  });

  test('a flow that left the table is tcp_flow_gone; a closed connection ends its flow', () => {
    const h = makeCore({ idleTimeoutMs: 1_000 });
    const from = client();
    const flow = asFlow(tcp(h, undefined, bindingRequest(ufragFor(1)), from));
    h.core.tick(5_000);
    assert.equal(h.flows.size, 0);
    expectDrop(h, 'tcp_flow_gone', () => tcp(h, flow, DTLS, from, 5_000));
    const other = asFlow(tcp(h, undefined, bindingRequest(ufragFor(1)), client(), 5_000));
    h.core.endTcpFlow(other);
    assert.equal(h.flows.size, 0);
    assert.equal(h.counters[SLOT.flows], 0);
  });
});

describe('RelayCore: records for the flow cache', () => {
  test('the refresh pass takes UDP flows whose record is older than their latest packet, never TCP flows', () => {
    const h = makeCore({ recovery: true });
    const from = client();
    const overUdp = asFlow(send(h, bindingRequest(ufragFor(1)), from, 1_000));
    const overTcp = asFlow(
      h.core.onTcpPacket(undefined, bindingRequest(ufragFor(2)), from.address, 4, from.port, 1_000),
    );
    assert.deepEqual(h.core.staleRecords(), [overUdp]);
    overUdp.recordedAt = 1_000;
    assert.deepEqual(h.core.staleRecords(), []);
    send(h, DTLS, from, 2_000);
    assert.deepEqual(h.core.staleRecords(), [overUdp]);
    assert.equal(overTcp.recordedAt, 0);
  });
});

describe('RelayCore: NAT rebinding by SSRC (candidate paths)', () => {
  /** An RTP packet with this SSRC (the header is clear in SRTP). */
  const rtpWithSsrc = (ssrc: number, seq = 1) => rtpPacket(52, { ssrc, seq });

  /** A flow to transceiver `id` whose client has sent RTP with `ssrc`. */
  function flowWithSsrc(h: Harness, id: number, ssrc: number) {
    const from = client();
    const flow = asFlow(send(h, bindingRequest(ufragFor(id)), from));
    assert.equal(send(h, rtpWithSsrc(ssrc), from), flow);
    assert.equal(flow.ssrc, ssrc);
    return { from, flow };
  }

  test("SRTP from a new address carrying a flow's SSRC goes to that flow's transceiver, naming the new address, with no flow made", () => {
    const h = makeCore();
    const { flow } = flowWithSsrc(h, 2, 0x1234_5678);
    flowWithSsrc(h, 3, 0x0bad_cafe);
    const moved = client('203.0.113.7');
    const decision = send(h, rtpWithSsrc(0x1234_5678, 2), moved, 1_100, 1);
    assert.equal(typeof decision, 'object');
    const candidate = decision as PathCandidate;
    assert.equal(candidate.route, flow.route, "the session's transceiver");
    assert.equal(candidate.ufrag, flow.ufrag);
    assert.deepEqual(candidate.client, { family: 4, address: '203.0.113.7', port: moved.port });
    assert.deepEqual(candidate.header, encodeTunnelHeader(candidate.client));
    assert.equal(candidate.socketIndex, 1);
    assert.equal(h.flows.size, 2, 'no flow for the new address yet');
    assert.equal(h.counters[SLOT.candidatesCreated], 1);
    // Later packets from there (RTCP too, which names no indexed SSRC) go the same way.
    const rtcp = Buffer.from([0x81, 200, 0, 6, 0x12, 0x34, 0x56, 0x78, ...randomBytes(20)]);
    assert.equal(send(h, rtcp, moved, 1_110), candidate);
    assert.equal(h.counters[SLOT.candidatePackets], 2);
    assert.equal(h.counters[SLOT.candidatesCreated], 1);
  });

  test('the flow is made when the transceiver sends to the new address, keeps the session and takes the SSRC', () => {
    const h = makeCore({ recovery: true });
    const { flow } = flowWithSsrc(h, 1, 77);
    h.core.takeUnrecorded();
    const moved = client('203.0.113.8');
    const candidate = send(h, rtpWithSsrc(77, 2), moved, 2_000, 1) as PathCandidate;
    const challenge = encodeTunnelPacket(candidate.client, bindingRequest(ufragFor(1)));
    // Only the session's own transceiver can make it.
    expectDrop(h, 'tunnel_no_flow', () => h.core.onTunnelPacket(challenge, '10.0.0.1', 4002, 2_010));
    const made = asFlow(h.core.onTunnelPacket(challenge, '10.0.0.1', 4001, 2_010));
    assert.equal(made.key, candidate.key);
    assert.equal(made.ufrag, flow.ufrag);
    assert.equal(made.route, flow.route);
    assert.equal(made.socketIndex, 1, 'replies leave from the socket the candidate came in on');
    assert.equal(h.counters[SLOT.flowsCreatedSsrc], 1);
    assert.equal(h.core.candidates.size, 0);
    assert.equal(send(h, rtpWithSsrc(77, 3), moved, 2_020), made, 'then a known flow');
    assert.equal(h.flows.bySsrc(77), made, 'the SSRC now names the new flow');
    assert.deepEqual(h.core.takeUnrecorded(), [made], 'recorded, with its SSRC, for other replicas');
    assert.equal(h.flows.get(flow.key), flow, 'the old flow stays until it idles out');
  });

  test('unknown SSRCs, DTLS and TCP flows make no candidate', () => {
    const h = makeCore();
    flowWithSsrc(h, 1, 5);
    expectDrop(h, 'unknown_flow', () => send(h, rtpWithSsrc(6), client('203.0.113.9')));
    expectDrop(h, 'unknown_flow', () => send(h, DTLS, client('203.0.113.9')));
    const tcp = asFlow(
      h.core.onTcpPacket(undefined, bindingRequest(ufragFor(1)), '198.51.100.20', 4, 5_000, 1_000),
    );
    h.core.onTcpPacket(tcp, rtpWithSsrc(9), '198.51.100.20', 4, 5_000, 1_000);
    expectDrop(h, 'unknown_flow', () => send(h, rtpWithSsrc(9), client('203.0.113.9')));
    assert.equal(h.core.candidates.size, 0);
  });

  test('candidates are bounded: packets each, per-source rate, table size, time, draining', () => {
    const limits = { maxCandidates: 2, ttlMs: 500, maxPackets: 3 };
    const h = makeCore({ perSecond: 2 });
    const core = new RelayCore({
      clusterId: CLUSTER,
      keyring: KEYRING1,
      routes: THREE,
      flows: h.flows,
      newFlowLimiter: h.limiter,
      counters: h.counters,
      recovery: false,
      candidates: new PathCandidates(limits),
    });
    const hh = { ...h, core };
    const from = client();
    asFlow(send(hh, bindingRequest(ufragFor(1)), from, 0));
    send(hh, rtpWithSsrc(42), from, 0);
    const a = client('203.0.113.1');
    for (let i = 0; i < 3; i++) assert.equal(typeof send(hh, rtpWithSsrc(42), a, 10), 'object');
    expectDrop(hh, 'candidate_overflow', () => send(hh, rtpWithSsrc(42), a, 10));
    // The same source address, another port: the new-flow limiter (2 per second, one used) allows one more.
    assert.equal(typeof send(hh, rtpWithSsrc(42), client('198.51.100.10'), 10), 'object');
    expectDrop(hh, 'rate_limited', () => send(hh, rtpWithSsrc(42), client('198.51.100.10'), 10));
    expectDrop(hh, 'candidate_table_full', () => send(hh, rtpWithSsrc(42), client('203.0.113.2'), 10));
    core.tick(510);
    assert.equal(core.candidates.size, 0, 'expired');
    core.startDraining();
    expectDrop(hh, 'relay_draining', () => send(hh, rtpWithSsrc(42), client('203.0.113.3'), 2_000));
  });

  test('an expired candidate makes no flow', () => {
    const h = makeCore();
    const from = client();
    asFlow(send(h, bindingRequest(ufragFor(1)), from, 0));
    send(h, rtpWithSsrc(8), from, 0);
    const candidate = send(h, rtpWithSsrc(8), client('203.0.113.4'), 100) as PathCandidate;
    const reply = encodeTunnelPacket(candidate.client, RTP);
    expectDrop(h, 'tunnel_no_flow', () => h.core.onTunnelPacket(reply, '10.0.0.1', 4001, 100 + 60_000));
  });

  test('the flow cache names the session by SSRC: a candidate, re-verified like a recovered flow', () => {
    const h = makeCore({ recovery: true });
    const moved = client('203.0.113.5');
    const ufrag = ufragFor(3);
    const candidate = h.core.candidateFromCache(moved, 0, ufrag, 1_000);
    assert.equal(typeof candidate, 'object');
    assert.equal((candidate as PathCandidate).route.transceiverId, 3);
    assert.equal(h.core.admitCandidatePacket(candidate as PathCandidate, RTP), true);
    assert.equal(h.flows.size, 0);
    assert.equal(
      h.core.candidateFromCache(client('203.0.113.6'), 0, withTamperedTag(ufrag), 1_000),
      'redis_miss',
    );
    assert.equal(
      h.core.candidateFromCache(client('203.0.113.6'), 0, ufragFor(9), 1_000),
      'unknown_transceiver',
    );
  });

  test('the SSRC index holds one entry per flow and forgets flows that go', () => {
    const h = makeCore({ idleTimeoutMs: 1_000 });
    const { from, flow } = flowWithSsrc(h, 1, 1);
    send(h, rtpWithSsrc(2), from);
    assert.equal(h.flows.ssrcCount, 1);
    assert.equal(h.flows.bySsrc(1), undefined);
    assert.equal(h.flows.bySsrc(2), flow);
    h.core.tick(10_000);
    assert.equal(h.flows.size, 0);
    assert.equal(h.flows.ssrcCount, 0);
  });
});
