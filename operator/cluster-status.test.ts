import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClusterStatusInput, clusterConditions, deploymentHealth } from './cluster-status.ts';

const available = { available: true, rollingOut: false, message: 'ok' };
const base: ClusterStatusInput = {
  deleting: false,
  waitingForPools: [],
  invalidSpec: undefined,
  applyErrors: [],
  relay: available,
  signaling: available,
  relayAddresses: ['203.0.113.7:3478'],
  routingTablePublished: true,
  routingConflicts: [],
  credentialError: undefined,
};
const byType = (input: ClusterStatusInput) =>
  Object.fromEntries(clusterConditions(input).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe('deploymentHealth', () => {
  it('is available when the controller has seen the spec and says Available', () => {
    const deployment = {
      metadata: { generation: 3 },
      spec: { replicas: 2 },
      status: {
        observedGeneration: 3,
        replicas: 2,
        updatedReplicas: 2,
        availableReplicas: 2,
        conditions: [{ type: 'Available', status: 'True' }],
      },
    };
    assert.deepEqual(deploymentHealth(deployment, 'relay'), {
      available: true,
      rollingOut: false,
      message: 'relay: 2/2 available',
    });
    const newer = { ...deployment, metadata: { generation: 4 } };
    assert.deepEqual(deploymentHealth(newer, 'relay'), {
      available: false,
      rollingOut: true,
      message: 'relay: 2/2 available, rolling out',
    });
  });

  it('calls zero replicas available and a missing Deployment not', () => {
    assert.equal(
      deploymentHealth({ metadata: { generation: 1 }, spec: { replicas: 0 } }, 'relay').available,
      true,
    );
    assert.equal(deploymentHealth(undefined, 'relay').available, false);
  });
});

describe('clusterConditions', () => {
  it('is Ready, not Progressing, not Degraded when all is well', () => {
    assert.deepEqual(byType(base), {
      Ready: 'True/Available',
      Progressing: 'False/Stable',
      Degraded: 'False/AsExpected',
    });
  });

  it('says why it is not ready', () => {
    assert.equal(
      byType({ ...base, relay: { available: false, rollingOut: true, message: 'x' } }).Ready,
      'False/RelayUnavailable',
    );
    assert.equal(byType({ ...base, relayAddresses: [] }).Ready, 'False/RelayAddressesUnknown');
    assert.equal(byType({ ...base, relayAddresses: [] }).Progressing, 'True/WaitingForRelayAddresses');
    assert.equal(byType({ ...base, routingTablePublished: false }).Ready, 'False/RoutingTableNotPublished');
  });

  it('is Degraded for apply failures, ID conflicts and an invalid spec', () => {
    assert.deepEqual(byType({ ...base, applyErrors: ['Service/x: forbidden'] }), {
      Ready: 'False/ApplyFailed',
      Progressing: 'False/Stable',
      Degraded: 'True/ApplyFailed',
    });
    assert.equal(byType({ ...base, routingConflicts: ['echo-9'] }).Degraded, 'True/RoutingConflict');
    assert.equal(byType({ ...base, invalidSpec: 'spec.clusterId: too big' }).Degraded, 'True/InvalidSpec');
  });

  it('is Degraded, and not Ready, while the internal-API credential is unusable, and says why', () => {
    const error = 'Secret edge-transceiver-api: token 2 of "tokens" is not a bearer token';
    const conditions = clusterConditions({ ...base, credentialError: error });
    assert.deepEqual(byType({ ...base, credentialError: error }), {
      Ready: 'False/TransceiverApiCredentialUnavailable',
      Progressing: 'False/Stable',
      Degraded: 'True/TransceiverApiCredentialUnavailable',
    });
    assert.match(conditions[0]!.message, /token 2 of "tokens"/);
    assert.match(conditions[2]!.message, /token 2 of "tokens"/);
  });

  it('names the pools a deletion waits for', () => {
    const conditions = clusterConditions({ ...base, deleting: true, waitingForPools: ['echo', 'llm'] });
    assert.match(conditions[0]!.message, /echo, llm/);
    assert.equal(conditions[0]!.reason, 'Deleting');
  });
});
