import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCallOptions } from './options.ts';

describe('parseCallOptions', () => {
  test('defaults: the local edge, 10 s, 440 Hz, 10 s to connect, human output', () => {
    const parsed = parseCallOptions([]);
    assert.equal(parsed.kind, 'call');
    if (parsed.kind !== 'call') return;
    assert.equal(parsed.options.url.href, 'http://127.0.0.1:8080/whip');
    assert.equal(parsed.options.durationS, 10);
    assert.equal(parsed.options.toneHz, 440);
    assert.equal(parsed.options.timeoutS, 10);
    assert.equal(parsed.options.token, undefined);
    assert.equal(parsed.options.json, false);
  });

  test('takes every option', () => {
    const parsed = parseCallOptions([
      '--url',
      'https://edge.example/whip',
      '--duration',
      '2.5',
      '--tone-hz',
      '1000',
      '--token',
      'secret',
      '--timeout',
      '5',
      '--json',
    ]);
    assert.deepEqual(parsed.kind === 'call' && { ...parsed.options, url: parsed.options.url.href }, {
      url: 'https://edge.example/whip',
      durationS: 2.5,
      toneHz: 1000,
      token: 'secret',
      timeoutS: 5,
      json: true,
    });
  });

  test('--region: sent as the caller’s region', () => {
    const parsed = parseCallOptions(['--region', 'eu-west']);
    assert.equal(parsed.kind === 'call' && parsed.options.region, 'eu-west');
    const none = parseCallOptions([]);
    assert.equal(none.kind === 'call' && 'region' in none.options, false);
  });

  test('--help', () => {
    assert.equal(parseCallOptions(['--help']).kind, 'help');
    assert.equal(parseCallOptions(['-h']).kind, 'help');
  });

  for (const [args, pattern] of [
    [['--duration', 'abc'], /^--duration must be a number from 1 to 3600, got "abc"$/],
    [['--duration', '0'], /^--duration /],
    [['--duration', ''], /^--duration /],
    [['--tone-hz', '20000'], /^--tone-hz /],
    [['--timeout=-1'], /^--timeout /],
    [['--url', 'not a url'], /^--url must be an http\(s\) URL/],
    [['--url', 'ftp://x/whip'], /^--url must be an http\(s\) URL/],
    [['--token', 'a b'], /^--token /],
    [['--region', 'eu west'], /^--region /],
    [['--bogus'], /--bogus/],
    [['--url'], /--url/],
    [['extra'], /extra/],
  ] as const) {
    test(`refuses ${args.join(' ')} naming the option`, () => {
      const parsed = parseCallOptions(args);
      assert.equal(parsed.kind, 'error');
      if (parsed.kind === 'error') assert.match(parsed.message, pattern);
    });
  }
});
