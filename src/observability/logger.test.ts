import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, formatKlogLine } from './logger.js';
import { KpError } from '../errors.js';

/** A writable that keeps what it is given. */
function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return Object.assign(w, { text: () => chunks.join('') });
}

// klog's header: severity, MMDD hh:mm:ss.uuuuuu, pid in 7 columns, source, "] ", quoted message.
const KLOG_LINE = /^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} {1,7}\d+ \S+\] "/;

test('formatKlogLine gives klog text lines: header, quoted message, key=value pairs', () => {
  const line = formatKlogLine(
    {
      level: 30,
      time: '2026-12-02T11:53:14.123Z',
      component: 'kube-proxy',
      msg: 'set sysctl',
      sysctl: 'net.ipv4.ip_forward',
      to: 1,
      ok: true,
      ports: [80, 443],
    },
    42,
  );
  assert.equal(
    line,
    'I1202 11:53:14.123000      42 kube-proxy] "set sysctl" sysctl="net.ipv4.ip_forward" to=1 ok=true ports=[80,443]',
  );
  assert.match(line, KLOG_LINE);
  assert.match(
    formatKlogLine({ level: 40, time: 0, msg: 'w' }, 1),
    /^W0101 00:00:00\.000000 {7}1 kube-proxy\] "w"$/,
  );
  assert.match(formatKlogLine({ level: 50, time: 0, msg: 'e' }, 1), /^E0101 /);
  // An error keeps to one line: its message, its code, a quoted stack.
  const e = formatKlogLine(
    {
      level: 50,
      time: 0,
      msg: 'boom',
      err: { type: 'Error', message: 'a\nb', code: 'KP_ERR_X', stack: 'Error: a\n  at x' },
    },
    1,
  );
  assert.equal(e.split('\n').length, 1);
  assert.match(e, / err="a\\nb" errCode="KP_ERR_X" stacktrace="Error: a\\n {2}at x"$/);
});

test('createLogger text format writes klog lines; JSON stays the library default', () => {
  const text = sink();
  const log = createLogger(0, text, { format: 'text' });
  log.info({ mode: 'iptables' }, 'starting');
  log.warn({ err: new KpError('KP_ERR_CONFIG', 'bad file') }, 'config');
  const lines = text.text().trim().split('\n');
  assert.equal(lines.length, 2, text.text());
  assert.match(lines[0]!, KLOG_LINE);
  assert.match(lines[0]!, /^I.* kube-proxy\] "starting" mode="iptables"$/);
  assert.match(lines[1]!, /^W.*"config" err="bad file"/);
  const json = sink();
  createLogger(0, json).info('x');
  assert.equal((JSON.parse(json.text()) as { msg: string }).msg, 'x');
});

test('split stream: info goes to the info destination, warnings and errors to the main one', () => {
  const err = sink();
  const out = sink();
  const log = createLogger(0, err, { format: 'text', splitStream: true, infoDestination: out });
  log.info('hello');
  log.error('bad');
  assert.match(out.text(), /"hello"/);
  assert.doesNotMatch(out.text(), /"bad"/);
  assert.match(err.text(), /^E.*"bad"/);
});
