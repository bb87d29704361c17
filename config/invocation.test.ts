import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandFor, startedByVoiceEdgeCli } from './invocation.ts';

test('usage lines name the command the process was started with', () => {
  const node = '/usr/local/bin/node';
  assert.equal(
    commandFor('relay', 'relay', [node, '/app/cli/voice-edge.ts', '--config', 'x']),
    'voice-edge relay',
  );
  assert.equal(
    commandFor('echo-agent', 'agent:echo', [node, '/app/cli/voice-edge.ts']),
    'voice-edge echo-agent',
  );
  assert.equal(commandFor('relay', 'relay', [node, '/work/relay/main.ts']), 'npm run relay --');
  assert.equal(
    commandFor('echo-agent', 'agent:echo', [node, '/w/agents/echo/main.ts']),
    'npm run agent:echo --',
  );
  assert.equal(startedByVoiceEdgeCli([node, '/elsewhere/voice-edge.ts']), false);
  assert.equal(startedByVoiceEdgeCli([node]), false);
});
