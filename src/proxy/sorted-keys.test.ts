import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keysOfService, lowerBound } from './sorted-keys.js';

test('lowerBound is the insertion point; keysOfService takes only that service, named and unnamed ports', () => {
  const keys = ['ns/a/TCP', 'ns/a:dns/UDP', 'ns/a:http/TCP', 'ns/ab:http/TCP', 'ns/b:x/TCP'].sort();
  assert.equal(lowerBound(keys, ''), 0);
  assert.equal(lowerBound(keys, 'zzz'), keys.length);
  assert.equal(keys[lowerBound(keys, 'ns/ab')], 'ns/ab:http/TCP');
  assert.deepEqual(keysOfService(keys, 'ns/a').sort(), ['ns/a/TCP', 'ns/a:dns/UDP', 'ns/a:http/TCP']);
  assert.deepEqual(keysOfService(keys, 'ns/ab'), ['ns/ab:http/TCP']);
  assert.deepEqual(keysOfService(keys, 'ns/c'), []);
});
