import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ipEndpoints, LinkScheduler, type LinkSpec, mulberry32, type WanSpec } from './link-scheduler.ts';

/** A minimal IPv4 header (20 bytes) from `source` to `destination`, then `payload` bytes. */
function ipv4(source: string, destination: string, payload = 8): Buffer {
  const packet = Buffer.alloc(20 + payload);
  packet[0] = 0x45;
  source.split('.').forEach((part, i) => {
    packet[12 + i] = Number(part);
  });
  destination.split('.').forEach((part, i) => {
    packet[16 + i] = Number(part);
  });
  return packet;
}

const clean: LinkSpec = { delayMs: 5, jitterMs: 0, lossPercent: 0 };
const lossy: LinkSpec = { delayMs: 60, jitterMs: 10, lossPercent: 20 };

function spec(seed = 7): WanSpec {
  return {
    seed,
    sites: [
      { name: 'user', networks: ['198.18.1.0/24'] },
      { name: 'edge', networks: ['198.18.2.0/24'] },
      { name: 'cluster', networks: ['198.18.3.0/24'] },
    ],
    links: [
      { a: 'user', b: 'edge', ab: clean },
      { a: 'user', b: 'cluster', ab: lossy, ba: { ...lossy, delayMs: 70 } },
    ],
  };
}

describe('ipEndpoints', () => {
  test('IPv4 and IPv6 headers; anything else is undefined', () => {
    assert.deepEqual(ipEndpoints(ipv4('198.18.1.2', '198.18.2.2')), {
      source: '198.18.1.2',
      destination: '198.18.2.2',
    });
    const v6 = Buffer.alloc(40);
    v6[0] = 0x60;
    v6[8] = 0x20;
    v6[9] = 0x01;
    v6[23] = 1;
    v6[24] = 0x20;
    v6[25] = 0x01;
    v6[39] = 2;
    assert.deepEqual(ipEndpoints(v6), { source: '2001:0:0:0:0:0:0:1', destination: '2001:0:0:0:0:0:0:2' });
    assert.equal(ipEndpoints(Buffer.alloc(0)), undefined);
    assert.equal(ipEndpoints(Buffer.from([0x45, 0, 0])), undefined);
    assert.equal(ipEndpoints(Buffer.alloc(60, 0x10)), undefined);
  });
});

describe('LinkScheduler', () => {
  test('a clean link delays by its delay; packets outside any link pass at once', () => {
    const scheduler = new LinkScheduler(spec());
    assert.equal(scheduler.schedule(ipv4('198.18.1.2', '198.18.2.2'), 1000), 1005);
    assert.equal(scheduler.schedule(ipv4('198.18.2.2', '198.18.1.2'), 1000), 1005, 'ba defaults to ab');
    assert.equal(scheduler.schedule(ipv4('198.18.2.2', '198.18.3.2'), 1000), 1000, 'no edge–cluster link');
    assert.equal(scheduler.schedule(ipv4('10.77.0.1', '198.18.3.2'), 1000), 1000, 'outside every site');
    assert.equal(scheduler.schedule(Buffer.from('garbage'), 1000), 1000);
    assert.deepEqual(scheduler.counts, { passed: 3, delayed: 2, dropped: 0 });
  });

  test('each direction has its own spec', () => {
    const scheduler = new LinkScheduler({
      ...spec(),
      links: [{ a: 'user', b: 'cluster', ab: clean, ba: { ...clean, delayMs: 9 } }],
    });
    assert.equal(scheduler.schedule(ipv4('198.18.1.2', '198.18.3.2'), 0), 5);
    assert.equal(scheduler.schedule(ipv4('198.18.3.2', '198.18.1.2'), 0), 9);
  });

  test('the same seed gives the same verdicts; another seed others', () => {
    const run = (seed: number) => {
      const scheduler = new LinkScheduler(spec(seed));
      const out: Array<number | string> = [];
      for (let i = 0; i < 200; i++) out.push(scheduler.schedule(ipv4('198.18.1.2', '198.18.3.2'), i * 20));
      return out;
    };
    assert.deepEqual(run(42), run(42));
    assert.notDeepEqual(run(42), run(43));
  });

  test('loss and jitter over many packets are what the link says', () => {
    const scheduler = new LinkScheduler(spec(3));
    let dropped = 0;
    const delays: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Far apart in time, so FIFO order never holds a packet back.
      const verdict = scheduler.schedule(ipv4('198.18.1.2', '198.18.3.2'), i * 1000);
      if (verdict === 'drop') dropped++;
      else delays.push(verdict - i * 1000);
    }
    assert.ok(Math.abs(dropped / 20_000 - 0.2) < 0.015, `loss ${dropped / 20_000}`);
    assert.ok(Math.min(...delays) >= 60 && Math.max(...delays) < 70);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    assert.ok(Math.abs(mean - 65) < 0.2, `mean delay ${mean}`);
  });

  test('property: per directed link, departures never go back in time and never precede arrival + delay', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.array(fc.tuple(fc.nat(50), fc.boolean()), { minLength: 1, maxLength: 200 }),
        (seed, steps) => {
          const scheduler = new LinkScheduler(spec(seed));
          let now = 0;
          const last = new Map<boolean, number>();
          for (const [gap, up] of steps) {
            now += gap;
            const verdict = up
              ? scheduler.schedule(ipv4('198.18.1.2', '198.18.3.2'), now)
              : scheduler.schedule(ipv4('198.18.3.2', '198.18.1.2'), now);
            if (verdict === 'drop') continue;
            assert.ok(verdict >= now + (up ? 60 : 70));
            assert.ok(verdict >= (last.get(up) ?? 0));
            last.set(up, verdict);
          }
        },
      ),
    );
  });

  test('refuses links to unknown sites and impossible figures', () => {
    assert.throws(
      () => new LinkScheduler({ ...spec(), links: [{ a: 'user', b: 'mars', ab: clean }] }),
      /no site named mars/,
    );
    assert.throws(
      () =>
        new LinkScheduler({
          ...spec(),
          links: [{ a: 'user', b: 'edge', ab: { ...clean, lossPercent: 101 } }],
        }),
      /loss must be 0–100/,
    );
    assert.throws(
      () =>
        new LinkScheduler({ ...spec(), links: [{ a: 'user', b: 'edge', ab: { ...clean, delayMs: -1 } }] }),
      /delay and jitter/,
    );
  });

  test('mulberry32 is uniform enough in [0, 1)', () => {
    const random = mulberry32(1);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const value = random();
      assert.ok(value >= 0 && value < 1);
      buckets[Math.floor(value * 10)]!++;
    }
    for (const count of buckets) assert.ok(count > 9_500 && count < 10_500);
  });
});
