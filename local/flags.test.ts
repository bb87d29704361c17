import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FlagsResult, parseLocalFlags, USAGE } from './flags.ts';

const run = (result: FlagsResult) => {
  assert.equal(result.kind, 'run', result.kind === 'error' ? result.message : result.kind);
  return (result as Extract<FlagsResult, { kind: 'run' }>).flags;
};
const error = (result: FlagsResult) => {
  assert.equal(result.kind, 'error');
  return (result as Extract<FlagsResult, { kind: 'error' }>).message;
};

describe('npm start flags', () => {
  it('defaults: the echo agent over voice-edge at 16000 Hz', () => {
    assert.deepEqual(run(parseLocalFlags([])), {
      host: '127.0.0.1',
      'http-port': 8080,
      'relay-port': 3478,
      'echo-delay-ms': 500,
      'sample-rate': 16000,
      'log-level': 'warn',
      'backend-protocol': 'voice-edge',
    });
    assert.equal(parseLocalFlags(['--help']).kind, 'help');
    assert.equal(parseLocalFlags(['-h']).kind, 'help');
  });

  it('an external voice-edge backend at another rate', () => {
    const flags = run(parseLocalFlags(['--backend-url', 'wss://agent.example/ws', '--sample-rate', '48000']));
    assert.equal(flags['backend-url'], 'wss://agent.example/ws');
    assert.equal(flags['backend-protocol'], 'voice-edge');
    assert.equal(flags['sample-rate'], 48000);
  });

  it('twilio-media-streams: with --backend-url, at 8000 Hz', () => {
    for (const extra of [[], ['--sample-rate', '8000']]) {
      const flags = run(
        parseLocalFlags([
          '--backend-protocol',
          'twilio-media-streams',
          '--backend-url',
          'ws://127.0.0.1:8765/ws',
          ...extra,
        ]),
      );
      assert.equal(flags['backend-protocol'], 'twilio-media-streams');
      assert.equal(flags['backend-url'], 'ws://127.0.0.1:8765/ws');
      assert.equal(flags['sample-rate'], 8000);
    }
  });

  it('twilio-media-streams without --backend-url: the echo agent cannot answer it', () => {
    assert.match(
      error(parseLocalFlags(['--backend-protocol', 'twilio-media-streams'])),
      /^invalid option --backend-protocol: twilio-media-streams needs --backend-url, the ws:\/\/ or wss:\/\/ URL of a Twilio Media Streams agent/,
    );
  });

  it('twilio-media-streams at another rate', () => {
    assert.match(
      error(
        parseLocalFlags([
          '--backend-protocol',
          'twilio-media-streams',
          '--backend-url',
          'ws://a/',
          '--sample-rate',
          '16000',
        ]),
      ),
      /^invalid option --sample-rate: twilio-media-streams carries 8000 Hz μ-law/,
    );
  });

  it('names the option and the allowed values', () => {
    assert.equal(
      error(parseLocalFlags(['--backend-protocol', 'twilio'])),
      'invalid option --backend-protocol: must be one of voice-edge, twilio-media-streams',
    );
    for (const url of ['http://a/', 'ws://', 'agent:8765', '']) {
      assert.equal(
        error(parseLocalFlags(['--backend-url', url])),
        'invalid option --backend-url: must be a ws:// or wss:// URL with a host',
        url,
      );
    }
    assert.equal(
      error(parseLocalFlags(['--sample-rate', '44100'])),
      'invalid option --sample-rate: must be one of 8000, 12000, 16000, 24000, 48000',
    );
    assert.match(error(parseLocalFlags(['--http-port', 'abc'])), /^invalid option --http-port: /);
    assert.match(error(parseLocalFlags(['--bogus'])), /--bogus/);
  });

  it('the usage names both backend options and the protocols', () => {
    assert.match(USAGE, /--backend-url/);
    assert.match(USAGE, /--backend-protocol voice-edge\|twilio-media-streams/);
  });
});
