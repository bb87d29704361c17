import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../config/env-overrides.ts';
import { loadTransceiverConfig } from './config.ts';

// What the operator puts in a transceiver pod's environment (k8s contract), minus the secret.
const podEnv = {
  VOICE_EDGE_TRANSCEIVER_CLUSTER_ID: '3',
  VOICE_EDGE_TRANSCEIVER_TRANSCEIVER_ID: '41',
  VOICE_EDGE_TRANSCEIVER_TUNNEL__LISTEN: '10.88.0.7:7000',
  VOICE_EDGE_TRANSCEIVER_API__HOST: '0.0.0.0',
  VOICE_EDGE_TRANSCEIVER_API__PORT: '8090',
  // The Secret's `tokens` key: the new token first while a rotation runs.
  VOICE_EDGE_TRANSCEIVER_API__TOKENS: 'new-token, old-token',
  VOICE_EDGE_TRANSCEIVER_RELAYS: '["203.0.113.5:3478"]',
  VOICE_EDGE_TRANSCEIVER_BACKEND__URL: 'ws://agent.voice:8081',
  VOICE_EDGE_TRANSCEIVER_BACKEND__SAMPLE_RATE: '16000',
  VOICE_EDGE_TRANSCEIVER_SESSIONS__MAX: '50',
  // The routing table it follows for the relays' addresses (relaySources).
  POD_NAMESPACE: 'voice',
  VOICE_EDGE_TRANSCEIVER_ROUTING_TABLE__CONFIG_MAP__NAME: 'edge-routing',
  VOICE_EDGE_ROUTING_KEYS: 'keys: [{ id: 1, secret: AAAAAAAAAAAAAAAAAAAAAA== }]',
};

function configError(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('loadTransceiverConfig with no file: the environment alone', () => {
  test("the operator's pod environment is a whole configuration", () => {
    const config = loadTransceiverConfig(undefined, podEnv);
    assert.equal(config.clusterId, 3);
    assert.equal(config.transceiverId, 41);
    assert.deepEqual(config.tunnel.listen, { family: 4, address: '10.88.0.7', port: 7000 });
    assert.deepEqual(config.api, { host: '0.0.0.0', port: 8090, tokens: ['new-token', 'old-token'] });
    assert.equal(config.backend.sampleRate, 16000);
    assert.equal(config.sessions.max, 50);
    assert.equal(config.sessions.connectTimeoutMs, 15_000);
    assert.equal(config.routingKeys, undefined);
    assert.deepEqual(config.routingTable, { configMap: { name: 'edge-routing', namespace: 'voice' } });
    assert.deepEqual(config.tunnel.allowedRelays, []);
    // Unset: the encoder takes the complexity measured for its application (audio/opus-application.ts).
    assert.equal(config.audio.opusApplication, 'restricted-lowdelay');
    assert.equal(config.audio.opusComplexity, undefined);
  });

  test('the tunnel address as a bare pod IP and a port: IPv4 and IPv6 alike', () => {
    const { VOICE_EDGE_TRANSCEIVER_TUNNEL__LISTEN: _, ...withoutListen } = podEnv;
    // What the kubelet makes of TUNNEL__HOST=$(POD_IP), TUNNEL__PORT=7000 (operator/desired/transceiver-pod.ts).
    for (const [podIP, expected] of [
      ['10.88.0.7', { family: 4, address: '10.88.0.7', port: 7000 }],
      ['fd00:10:244::7', { family: 6, address: 'fd00:10:244::7', port: 7000 }],
      ['FD00:0:0:0:0:0:0:7', { family: 6, address: 'fd00::7', port: 7000 }],
      ['::1', { family: 6, address: '::1', port: 7000 }],
    ] as const) {
      const config = loadTransceiverConfig(undefined, {
        ...withoutListen,
        VOICE_EDGE_TRANSCEIVER_TUNNEL__HOST: podIP,
        VOICE_EDGE_TRANSCEIVER_TUNNEL__PORT: '7000',
      });
      assert.deepEqual(config.tunnel.listen, expected, podIP);
      assert.deepEqual(config.tunnel.allowedRelays, []);
    }
    // `listen` takes an IPv6 address in brackets only: bare, `fd00::7:7000` is an address with no port.
    assert.deepEqual(
      loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_TUNNEL__LISTEN: '[fd00::7]:7000' })
        .tunnel.listen,
      { family: 6, address: 'fd00::7', port: 7000 },
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, {
          ...podEnv,
          VOICE_EDGE_TRANSCEIVER_TUNNEL__LISTEN: 'fd00::7:7000',
        }),
      ),
      /tunnel\.listen: "fd00::7:7000" is not an address of the form ip:port or \[ipv6\]:port/,
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, {
          ...podEnv,
          VOICE_EDGE_TRANSCEIVER_TUNNEL__HOST: '10.88.0.7',
          VOICE_EDGE_TRANSCEIVER_TUNNEL__PORT: '7000',
        }),
      ),
      /tunnel\.listen: give listen or host and port, not both/,
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, {
          ...withoutListen,
          VOICE_EDGE_TRANSCEIVER_TUNNEL__HOST: 'fd00::7',
        }),
      ),
      /tunnel\.port: required: listen .* or host and port \(VOICE_EDGE_TRANSCEIVER_TUNNEL__PORT\)/,
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, {
          ...withoutListen,
          VOICE_EDGE_TRANSCEIVER_TUNNEL__HOST: 'pod.local',
          VOICE_EDGE_TRANSCEIVER_TUNNEL__PORT: '7000',
        }),
      ),
      /tunnel\.host: .*\(VOICE_EDGE_TRANSCEIVER_TUNNEL__HOST\)/,
    );
  });

  test('tunnel datagrams need a known source: allowedRelays or a routing table', () => {
    const message = configError(() =>
      loadTransceiverConfig(undefined, {
        ...podEnv,
        VOICE_EDGE_TRANSCEIVER_ROUTING_TABLE__CONFIG_MAP__NAME: undefined,
      }),
    );
    assert.match(message, /tunnel\.allowedRelays or routingTable is required/);
    const config = loadTransceiverConfig(undefined, {
      ...podEnv,
      VOICE_EDGE_TRANSCEIVER_ROUTING_TABLE__CONFIG_MAP__NAME: undefined,
      VOICE_EDGE_TRANSCEIVER_TUNNEL__ALLOWED_RELAYS: '["10.88.0.0/16", "fd00::1"]',
    });
    assert.deepEqual(
      config.tunnel.allowedRelays.map((cidr) => cidr.prefixLength),
      [16, 128],
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, {
          ...podEnv,
          VOICE_EDGE_TRANSCEIVER_TUNNEL__ALLOWED_RELAYS: '["nope"]',
        }),
      ),
      /tunnel\.allowedRelays\.0/,
    );
  });

  test('audio.opusApplication is restricted-lowdelay or voip', () => {
    assert.equal(
      loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_AUDIO__OPUS_APPLICATION: 'voip' })
        .audio.opusApplication,
      'voip',
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, {
          ...podEnv,
          VOICE_EDGE_TRANSCEIVER_AUDIO__OPUS_APPLICATION: 'audio',
        }),
      ),
      /audio\.opusApplication/,
    );
  });

  test('audio.opusComplexity is 0–10', () => {
    assert.equal(
      loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_AUDIO__OPUS_COMPLEXITY: '9' })
        .audio.opusComplexity,
      9,
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_AUDIO__OPUS_COMPLEXITY: '11' }),
      ),
      /audio\.opusComplexity/,
    );
  });

  test('audio.maxQueueSeconds is 20 by default, 1–600', () => {
    assert.equal(loadTransceiverConfig(undefined, podEnv).audio.maxQueueSeconds, 20);
    assert.equal(
      loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_AUDIO__MAX_QUEUE_SECONDS: '2.5' })
        .audio.maxQueueSeconds,
      2.5,
    );
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_AUDIO__MAX_QUEUE_SECONDS: '0' }),
      ),
      /audio\.maxQueueSeconds/,
    );
  });

  test('a keys file named in the environment resolves against the working folder', () => {
    const config = loadTransceiverConfig(undefined, {
      ...podEnv,
      VOICE_EDGE_ROUTING_KEYS: undefined,
      VOICE_EDGE_TRANSCEIVER_ROUTING_KEYS__FILE: 'keys.yaml',
    });
    assert.equal(config.routingKeys?.file, join(process.cwd(), 'keys.yaml'));
  });

  test('missing fields: one line naming each field and its variable', () => {
    const message = configError(() =>
      loadTransceiverConfig(undefined, { VOICE_EDGE_TRANSCEIVER_CLUSTER_ID: '3' }),
    );
    assert.match(
      message,
      /^invalid transceiver config \(no --config file: VOICE_EDGE_TRANSCEIVER_\* variables only\): /,
    );
    assert.match(message, /transceiverId: [^;]*\(VOICE_EDGE_TRANSCEIVER_TRANSCEIVER_ID\)/);
    assert.match(message, /tunnel: [^;]*\(VOICE_EDGE_TRANSCEIVER_TUNNEL__…\)/);
    assert.match(message, /relays: [^;]*\(VOICE_EDGE_TRANSCEIVER_RELAYS\)/);
    assert.match(message, /backend: [^;]*\(VOICE_EDGE_TRANSCEIVER_BACKEND__…\)/);
    assert.doesNotMatch(message, /\n/);
    assert.match(
      configError(() =>
        loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_BACKEND__SAMPLE_RATE: '44100' }),
      ),
      /backend\.sampleRate: must be one of .*\(VOICE_EDGE_TRANSCEIVER_BACKEND__SAMPLE_RATE\)/,
    );
    assert.match(
      configError(() => loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_ROUTING_KEYS: undefined })),
      /routingKeys\.file is required \(or set VOICE_EDGE_ROUTING_KEYS\)/,
    );
  });

  test('api.tokens is required, named with its variable; tokens are token68', () => {
    for (const tokens of [undefined, '', '[]']) {
      const message = configError(() =>
        loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_API__TOKENS: tokens }),
      );
      assert.match(message, /api\.tokens: required: at least one bearer token/, String(tokens));
      assert.match(message, /VOICE_EDGE_TRANSCEIVER_API__TOKENS/);
    }
    const bad = configError(() =>
      loadTransceiverConfig(undefined, { ...podEnv, VOICE_EDGE_TRANSCEIVER_API__TOKENS: 'ok-token,not ok' }),
    );
    assert.match(bad, /api\.tokens\.1: a bearer token is token68/);
    assert.doesNotMatch(bad, /not ok/, 'a token is never echoed');
  });
});
