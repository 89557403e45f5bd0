import { test } from 'node:test';
import assert from 'node:assert/strict';
import './index.js';
import { getBackend, registeredModes } from './backend.js';

test('every mode is registered, and only the kernel modes say they program the kernel (and so set sysctls)', () => {
  assert.deepEqual(registeredModes().sort(), ['iptables', 'ipvs', 'nftables', 'state', 'userspace']);
  const kernel = registeredModes()
    .filter((m) => getBackend(m)?.kernel)
    .sort();
  assert.deepEqual(kernel, ['iptables', 'ipvs', 'nftables']);
});
