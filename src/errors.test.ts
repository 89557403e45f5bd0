import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, KpError, ModeUnavailableError, describeFailure, isKpError } from './errors.js';
import { ExecError } from './exec/run.js';
import { ConfigError, FlagError } from './config/errors.js';
import { ValidationError } from './model/validate.js';
import { ApiStatusError, ApiTransportError, ConnectionConfigError } from './k8s/client.js';
import { GoneError } from './k8s/reflector.js';
import { serializeError } from './observability/logger.js';
import { ExplainInputError } from './explain/explain.js';

test('every error class of the project is a KpError with a catalogued code and its own name', () => {
  const samples: KpError[] = [
    new ExecError('KP_ERR_EXEC_FAILED', 'nft', ['-f', '-'], 1, 'Error: syntax'),
    new FlagError('unknown flag: --bogus'),
    new ConfigError(['a: bad', 'b: bad']),
    new ValidationError('Service', 'ns', 'web', 'spec.ports[0].port', 0, 'must be 1-65535'),
    new ConnectionConfigError('--kubeconfig=/x: no such file'),
    new ApiStatusError(401, 'Unauthorized', 'list services: 401'),
    new ApiTransportError('watch: idle timeout', true),
    new GoneError('watch: too old resource version'),
    new ModeUnavailableError('nftables mode needs nft'),
    new ExplainInputError('--source', '1.2.3', 'is not an IP address'),
  ];
  const names = new Set<string>();
  for (const e of samples) {
    assert.ok(isKpError(e), e.name);
    assert.ok(e instanceof Error);
    assert.ok(Object.hasOwn(ERROR_CODES, e.code), `${e.name}: ${e.code} is catalogued`);
    assert.notEqual(e.name, 'Error');
    assert.notEqual(e.name, 'KpError');
    names.add(e.name);
  }
  assert.equal(names.size, samples.length, 'each class has its own name');
});

test('describeFailure: one line for a catalogued error, with its cause; the stack for a bug', () => {
  const cause = new Error('ENOENT: no such file or directory');
  const e = new ConnectionConfigError('--kubeconfig=/nonexistent: cannot read the file', { cause });
  assert.equal(
    describeFailure(e),
    '--kubeconfig=/nonexistent: cannot read the file: ENOENT: no such file or directory',
  );
  assert.ok(!describeFailure(e).includes('\n'));
  // A cause already quoted in the message is not repeated.
  const quoted = new KpError('KP_ERR_SOURCE', 'manifests directory /x: ENOENT', {
    cause: new Error('ENOENT'),
  });
  assert.equal(describeFailure(quoted), 'manifests directory /x: ENOENT');
  const bug = new TypeError('x is undefined');
  assert.match(describeFailure(bug), /^TypeError: x is undefined\n\s+at /);
  assert.equal(describeFailure('plain'), 'plain');
});

test('serializeError: code, capped stderr and cause reach the log; no stack for catalogued errors', () => {
  const stderr = 'x'.repeat(5000);
  const e = new KpError('KP_ERR_CLEANUP', 'cleanup did not complete', {
    cause: new ExecError('KP_ERR_EXEC_FAILED', 'iptables-restore', [], 4, stderr),
  });
  const s = serializeError(e) as Record<string, unknown>;
  assert.equal(s.code, 'KP_ERR_CLEANUP');
  assert.equal(s.type, 'KpError');
  assert.equal(s.stack, undefined);
  const c = s.cause as Record<string, unknown>;
  assert.equal(c.code, 'KP_ERR_EXEC_FAILED');
  assert.equal(c.type, 'ExecError');
  assert.ok(typeof c.stderr === 'string' && c.stderr.length <= 2003);
  const bug = serializeError(new RangeError('boom')) as Record<string, unknown>;
  assert.match(String(bug.stack), /RangeError: boom/);
  assert.equal(serializeError('text'), 'text');
});
