import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createAuthenticator } from './bearer-auth.ts';

describe('createAuthenticator', () => {
  test('no tokens: authentication is off', () => {
    assert.equal(createAuthenticator([]), undefined);
  });

  test('accepts any configured token, in the Bearer scheme (case-insensitive scheme)', () => {
    const check = createAuthenticator(['first-token', 'second.token~+/=='])!;
    assert.equal(check('Bearer first-token'), 'ok');
    assert.equal(check('Bearer second.token~+/=='), 'ok');
    assert.equal(check('bearer first-token'), 'ok');
    assert.equal(check('BEARER  first-token '), 'ok');
  });

  test('missing and invalid are told apart', () => {
    const check = createAuthenticator(['first-token'])!;
    assert.equal(check(undefined), 'missing');
    assert.equal(check(''), 'missing');
    assert.equal(check('Bearer'), 'invalid');
    assert.equal(check('Bearer first-toke'), 'invalid');
    assert.equal(check('Bearer first-tokenX'), 'invalid');
    assert.equal(check('Basic Zmlyc3QtdG9rZW4='), 'invalid');
    assert.equal(check('Bearer first-token extra'), 'invalid');
    assert.equal(check('first-token'), 'invalid');
  });
});
