import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareIPVS } from './drift.js';
import { emptyKernelState, type KernelState } from './diff.js';

function state(): KernelState {
  const s = emptyKernelState();
  s.device = true;
  s.addresses.add('172.30.0.41');
  s.vss.set('tcp 172.30.0.41:80', {
    key: 'tcp 172.30.0.41:80',
    protocol: 'TCP',
    address: '172.30.0.41',
    port: 80,
    scheduler: 'rr',
    persistence: 0,
    reals: new Map([
      ['10.244.0.11:8080', { ip: '10.244.0.11', port: 8080, weight: 1 }],
      ['10.244.0.12:8080', { ip: '10.244.0.12', port: 8080, weight: 1 }],
    ]),
  });
  s.sets.set('KUBE-CLUSTER-IP', { type: 'hash:ip,port', entries: new Set(['172.30.0.41,tcp:80']) });
  return s;
}

test('an intact kernel has no drift; extra virtual servers of other owners are not reported', () => {
  const have = state();
  have.vss.set('tcp 10.9.9.9:443', { ...have.vss.get('tcp 172.30.0.41:80')!, key: 'tcp 10.9.9.9:443' });
  assert.deepEqual(compareIPVS(state(), have), []);
});

test('a deleted virtual server, lost real servers, a flushed ipset, a lost address and a deleted device are named', () => {
  const have = state();
  have.vss.delete('tcp 172.30.0.41:80');
  assert.deepEqual(compareIPVS(state(), have), [
    { object: 'virtual_server', message: 'virtual server 172.30.0.41:80 deleted' },
  ]);
  const rs = state();
  rs.vss.get('tcp 172.30.0.41:80')!.reals.delete('10.244.0.12:8080');
  rs.sets.get('KUBE-CLUSTER-IP')!.entries.clear();
  rs.addresses.clear();
  assert.deepEqual(compareIPVS(state(), rs), [
    { object: 'address', message: 'address 172.30.0.41 removed from kube-ipvs0' },
    { object: 'real_server', message: 'virtual server 172.30.0.41:80 lost 1 real servers' },
    { object: 'ipset', message: 'ipset KUBE-CLUSTER-IP lost 1 of its 1 members' },
  ]);
  const gone = state();
  gone.device = false;
  gone.sets.delete('KUBE-CLUSTER-IP');
  assert.deepEqual(compareIPVS(state(), gone), [
    { object: 'address', message: 'kube-ipvs0 missing' },
    { object: 'ipset', message: 'ipset KUBE-CLUSTER-IP missing' },
  ]);
});

test('many deleted virtual servers are summed up after the first five', () => {
  const want = emptyKernelState();
  for (let i = 0; i < 8; i++)
    want.vss.set(`tcp 172.30.0.${i}:80`, {
      ...state().vss.get('tcp 172.30.0.41:80')!,
      key: `tcp 172.30.0.${i}:80`,
    });
  const f = compareIPVS(want, emptyKernelState());
  assert.equal(f.length, 6);
  assert.equal(f[5]?.message, 'and 3 more virtual servers deleted');
});
