import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ArrivalOrder, type Delivery } from './arrival-order.ts';

const payload = (seq: number) => Buffer.from([seq & 0xff]);
const seqsOf = (deliveries: Delivery[]) =>
  deliveries.map((delivery) => (delivery.kind === 'packet' ? delivery.payload[0]! : -1));

describe('ArrivalOrder', () => {
  test('in-order packets are delivered at once, one each', () => {
    const order = new ArrivalOrder();
    for (let seq = 0; seq < 10; seq++)
      assert.deepEqual(seqsOf(order.push(seq, seq * 960, payload(seq), seq * 20)), [seq]);
    assert.deepEqual(order.poll(9 * 20 + 39), [], 'the next one is not overdue yet');
  });

  test('a packet overtaken by the next is held until it arrives, then both go', () => {
    const order = new ArrivalOrder();
    order.push(0, 0, payload(0), 0);
    assert.deepEqual(order.push(2, 1920, payload(2), 40), []);
    assert.deepEqual(seqsOf(order.push(1, 960, payload(1), 45)), [1, 2]);
    assert.equal(order.counters.lost, 0);
  });

  test('a gap is declared lost when two later packets arrive, or after reorderWaitMs', () => {
    const order = new ArrivalOrder({ reorderWaitMs: 10 });
    order.push(0, 0, payload(0), 0);
    assert.deepEqual(seqsOf(order.push(3, 2880, payload(3), 60)), [-1, -1, 3], 'two behind: certain');
    assert.deepEqual(order.push(5, 4800, payload(5), 100), []);
    assert.deepEqual(order.poll(109), []);
    assert.deepEqual(seqsOf(order.poll(110)), [-1, 5]);
    assert.deepEqual(order.push(4, 3840, payload(4), 111), [], 'too late now');
    assert.equal(order.counters.late, 1);
  });

  test('a missing packet with nothing behind it is lost lossWaitMs after it was due', () => {
    const order = new ArrivalOrder({ lossWaitMs: 20 });
    order.push(0, 0, payload(0), 0);
    assert.equal(order.wakeAt, 40);
    assert.deepEqual(order.poll(39), []);
    assert.deepEqual(seqsOf(order.poll(40)), [-1]);
    assert.deepEqual(seqsOf(order.poll(60)), [-1], 'then one every 20 ms');
  });

  test('after a stall only maxConcealPerPoll losses are made up, then the order carries on from now', () => {
    const order = new ArrivalOrder({ maxConcealPerPoll: 5 });
    order.push(0, 0, payload(0), 0);
    assert.equal(order.poll(1_000).length, 5);
    assert.ok(order.wakeAt! > 1_000 && order.wakeAt! <= 1_040);
  });

  test('when concealment ran ahead of the client (a long outage), the order restarts at its packets', () => {
    const order = new ArrivalOrder({ resyncAfterLate: 3 });
    order.push(0, 0, payload(0), 0);
    // The path goes silent for 2 s: the order conceals in real time, ending a few slots ahead.
    for (let t = 40; t <= 2_100; t += 20) order.poll(t);
    // The client's packets come back for slots already concealed (its sequence runs behind).
    const back = [95, 96, 97, 98].map((seq, i) =>
      seqsOf(order.push(seq, seq * 960, payload(seq), 2_110 + i * 20)),
    );
    assert.deepEqual(back, [[], [], [97], [98]], 'two counted late, then it follows them');
    assert.equal(order.counters.resyncs, 1);
  });

  test('duplicates and big jumps', () => {
    const order = new ArrivalOrder();
    order.push(100, 96000, payload(100), 0);
    assert.deepEqual(order.push(100, 96000, payload(100), 1), []);
    assert.deepEqual(seqsOf(order.push(5000, 4800000, payload(5000), 20)), [5000 & 0xff], 'a restart');
    assert.equal(order.counters.resyncs, 1);
  });

  test('whatever the arrival order, every packet is delivered or declared lost exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ drop: fc.boolean(), jitter: fc.integer({ min: 0, max: 60 }) }), {
          minLength: 1,
          maxLength: 100,
        }),
        fc.integer({ min: 0, max: 0xffff }),
        (packets, first) => {
          const order = new ArrivalOrder();
          const arrivals = packets
            .map((packet, i) => ({ ...packet, seq: (first + i) & 0xffff, at: i * 20 + packet.jitter }))
            .filter((packet, i) => i === 0 || !packet.drop)
            .sort((a, b) => a.at - b.at);
          const delivered: number[] = [];
          let positions = 0;
          const take = (deliveries: Delivery[]) => {
            for (const delivery of deliveries) {
              if (delivery.kind === 'packet') delivered.push(positions);
              positions++;
            }
          };
          let last = 0;
          // Positions count from the first packet to arrive: the order starts there.
          // (A restart re-anchors them: the packet it restarts at is its new base.)
          let base = arrivals[0]!.seq;
          for (const arrival of arrivals) {
            for (let t = last; t < arrival.at; t++) if ((order.wakeAt ?? Infinity) <= t) take(order.poll(t));
            last = arrival.at;
            const before = positions;
            const resyncs = order.counters.resyncs;
            const got = order.push(arrival.seq, arrival.seq * 960, payload(arrival.seq), arrival.at);
            take(got);
            if (order.counters.resyncs !== resyncs) base = arrival.seq - before;
            for (const [index, delivery] of got.entries())
              if (delivery.kind === 'packet')
                assert.equal(delivery.payload[0], (base + before + index) & 0xff, 'in sequence order');
          }
          const { delivered: count, lost, dtx } = order.counters;
          assert.equal(dtx, 0, 'an unbroken RTP timeline: no DTX');
          assert.equal(count + lost, positions);
          assert.equal(new Set(delivered).size, delivered.length);
        },
      ),
    );
  });

  test('a DTX pause: the made-up slots are counted as dtx, and the next packet goes at once', () => {
    const order = new ArrivalOrder({ lossWaitMs: 20 });
    for (let seq = 0; seq < 3; seq++) order.push(seq, seq * 960, payload(seq), seq * 20);
    // The client goes silent after packet 2 (at 40 ms): nothing for 400 ms, the slots made up.
    let madeUp = 0;
    for (let t = 41; t < 440; t++) if (order.wakeAt! <= t) madeUp += order.poll(t).length;
    assert.equal(madeUp, 18);
    assert.equal(order.counters.lost, 18, 'a loss until the next packet says otherwise');
    // Its next packet continues the sequence, timestamped 400 ms on, behind the made-up slots; the
    // one slot of the pause that concealment (20 ms behind) had not reached is made up with it.
    assert.deepEqual(seqsOf(order.push(3, 2 * 960 + 20 * 960, payload(3), 440)), [-1, 3]);
    assert.deepEqual(order.counters, { delivered: 4, lost: 0, dtx: 19, late: 0, duplicate: 0, resyncs: 0 });
    assert.deepEqual(seqsOf(order.push(4, 23 * 960, payload(4), 460)), [4], 'and on from there');
  });

  test('a packet late for its made-up slot is still late when its timestamp follows on', () => {
    const order = new ArrivalOrder({ lossWaitMs: 20, resyncAfterLate: 3 });
    order.push(0, 0, payload(0), 0);
    assert.deepEqual(seqsOf(order.poll(40)), [-1]);
    assert.deepEqual(order.push(1, 960, payload(1), 45), [], 'one frame on: no pause, just late');
    assert.equal(order.counters.late, 1);
    assert.equal(order.counters.dtx, 0);
  });

  test('timestamps that jump at every packet make up no more frames than real time', () => {
    const order = new ArrivalOrder();
    let frames = 0;
    for (let seq = 0; seq < 50; seq++) {
      // 50 packets a second, in sequence, each timestamped a minute after the one before.
      frames += order.push(seq, (seq * 60 * 48_000) >>> 0, payload(seq), seq * 20).length;
    }
    assert.ok(frames <= 51, `${frames} frames for 1 s of packets`);
    assert.equal(order.counters.delivered, 50);
  });

  test('a client in DTX: every packet delivered once, in order, the pauses made up and none lost', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            pauseFrames: fc.constantFrom(0, 0, 0, 1, 5, 20),
            jitter: fc.integer({ min: 0, max: 15 }),
          }),
          { minLength: 1, maxLength: 80 },
        ),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (packets, firstSeq, firstTimestamp) => {
          const order = new ArrivalOrder();
          let frame = 0;
          const arrivals = packets.map((packet, i) => {
            frame += i === 0 ? 0 : 1 + packet.pauseFrames;
            return {
              seq: (firstSeq + i) & 0xffff,
              timestamp: (firstTimestamp + frame * 960) >>> 0,
              at: frame * 20 + packet.jitter,
              index: i,
            };
          });
          const delivered: number[] = [];
          let made = 0;
          const take = (deliveries: Delivery[]) => {
            for (const delivery of deliveries)
              if (delivery.kind === 'packet') delivered.push(delivery.payload.readUInt16BE(0));
              else made++;
          };
          let last = 0;
          for (const arrival of arrivals) {
            for (let t = last; t < arrival.at; t++) if ((order.wakeAt ?? Infinity) <= t) take(order.poll(t));
            last = arrival.at;
            const body = Buffer.alloc(2);
            body.writeUInt16BE(arrival.index);
            take(order.push(arrival.seq, arrival.timestamp, body, arrival.at));
          }
          assert.deepEqual(
            delivered,
            arrivals.map((arrival) => arrival.index),
            'each once, in order',
          );
          const { lost, dtx } = order.counters;
          assert.equal(lost + dtx, made);
          // Jitter below the loss wait never makes a packet's own slot up before it comes: what
          // was made up is exactly the pauses', so the backend's frames follow the RTP timeline.
          assert.equal(lost, 0);
          assert.equal(order.counters.resyncs, 0);
          assert.equal(
            dtx,
            packets.reduce((sum, packet, i) => sum + (i > 0 ? packet.pauseFrames : 0), 0),
          );
        },
      ),
    );
  });
});
