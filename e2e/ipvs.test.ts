/**
 * IPVS mode end to end. The host kernel has no IP_VS, so this boots ONE VM whose kernel has it
 * (e2e/vm/run-in-ipvs-vm.sh: a Debian kernel under qemu, TCG emulation here, ~10-40 s to boot),
 * runs the whole in-VM suite (e2e/vm/ipvs-suite.vm.ts) there, and reports each of its scenarios as
 * a test here. Skips with "IPVS VM unavailable: …" when the VM cannot run on this machine.
 *
 * env: VM_OUTPUT_FILE (write the whole in-VM output there), IPVS_VM_CACHE (kernel cache, default /var/cache/ipvs-vm), VM_ACCEL (default tcg here: KVM on
 * these hosts hangs the guest and costs a 30 s boot timeout), VM_TIMEOUT (default 900 s), VM_MEM (default 2048 MiB).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNNER = fileURLToPath(new URL('./vm/run-in-ipvs-vm.sh', import.meta.url));
const BUILDER = fileURLToPath(new URL('./vm/build-initramfs.sh', import.meta.url));
const SUITE = 'e2e/vm/ipvs-suite.vm.ts';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = process.env.IPVS_VM_CACHE ?? '/var/cache/ipvs-vm';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why the VM cannot run here, or undefined. Builds the kernel cache on first use (apt-get download). */
function vmUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'IPVS VM unavailable: needs root';
  const missing = [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['busybox', 'busybox-static'],
    ['depmod', 'kmod'],
    ['cpio', 'cpio'],
    ['ipvsadm', 'ipvsadm'],
    ['ipset', 'ipset'],
  ].filter(([c]) => !has(c!));
  if (missing.length)
    return `IPVS VM unavailable: missing ${missing.map(([c, p]) => `${c} (apt-get install ${p})`).join(', ')}`;
  if (!existsSync(`${CACHE}/initramfs.cpio.gz`) || !existsSync(`${CACHE}/vmlinuz`)) {
    const b = spawnSync(BUILDER, { encoding: 'utf8', timeout: 600_000 });
    if (b.status !== 0)
      return `IPVS VM unavailable: building the kernel cache in ${CACHE} failed: ${(b.stderr || b.stdout).trim().split('\n').slice(-3).join(' | ')}`;
  }
  return undefined;
}

interface Scenario {
  readonly name: string;
  readonly ok: boolean;
  readonly skip: boolean;
  readonly detail: string;
  readonly durationMs: number | undefined;
}

/** Parses node:test TAP output: the leaf `ok`/`not ok` lines of the suite's tests with their YAML detail. */
export function parseTap(tap: string): Scenario[] {
  const lines = tap.split('\n');
  const out: Scenario[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {4}(not ok|ok) \d+ - (.*?)(\s+# SKIP.*)?$/.exec(lines[i]!);
    if (!m) continue;
    const detail: string[] = [];
    for (let j = i + 1; j < lines.length && /^ {6}/.test(lines[j]!); j++) detail.push(lines[j]!.slice(6));
    const d = /^duration_ms: ([\d.]+)/m.exec(detail.join('\n'));
    out.push({
      name: m[2]!,
      ok: m[1] === 'ok',
      skip: m[3] !== undefined,
      detail: detail.join('\n'),
      durationMs: d ? Number(d[1]) : undefined,
    });
  }
  return out;
}

/** The detail of a failed top-level suite (e.g. its before hook threw), or '' when none failed. */
export function suiteFailure(tap: string): string {
  const lines = tap.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^not ok \d+ - /.test(lines[i]!)) continue;
    const detail: string[] = [];
    for (let j = i + 1; j < lines.length && /^ {2}/.test(lines[j]!); j++) detail.push(lines[j]!.slice(2));
    // A suite fails too when one of its scenarios did: those are reported one by one.
    if (detail.some((l) => /failureType: 'subtestsFailed'/.test(l))) continue;
    out.push(lines[i]!, ...detail);
  }
  return out.join('\n');
}

/** Newest modification time of a file under `dir` (ms). */
function newestMtime(dir: string): number {
  let m = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    m = Math.max(m, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return m;
}

const unavailable = vmUnavailable();

describe('ipvs mode (in a VM with IPVS)', { skip: unavailable }, () => {
  let scenarios: Scenario[] = [];
  let output = '';
  let code: number | null = null;
  let suiteError = '';

  before(() => {
    // The VM runs the daemon from dist/ (tsx transpiling under TCG is too slow): build it when stale.
    const dist = join(ROOT, 'dist/main.js');
    if (!existsSync(dist) || statSync(dist).mtimeMs < newestMtime(join(ROOT, 'src'))) {
      const b = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
      assert.equal(b.status, 0, `npm run build failed:\n${b.stdout}${b.stderr}`);
    }
    const r = spawnSync(RUNNER, ['node', '--import', 'tsx', '--test', '--test-reporter=tap', SUITE], {
      cwd: ROOT,
      encoding: 'utf8',
      // 2 GiB: the lab runs a dozen node processes on a tmpfs overlay.
      env: {
        ...process.env,
        VM_ACCEL: process.env.VM_ACCEL ?? 'tcg',
        VM_TIMEOUT: process.env.VM_TIMEOUT ?? '900',
        VM_MEM: process.env.VM_MEM ?? '2048',
      },
      timeout: 1_000_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    output = `${r.stdout}\n${r.stderr}`;
    // The whole in-VM output (the daemon's log tails of a failed before hook are only there).
    if (process.env.VM_OUTPUT_FILE) writeFileSync(process.env.VM_OUTPUT_FILE, output);
    code = r.status;
    scenarios = parseTap(r.stdout);
    suiteError = suiteFailure(r.stdout);
  });

  test('the VM booted and ran the suite', (t) => {
    // Where the minutes went: the runner's boot/total line, the suite's marks, each scenario's time.
    for (const l of output.split('\n'))
      if (/^\[vm\]|\[timing\]/.test(l.replace(/^# /, ''))) t.diagnostic(l.replace(/^# /, ''));
    for (const s of scenarios)
      t.diagnostic(`${s.ok ? 'ok' : 'FAILED'} ${((s.durationMs ?? 0) / 1000).toFixed(1)} s  ${s.name}`);
    assert.notEqual(code, 124, `VM timed out:\n${output.slice(-3000)}`);
    assert.notEqual(code, 125, `VM failed to boot:\n${output.slice(-3000)}`);
    // A failed before hook cancels every scenario; say why once, here, in full.
    assert.equal(suiteError, '', `the in-VM suite failed:\n${suiteError.slice(-6000)}`);
    assert.ok(
      scenarios.length >= 10,
      `expected the in-VM scenarios, got ${scenarios.length}:\n${output.slice(-3000)}`,
    );
  });

  // One host test per in-VM scenario, so CI shows which ones pass.
  for (const name of [
    'kernel state: kube-ipvs0 holds the VIPs, virtual servers are masqueraded, ipsets filled',
    'rr scheduler: exact alternation between the two endpoints',
    'ClientIP affinity (persistence): every connection of one client lands on one endpoint',
    'NodePort from the external client, masqueraded',
    'NodePort on every local address but kube-ipvs0: the bridge address from a pod, and an address added later',
    'externalTrafficPolicy=Local: LB traffic reaches only the local endpoint with the client IP preserved',
    'LoadBalancerSourceRanges: the allowed source passes, others are dropped',
    'no endpoints: the connection is refused',
    'a VIP on a port that is no service is rejected (KUBE-IPVS-FILTER)',
    'explain --live: agrees, then names a virtual server deleted behind the daemon (exit 3)',
    'hairpin: a pod reaching itself through its service is masqueraded (KUBE-LOOP-BACK)',
    'graceful termination: open connection survives, new ones avoid the endpoint, then it is deleted',
    'endpoint added back: new connections reach it again',
    'drift: a deleted virtual server, a flushed ipset and a removed VIP are repaired within one sync period',
    'sh scheduler (after a restart that edits the virtual servers): one client always reaches one endpoint',
    'lc scheduler: a new connection goes to the endpoint with the fewest active connections',
    'health check: a stopped listener goes to weight 0, takes no new connection, and gets its weight back',
    '--cleanup removes virtual servers, kube-ipvs0, our ipsets and chains',
  ]) {
    test(`in VM: ${name}`, () => {
      const s = scenarios.find((x) => x.name === name);
      assert.ok(s, `scenario did not run in the VM:\n${output.slice(-2000)}`);
      assert.ok(!s.skip, `scenario skipped in the VM:\n${s.detail}`);
      assert.ok(
        s.ok,
        `in-VM scenario "${name}" failed:\n${s.detail}${/cancelledByParent/.test(s.detail) ? `\nthe suite:\n${suiteError.slice(-3000)}` : ''}`,
      );
    });
  }

  test('no other in-VM scenario failed', () => {
    const bad = scenarios.filter((s) => !s.ok);
    assert.deepEqual(
      bad.map((s) => s.name),
      [],
      bad.map((s) => `${s.name}:\n${s.detail}`).join('\n\n'),
    );
  });
});
