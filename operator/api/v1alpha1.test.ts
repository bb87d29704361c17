import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { poolSelector, readTransceiverPool, readVoiceEdgeCluster, transceiverIdOf } from './v1alpha1.ts';

describe('readVoiceEdgeCluster', () => {
  it('fills the CRD defaults', () => {
    const result = readVoiceEdgeCluster({
      metadata: { name: 'edge' },
      spec: { clusterId: 3, routingKeys: { secretName: 's' } },
    });
    assert.ok(result.ok);
    const spec = result.object.spec;
    assert.equal(spec.routingKeys.key, 'keys.yaml');
    assert.deepEqual(spec.relay, {
      replicas: 2,
      port: 3478,
      serviceType: 'LoadBalancer',
      publicAddresses: [],
      tcp: { enabled: true, port: 443 },
    });
    assert.deepEqual(spec.signaling, { replicas: 2, port: 8080, serviceType: 'ClusterIP' });
    assert.deepEqual(spec.peers, []);
  });

  it('names the bad field', () => {
    const result = readVoiceEdgeCluster({
      metadata: { name: 'edge' },
      spec: { clusterId: 70000, routingKeys: { secretName: 's' }, relay: { publicAddresses: ['nowhere'] } },
    });
    assert.ok(!result.ok);
    assert.match(result.error, /spec\.clusterId/);
    assert.match(result.error, /relay\.publicAddresses\.0/);
  });

  it('refuses something that is not an object with metadata', () => {
    assert.ok(!readVoiceEdgeCluster(null).ok);
    assert.ok(!readVoiceEdgeCluster({ spec: {} }).ok);
  });
});

describe('readTransceiverPool', () => {
  it('fills the CRD defaults', () => {
    const result = readTransceiverPool({
      metadata: { name: 'p' },
      spec: { clusterName: 'edge', backend: { url: 'wss://b/x' } },
    });
    assert.ok(result.ok);
    const spec = result.object.spec;
    assert.equal(spec.replicas, 1);
    assert.equal(spec.capacityPerPod, 50);
    assert.deepEqual(spec.backend, { url: 'wss://b/x', protocol: 'voice-edge', sampleRate: 48000 });
    assert.deepEqual(spec.audio, {
      opusApplication: 'restricted-lowdelay',
      opusComplexity: 0,
      maxQueueSeconds: 20,
      callerDtx: true,
    });
    assert.equal(spec.drainTimeoutSeconds, 3600);
    assert.deepEqual(spec.autoscaling, {
      enabled: false,
      minReplicas: 1,
      maxReplicas: 10,
      targetUtilizationPercent: 70,
      scaleDownStabilizationSeconds: 300,
    });
  });

  it('an unset opusComplexity is the one measured for the application; a set one is kept', () => {
    const audio = (audio: object) =>
      readTransceiverPool({
        metadata: { name: 'p' },
        spec: { clusterName: 'edge', backend: { url: 'ws://b' }, audio },
      });
    const complexity = (fields: object) => {
      const result = audio(fields);
      assert.ok(result.ok);
      return result.object.spec.audio.opusComplexity;
    };
    assert.equal(complexity({}), 0);
    assert.equal(complexity({ opusApplication: 'voip' }), 5);
    assert.equal(complexity({ opusApplication: 'voip', opusComplexity: 9 }), 9);
    assert.equal(complexity({ opusComplexity: 2 }), 2);
    const refused = audio({ opusApplication: 'audio' });
    assert.ok(!refused.ok);
    assert.match(refused.error, /audio\.opusApplication/);
  });

  it('refuses an odd sample rate and a non-WebSocket backend', () => {
    const result = readTransceiverPool({
      metadata: { name: 'p' },
      spec: { clusterName: 'edge', backend: { url: 'http://b', sampleRate: 44100 } },
    });
    assert.ok(!result.ok);
    assert.match(result.error, /backend\.url/);
    assert.match(result.error, /backend\.sampleRate/);
  });

  it('reads a twilio-media-streams pool: 8000 Hz whether written or left out, its accountSid', () => {
    const accountSid = `AC${'0123456789abcdef'.repeat(2)}`;
    for (const backend of [
      { url: 'wss://bot/ws', protocol: 'twilio-media-streams', accountSid },
      { url: 'wss://bot/ws', protocol: 'twilio-media-streams', accountSid, sampleRate: 8000 },
    ]) {
      const result = readTransceiverPool({ metadata: { name: 'p' }, spec: { clusterName: 'edge', backend } });
      assert.ok(result.ok, result.ok ? '' : result.error);
      assert.deepEqual(result.object.spec.backend, {
        url: 'wss://bot/ws',
        protocol: 'twilio-media-streams',
        sampleRate: 8000,
        accountSid,
      });
    }
  });

  it('refuses another sample rate with twilio-media-streams, a bad accountSid and an unknown protocol', () => {
    const read = (backend: object) =>
      readTransceiverPool({ metadata: { name: 'p' }, spec: { clusterName: 'edge', backend } });
    const rate = read({ url: 'ws://b', protocol: 'twilio-media-streams', sampleRate: 16000 });
    assert.ok(!rate.ok);
    assert.match(
      rate.error,
      /backend\.sampleRate: must be 8000 or left out with protocol twilio-media-streams/,
    );
    // The default 48000 is voice-edge's: a voice-edge pool may say 16000.
    assert.ok(read({ url: 'ws://b', protocol: 'voice-edge', sampleRate: 16000 }).ok);
    for (const accountSid of ['AC123', `AC${'A'.repeat(32)}`, `XX${'0'.repeat(32)}`, `AC${'0'.repeat(33)}`]) {
      const sid = read({ url: 'ws://b', protocol: 'twilio-media-streams', accountSid });
      assert.ok(!sid.ok, accountSid);
      assert.match(sid.error, /backend\.accountSid: must be AC followed by 32 lowercase hex digits/);
    }
    const protocol = read({ url: 'ws://b', protocol: 'twilio' });
    assert.ok(!protocol.ok);
    assert.match(protocol.error, /backend\.protocol/);
  });

  it('refuses minReplicas above maxReplicas', () => {
    const result = readTransceiverPool({
      metadata: { name: 'p' },
      spec: {
        clusterName: 'edge',
        backend: { url: 'ws://b' },
        autoscaling: { minReplicas: 5, maxReplicas: 2 },
      },
    });
    assert.ok(!result.ok);
    assert.match(result.error, /autoscaling\.minReplicas: must not exceed maxReplicas \(2\)/);
  });
});

describe('labels', () => {
  it('reads only canonical positive IDs that fit 32 bits', () => {
    const id = (text: string) => transceiverIdOf({ 'voice-edge.io/transceiver-id': text });
    assert.equal(id('17'), 17);
    assert.equal(id('4294967295'), 4294967295);
    for (const bad of ['0', '017', '-1', '1.5', '4294967296', 'x', '']) assert.equal(id(bad), undefined, bad);
    assert.equal(transceiverIdOf(undefined), undefined);
  });

  it('builds the scale selector of a pool', () => {
    assert.equal(
      poolSelector('edge', 'echo'),
      'app.kubernetes.io/name=voice-edge,app.kubernetes.io/instance=edge,app.kubernetes.io/component=transceiver,voice-edge.io/pool=echo',
    );
  });
});
