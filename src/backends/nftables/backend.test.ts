import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NFT_SESSION_ENV, nftSessionWanted } from './backend.js';

test('partial syncs go through the kept nft -i unless KUBE_PROXY_NFT_SESSION=0', () => {
  assert.equal(nftSessionWanted({}), true);
  assert.equal(nftSessionWanted({ [NFT_SESSION_ENV]: '1' }), true);
  assert.equal(nftSessionWanted({ [NFT_SESSION_ENV]: '' }), true);
  assert.equal(nftSessionWanted({ [NFT_SESSION_ENV]: '0' }), false);
});
