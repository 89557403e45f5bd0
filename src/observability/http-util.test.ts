import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { joinHostPort, parseHostPort, requestPath } from './http-util.js';

describe('parseHostPort', () => {
  it('accepts the shapes Go accepts for a listen address', () => {
    assert.deepEqual(parseHostPort('0.0.0.0:10256'), { host: '0.0.0.0', port: 10256 });
    assert.deepEqual(parseHostPort(':10249'), { host: '', port: 10249 });
    assert.deepEqual(parseHostPort('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseHostPort('[::]:10256'), { host: '::', port: 10256 });
  });

  it('rejects anything else, naming the value', () => {
    for (const bad of ['10256', '::1:80', '1.2.3.4:65536', '1.2.3.4:', 'host:port', '']) {
      assert.throws(
        () => parseHostPort(bad),
        (e: unknown) =>
          e instanceof Error && e.message.startsWith(`invalid bind address ${JSON.stringify(bad)}:`),
        bad,
      );
    }
  });
});

describe('joinHostPort / requestPath', () => {
  it('brackets IPv6 literals and strips queries', () => {
    assert.equal(joinHostPort('::1', 80), '[::1]:80');
    assert.equal(joinHostPort('10.0.0.1', 80), '10.0.0.1:80');
    assert.equal(requestPath('/healthz?verbose'), '/healthz');
    assert.equal(requestPath(undefined), '/');
  });
});
