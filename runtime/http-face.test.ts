import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { createHttpFace } from './http-face.ts';

function registryWithCounter(): Registry {
  const registry = new Registry();
  new Counter({ name: 'face_test_total', help: 'a counter', registers: [registry] }).inc();
  return registry;
}

describe('the HTTP face', () => {
  test('healthy and ready: 200 with status ok and ready; /metrics is the registry as text', async () => {
    const registry = registryWithCounter();
    const app = createHttpFace({ registry, notReady: () => undefined });
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    assert.deepEqual(health.json(), { status: 'ok' });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ready' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.equal(metrics.headers['content-type'], registry.contentType);
    assert.match(metrics.body, /^face_test_total 1$/m);
    await app.close();
  });

  test('a failing probe answers 503 with the body the service gives', async () => {
    const app = createHttpFace({
      registry: new Registry(),
      notHealthy: () => ({ status: 'worker-died', dead: 1 }),
      notReady: () => ({ status: 'starting' }),
    });
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 503);
    assert.deepEqual(health.json(), { status: 'worker-died', dead: 1 });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), { status: 'starting' });
    await app.close();
  });

  test('without notReady there is no /readyz', async () => {
    const app = createHttpFace({ registry: new Registry() });
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode, 200);
    await app.close();
  });
});
