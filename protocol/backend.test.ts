import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  dataChannelMessage,
  dataChannelPayload,
  decodeControl,
  encodeControl,
  type FromBackendMessage,
  frameBytes,
  frameSamples,
  isSampleRate,
  pcmDurationMs,
  SAMPLE_RATES,
  type ToBackendMessage,
} from './backend.ts';

function decodeOk(text: string, direction: 'to-backend' | 'from-backend') {
  const result =
    direction === 'to-backend' ? decodeControl(text, 'to-backend') : decodeControl(text, 'from-backend');
  assert.ok(result.ok, result.ok ? '' : result.error);
  return result.message;
}

function decodeBad(text: string, direction: 'to-backend' | 'from-backend'): string {
  const result =
    direction === 'to-backend' ? decodeControl(text, 'to-backend') : decodeControl(text, 'from-backend');
  assert.equal(result.ok, false, `expected bad-message for ${text}`);
  assert.ok(!result.ok);
  assert.equal(result.code, 'bad-message');
  return result.error;
}

describe('audio format', () => {
  test('the sample-rate set', () => {
    assert.deepEqual([...SAMPLE_RATES], [8000, 12000, 16000, 24000, 48000]);
    for (const rate of SAMPLE_RATES) assert.ok(isSampleRate(rate));
    for (const other of [0, 11025, 22050, 44100, 96000, '16000', undefined]) assert.ok(!isSampleRate(other));
  });

  test('frame sizes are 20 ms of mono PCM16', () => {
    assert.deepEqual(
      SAMPLE_RATES.map((rate) => [frameSamples(rate), frameBytes(rate)]),
      [
        [160, 320],
        [240, 480],
        [320, 640],
        [480, 960],
        [960, 1920],
      ],
    );
    for (const rate of SAMPLE_RATES) assert.equal(pcmDurationMs(frameBytes(rate), rate), 20);
  });
});

describe('transceiver → backend messages', () => {
  const messages: ToBackendMessage[] = [
    {
      type: 'start',
      sessionId: 's-1',
      audio: { encoding: 'pcm16le', sampleRate: 16000, channels: 1, frameMs: 20 },
      metadata: { user: 'alice', nested: { n: 1 } },
    },
    { type: 'event', name: 'connected' },
    { type: 'event', name: 'quality', data: { rttMs: 20, jitterMs: 3, lossRatio: 0.01 } },
    { type: 'datachannel', label: 'chat', data: 'hi' },
    { type: 'datachannel', label: 'bin', data: 'AAEC/w==', binary: true },
    { type: 'mark', name: 'sentence-1' },
    { type: 'end', reason: 'client-hangup' },
    { type: 'error', code: 'bad-audio', message: 'odd length' },
  ];

  test('every message survives encode → decode', () => {
    for (const message of messages) {
      assert.deepEqual(decodeOk(encodeControl(message), 'to-backend'), message);
    }
  });

  test('start: metadata defaults to {}, unknown fields are dropped', () => {
    const text = JSON.stringify({
      type: 'start',
      sessionId: 's',
      audio: { encoding: 'pcm16le', sampleRate: 8000, channels: 1, frameMs: 20 },
      future: true,
    });
    assert.deepEqual(decodeOk(text, 'to-backend'), {
      type: 'start',
      sessionId: 's',
      audio: { encoding: 'pcm16le', sampleRate: 8000, channels: 1, frameMs: 20 },
      metadata: {},
    });
  });

  test('start: the audio format is checked', () => {
    const start = (audio: unknown) => JSON.stringify({ type: 'start', sessionId: 's', audio });
    const good = { encoding: 'pcm16le', sampleRate: 16000, channels: 1, frameMs: 20 };
    assert.match(decodeBad(start({ ...good, sampleRate: 44100 }), 'to-backend'), /audio\.sampleRate/);
    assert.match(decodeBad(start({ ...good, channels: 2 }), 'to-backend'), /audio\.channels/);
    assert.match(decodeBad(start({ ...good, encoding: 'opus' }), 'to-backend'), /audio\.encoding/);
    assert.match(decodeBad(start({ ...good, frameMs: 10 }), 'to-backend'), /audio\.frameMs/);
    assert.match(decodeBad(start(undefined), 'to-backend'), /audio/);
  });

  test('end needs a reason in this direction', () => {
    assert.match(decodeBad('{"type":"end"}', 'to-backend'), /reason/);
  });

  test('messages that only travel the other way are unknown here', () => {
    assert.deepEqual(decodeOk('{"type":"clear"}', 'to-backend'), { type: 'unknown', receivedType: 'clear' });
  });
});

describe('backend → transceiver messages', () => {
  const messages: FromBackendMessage[] = [
    { type: 'clear' },
    { type: 'mark', name: 'm' },
    { type: 'datachannel', label: 'chat', data: 'x' },
    { type: 'datachannel', data: 'no label' },
    { type: 'datachannel', data: '', binary: true },
    { type: 'event', name: 'transcript', data: ['any', 'json'] },
    { type: 'end', reason: 'done' },
    { type: 'end' },
    { type: 'error', code: 'bad-message', message: 'what?' },
  ];

  test('every message survives encode → decode', () => {
    for (const message of messages) {
      assert.deepEqual(decodeOk(encodeControl(message), 'from-backend'), message);
    }
  });

  test('error without a message decodes with an empty one', () => {
    assert.deepEqual(decodeOk('{"type":"error","code":"x"}', 'from-backend'), {
      type: 'error',
      code: 'x',
      message: '',
    });
  });

  test('start from a backend is unknown (ignored), not an error', () => {
    assert.deepEqual(decodeOk('{"type":"start","anything":1}', 'from-backend'), {
      type: 'unknown',
      receivedType: 'start',
    });
  });
});

describe('decodeControl: malformed and unknown', () => {
  test('unknown types decode as unknown, whatever their fields', () => {
    for (const direction of ['to-backend', 'from-backend'] as const) {
      assert.deepEqual(decodeOk('{"type":"barge-in-v2","x":[1,2]}', direction), {
        type: 'unknown',
        receivedType: 'barge-in-v2',
      });
    }
  });

  test('not JSON, not an object, no string type', () => {
    for (const direction of ['to-backend', 'from-backend'] as const) {
      assert.match(decodeBad('{"type":', direction), /^not JSON/);
      assert.match(decodeBad('', direction), /^not JSON/);
      assert.match(decodeBad('[1]', direction), /not a JSON object/);
      assert.match(decodeBad('null', direction), /not a JSON object/);
      assert.match(decodeBad('"mark"', direction), /not a JSON object/);
      assert.match(decodeBad('{}', direction), /type/);
      assert.match(decodeBad('{"type":7}', direction), /type/);
    }
  });

  test('known types with wrong fields name the field', () => {
    assert.match(decodeBad('{"type":"mark"}', 'from-backend'), /^mark: name/);
    assert.match(decodeBad('{"type":"mark","name":""}', 'from-backend'), /^mark: name/);
    assert.match(decodeBad('{"type":"event","name":3}', 'to-backend'), /^event: name/);
    assert.match(decodeBad('{"type":"datachannel","label":"a"}', 'from-backend'), /data/);
    assert.match(decodeBad('{"type":"datachannel","data":"x"}', 'to-backend'), /label/);
    assert.match(decodeBad('{"type":"error","message":"no code"}', 'from-backend'), /code/);
  });

  test('binary data-channel payloads must be canonical base64', () => {
    for (const data of ['not base64!', 'AAF', 'AA=A', 'QQ==QQ==', 'A']) {
      const text = JSON.stringify({ type: 'datachannel', label: 'b', data, binary: true });
      assert.match(decodeBad(text, 'from-backend'), /base64/, data);
    }
    decodeOk(JSON.stringify({ type: 'datachannel', label: 'b', data: 'AAE', binary: true }), 'from-backend');
    // …but only when binary is true.
    decodeOk(JSON.stringify({ type: 'datachannel', label: 'b', data: 'not base64!' }), 'from-backend');
  });

  test('never throws on arbitrary input', () => {
    const inputs = ['\u0000', '{"type":"start","audio":null}', '{"__proto__":{"type":"mark"}}', '1e999'];
    for (const text of inputs) {
      decodeControl(text, 'to-backend');
      decodeControl(text, 'from-backend');
    }
  });
});

describe('data-channel payloads', () => {
  test('text stays text', () => {
    const message = dataChannelMessage('chat', 'héllo');
    assert.deepEqual(message, { type: 'datachannel', label: 'chat', data: 'héllo' });
    assert.equal(dataChannelPayload(message), 'héllo');
  });

  test('bytes go as base64 and come back as a Buffer', () => {
    const bytes = new Uint8Array([0, 1, 2, 255, 128]);
    const message = dataChannelMessage('bin', bytes.subarray(1));
    assert.deepEqual(message, { type: 'datachannel', label: 'bin', data: 'AQL/gA==', binary: true });
    const decoded = decodeOk(encodeControl(message), 'from-backend');
    assert.ok(decoded.type === 'datachannel');
    assert.deepEqual(dataChannelPayload(decoded), Buffer.from([1, 2, 255, 128]));
  });
});
