import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { encodeControl, frameBytes, type ToBackendMessage } from '../../protocol/backend.ts';
import { type EchoOutput, EchoSession } from './echo-session.ts';

const logger = pino({ level: 'silent' });
const FRAME = frameBytes(16000);

function session(delayMs = 500, markEveryMs = 0): EchoSession {
  const echo = new EchoSession({ delayMs, markEveryMs, logger });
  assert.deepEqual(echo.onText(encodeControl(start), 0), []);
  return echo;
}

const start: ToBackendMessage = {
  type: 'start',
  sessionId: 's-1',
  audio: { encoding: 'pcm16le', sampleRate: 16000, channels: 1, frameMs: 20 },
  metadata: {},
};

function frame(fill: number, bytes = FRAME): Buffer {
  return Buffer.alloc(bytes, fill);
}

/** The outputs as JSON objects (text) or `audio:<first byte>:<length>` (binary). */
function readable(outputs: EchoOutput[]): unknown[] {
  return outputs.map((output) => {
    if (output.kind === 'close') return output;
    if (typeof output.data === 'string') return JSON.parse(output.data);
    return `audio:${output.data[0]}:${output.data.length}`;
  });
}

describe('EchoSession', () => {
  test('remembers start', () => {
    const echo = session();
    assert.equal(echo.start?.sessionId, 's-1');
  });

  test('audio comes back after the delay, with its rhythm', () => {
    const echo = session(500);
    assert.deepEqual(echo.onBinary(frame(1), 1000), []);
    assert.deepEqual(echo.onBinary(frame(2), 1020), []);
    assert.equal(echo.nextDueAt(), 1500);
    assert.deepEqual(readable(echo.takeDue(1500)), ['audio:1:640']);
    assert.equal(echo.nextDueAt(), 1520);
    assert.deepEqual(readable(echo.takeDue(1520)), ['audio:2:640']);
    assert.equal(echo.nextDueAt(), undefined);
    assert.equal(echo.stats.framesIn, 2);
    assert.equal(echo.stats.framesOut, 2);
  });

  test('zero delay: the frame comes back from onBinary itself', () => {
    const echo = session(0);
    assert.deepEqual(readable(echo.onBinary(frame(7), 5)), ['audio:7:640']);
  });

  test('a mark follows every markEveryMs of audio; its answer reports mark-played', () => {
    const echo = session(100, 60);
    const out: unknown[] = [];
    for (let i = 0; i < 6; i++) {
      echo.onBinary(frame(i), i * 20);
      out.push(...readable(echo.takeDue(i * 20 + 100)));
    }
    assert.deepEqual(out, [
      'audio:0:640',
      'audio:1:640',
      'audio:2:640',
      { type: 'mark', name: 'echo-1' },
      'audio:3:640',
      'audio:4:640',
      'audio:5:640',
      { type: 'mark', name: 'echo-2' },
    ]);
    // echo-1 went out at 140 (with frame 2); answered at 200.
    assert.deepEqual(readable(echo.onText('{"type":"mark","name":"echo-1"}', 200)), [
      { type: 'event', name: 'mark-played', data: { name: 'echo-1', afterMs: 60 } },
    ]);
    // A second answer, or one for a mark never sent, is ignored.
    assert.deepEqual(echo.onText('{"type":"mark","name":"echo-1"}', 210), []);
    assert.deepEqual(echo.onText('{"type":"mark","name":"nope"}', 210), []);
    assert.equal(echo.stats.marksSent, 2);
    assert.equal(echo.stats.marksAnswered, 1);
  });

  test('marks count audio time, whatever the message sizes', () => {
    const echo = session(0, 100);
    // 16 kHz: 100 ms = 3200 bytes. 1000 + 1000 + 1000 + 1000 bytes crosses it on the 4th.
    const out = [1, 2, 3, 4].flatMap((i) => readable(echo.onBinary(frame(i, 1000), i)));
    assert.deepEqual(out, [
      'audio:1:1000',
      'audio:2:1000',
      'audio:3:1000',
      'audio:4:1000',
      { type: 'mark', name: 'echo-1' },
    ]);
  });

  test('data-channel messages come straight back', () => {
    const echo = session(500);
    assert.deepEqual(readable(echo.onText('{"type":"datachannel","label":"chat","data":"hi"}', 1)), [
      { type: 'datachannel', label: 'chat', data: 'echo: hi' },
    ]);
    assert.deepEqual(
      readable(echo.onText('{"type":"datachannel","label":"bin","data":"AAEC","binary":true}', 1)),
      [{ type: 'datachannel', label: 'bin', data: 'AAEC', binary: true }],
    );
  });

  test('end closes with 1000 and drops what is still delayed', () => {
    const echo = session(500);
    echo.onBinary(frame(1), 0);
    assert.deepEqual(readable(echo.onText('{"type":"end","reason":"client-hangup"}', 1)), [
      { kind: 'close', code: 1000, reason: '' },
    ]);
    assert.equal(echo.nextDueAt(), undefined);
    assert.deepEqual(echo.onBinary(frame(2), 2), []);
    assert.deepEqual(echo.onText('{"type":"datachannel","label":"a","data":"x"}', 2), []);
  });

  test('events, errors and unknown types produce nothing', () => {
    const echo = session();
    assert.deepEqual(echo.onText('{"type":"event","name":"connected"}', 1), []);
    assert.deepEqual(echo.onText('{"type":"error","code":"queue-overflow","message":"x"}', 1), []);
    assert.deepEqual(echo.onText('{"type":"hologram","fps":60}', 1), []);
  });

  test('protocol errors are answered and dropped', () => {
    const echo = new EchoSession({ delayMs: 0, markEveryMs: 0, logger });
    const [beforeStart] = readable(echo.onBinary(frame(1), 0)) as { type: string; code: string }[];
    assert.equal(beforeStart?.code, 'bad-message');
    const [eventFirst] = readable(echo.onText('{"type":"event","name":"connected"}', 0)) as {
      code: string;
    }[];
    assert.equal(eventFirst?.code, 'bad-message');
    // unknown types are ignored even before start
    assert.deepEqual(echo.onText('{"type":"hologram"}', 0), []);
    echo.onText(encodeControl(start), 0);
    const [twice] = readable(echo.onText(encodeControl(start), 0)) as { message: string }[];
    assert.match(twice?.message ?? '', /start twice/);
    const [odd] = readable(echo.onBinary(frame(1, 641), 0)) as { type: string; code: string }[];
    assert.deepEqual(odd?.type, 'error');
    assert.deepEqual(odd?.code, 'bad-audio');
    const [junk] = readable(echo.onText('{nope', 0)) as { code: string }[];
    assert.equal(junk?.code, 'bad-message');
    assert.equal(echo.stats.framesIn, 0);
  });
});
