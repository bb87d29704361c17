import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerProgram, imageRepository } from './container-image.ts';

const node = '/usr/bin/node24';

test('imageRepository drops the tag and digest, not a registry port', () => {
  assert.equal(imageRepository('ghcr.io/voice-edge/voice-edge:v1'), 'ghcr.io/voice-edge/voice-edge');
  assert.equal(
    imageRepository('localhost:5000/voice-edge/voice-edge'),
    'localhost:5000/voice-edge/voice-edge',
  );
  assert.equal(imageRepository('voice-edge/voice-edge@sha256:abc'), 'voice-edge/voice-edge');
  assert.equal(
    imageRepository('localhost:5000/voice-edge/voice-edge:dev@sha256:abc'),
    'localhost:5000/voice-edge/voice-edge',
  );
});

test('the voice-edge image runs cli/voice-edge.ts of the checkout with the container args', () => {
  assert.deepEqual(
    containerProgram('ghcr.io/voice-edge/voice-edge:dev', undefined, ['relay'], '/repo', node),
    {
      ok: true,
      file: node,
      args: ['/repo/cli/voice-edge.ts', 'relay'],
    },
  );
  assert.deepEqual(containerProgram('voice-edge/voice-edge', undefined, ['operator'], '/repo', node), {
    ok: true,
    file: node,
    args: ['/repo/cli/voice-edge.ts', 'operator'],
  });
});

test('command replaces the entrypoint: node is this Node, /app is the checkout', () => {
  assert.deepEqual(
    containerProgram('voice-edge/voice-edge:x', ['node', '/app/agents/echo/main.ts'], ['--x'], '/repo', node),
    {
      ok: true,
      file: node,
      args: ['/repo/agents/echo/main.ts', '--x'],
    },
  );
});

test('the test UDP echo image; any other image (or a look-alike) is ErrImagePull', () => {
  assert.deepEqual(
    containerProgram('voice-edge/test-udp-echo:1', undefined, ['--udp-port', '5000'], '/repo', node),
    {
      ok: true,
      file: node,
      args: ['/repo/test/kube/udp-echo.ts', '--udp-port', '5000'],
    },
  );
  for (const image of [
    'nginx:1.27',
    'ghcr.io/evil-voice-edge/voice-edge:1',
    'ghcr.io/voice-edge/voice-edge-x',
  ]) {
    const program = containerProgram(image, undefined, [], '/repo', node);
    assert.equal(program.ok, false, image);
    assert.match(!program.ok ? program.message : '', /test kubelet runs only voice-edge images/);
  }
});
