/**
 * IPVS mode executor. A full sync renders the whole layout (render.ts), reads what the kernel holds
 * (`ipvsadm -Sn`, `ipset save`, `ip addr`) and diffs the two; a partial sync rebuilds only the
 * service ports of the changed services (incremental.ts keeps the layout by service port, with
 * shared set entries and addresses reference counted) and diffs only what they touched against the
 * kernel state kept in memory, so its cost follows the change, not the cluster. Either way only the
 * difference is applied, in batches: `ipset -exist restore`, `iptables-restore --noflush` (only when
 * the constant rules changed), `ipvsadm -R`, `ip -batch`. Removed TCP real servers are drained
 * (weight 0) and deleted once their connections reach 0 or a timeout passes.
 */
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { BackendDeps, Proxier, SyncOutcome } from '../backend.js';
import type { Logger } from '../../observability/logger.js';
import type { IPFamily } from '../../model/types.js';
import type { DesiredState } from '../../proxy/types.js';
import type { FamilyOptions } from '../../proxy/options.js';
import { which, defaultExec } from '../../exec/run.js';
import { ensureRule, iptablesRestore, toolsFor, type Exec, type IPTablesTools } from '../../exec/iptables.js';
import {
  assembleIPVSLayout,
  ipvsContext,
  renderIPVSTables,
  vsArgs,
  type IPVSLayout,
  type LocalAddress,
} from './render.js';
import {
  emptyKernelState,
  parseDeviceAddresses,
  parseIPSetSave,
  parseIPVSConnections,
  parseIPVSSave,
  planPartial,
  planSync,
  rsId,
  type DrainingRS,
  type KernelState,
  type SyncPlan,
} from './diff.js';
import { contextKey, IPVSProgram } from './incremental.js';
import * as N from './names.js';
import { reconcileConntrack } from '../conntrack/conntrack.js';
import { readSysctl, writeSysctl } from '../../exec/sysctl.js';
import { ipsetNames, ipsetRestore, ipsetSave } from '../../exec/ipset.js';
import { ipvsadmList, ipvsadmRestore, ipvsadmSave } from '../../exec/ipvsadm.js';
import { deviceAddresses, ipBatch } from '../../exec/link.js';
import { healthTargets, weighLayout, weighPartial } from './health-weights.js';
import { compareIPVS } from './drift.js';
import type { DriftFinding } from '../drift.js';

const NO_TARGETS: ReadonlySet<string> = new Set();

const TOOL_TIMEOUT_MS = 120_000;

/** Graceful termination timing; upstream checks every minute and has no upper bound. */
export interface GracefulOptions {
  /** How often draining real servers are checked. Default 60 s (env KUBE_PROXY_IPVS_GRACEFUL_CHECK_MS). */
  readonly checkIntervalMs: number;
  /** Delete a draining real server after this long even with open connections. Default 15 min (env KUBE_PROXY_IPVS_GRACEFUL_TIMEOUT_MS). */
  readonly timeoutMs: number;
}

/** Reads the graceful-termination timing from the environment (positive integers, ms); bad values are rejected by name. */
export function gracefulFromEnv(env: NodeJS.ProcessEnv = process.env): GracefulOptions {
  const num = (name: string, dflt: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0)
      throw new RangeError(`${name} must be a positive integer (ms), got ${JSON.stringify(v)}`);
    return n;
  };
  return {
    checkIntervalMs: num('KUBE_PROXY_IPVS_GRACEFUL_CHECK_MS', 60_000),
    timeoutMs: num('KUBE_PROXY_IPVS_GRACEFUL_TIMEOUT_MS', 900_000),
  };
}

export interface IPVSProxierDeps extends BackendDeps {
  /** Spawns tools; run() by default, a fake in unit tests. */
  readonly exec?: Exec;
  readonly iptables: IPTablesTools;
  readonly graceful?: GracefulOptions;
  /** Writes a sysctl (dotted key); /proc/sys by default. */
  readonly writeSysctl?: (key: string, value: string) => void;
  readonly now?: () => number;
  /** Delete stale UDP conntrack entries after each sync (upstream always does). Default true. */
  readonly conntrackCleanup?: boolean;
  /**
   * The machine's addresses, read at every sync: NodePorts follow them when nodePortAddresses matches
   * all. Absent (unit tests), the node IPs stand in.
   */
  readonly localAddresses?: () => readonly LocalAddress[];
}

/** Every address on the machine's interfaces, with the interface's name. */
export function readLocalAddresses(): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const [iface, list] of Object.entries(networkInterfaces()))
    for (const a of list ?? []) out.push({ iface, address: a.address });
  return out;
}

/** What the last sync did (tests, logs, the benchmark). */
export interface IPVSLastSync {
  readonly full: boolean;
  /** Service ports whose fragment was built (the rest were reused). */
  readonly rebuilt: number;
  readonly stats: SyncPlan['stats'];
  readonly iptablesWritten: boolean;
  /** Wall time per phase, ms. */
  readonly phases: Readonly<Record<string, number>>;
}

/** The tools' answers an IPVS-mode kernel state is read from (kube-ipvs0's addresses undefined: no device). */
export interface KernelTexts {
  readonly ipvs: string;
  readonly ipsets: string;
  readonly addresses: string | undefined;
}

/** Asks the tools: `ipvsadm -Sn`, `ipset save`, kube-ipvs0's addresses. */
export async function readKernelTexts(exec: Exec): Promise<KernelTexts> {
  const ipvs = await ipvsadmSave(exec);
  const ipsets = await ipsetSave(exec);
  const addresses = await deviceAddresses(exec, N.DUMMY_DEVICE);
  return { ipvs, ipsets, addresses };
}

/** One family's IPVS-mode kernel state from the tools' answers. Pure. */
export function parseKernelState(texts: KernelTexts, family: IPFamily): KernelState {
  const v6 = family === 'IPv6';
  const st = emptyKernelState();
  for (const [k, vs] of parseIPVSSave(texts.ipvs)) if (vs.address.includes(':') === v6) st.vss.set(k, vs);
  const ours = new Set(N.IPSETS.map((s) => N.familySetName(s.name, family)));
  for (const [k, s] of parseIPSetSave(texts.ipsets, ours)) st.sets.set(k, s);
  st.device = texts.addresses !== undefined;
  for (const a of parseDeviceAddresses(texts.addresses ?? ''))
    if (a.includes(':') === v6) st.addresses.add(a);
  return st;
}

/** Reads one family's IPVS-mode kernel state with the tools. */
export async function readKernelState(exec: Exec, family: IPFamily): Promise<KernelState> {
  return parseKernelState(await readKernelTexts(exec), family);
}

/** A digest of the tools' answers: equal digests, equal kernel state (for the drift check's shortcut). */
function textsDigest(t: KernelTexts): string {
  return createHash('sha256')
    .update(t.ipvs)
    .update('\0')
    .update(t.ipsets)
    .update('\0')
    .update(t.addresses ?? '\u0001')
    .digest('hex');
}

/**
 * One family's IPVS proxier. sync() calls never overlap (the runner guarantees it); the drain timer
 * shares a lock with sync so the two never program the kernel at once.
 */
export class IPVSProxier implements Proxier {
  private readonly exec: Exec;
  private readonly graceful: GracefulOptions;
  private readonly now: () => number;
  /** What the kernel holds, as of the last successful sync; undefined forces a full sync. */
  private kernel: KernelState | undefined;
  /** Bumped whenever the proxier may have changed the kernel (a sync that wrote, a drained real server). */
  private kernelVersion = 0;
  /** The last drift check that found nothing: the kernel version it compared with, and what it read. */
  private cleanRead: { readonly version: number; readonly digest: string } | undefined;
  /** The layout by service port; matches `kernel` while that is defined (kept otherwise to reuse fragments). */
  private program: IPVSProgram | undefined;
  private lastTables: string | undefined;
  private readonly draining = new Map<string, { d: DrainingRS; since: number }>();
  private lock: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly skippedLogged = new Set<string>();
  last: IPVSLastSync | undefined;

  constructor(private readonly deps: IPVSProxierDeps) {
    this.exec = deps.exec ?? defaultExec;
    this.graceful = deps.graceful ?? gracefulFromEnv();
    this.now = deps.now ?? Date.now;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.lock.then(fn, fn);
    this.lock = p.catch(() => undefined);
    return p;
  }

  sync(state: DesiredState, full: boolean): Promise<SyncOutcome> {
    return this.locked(() => this.doSync(state, full));
  }

  /** Real servers currently draining (ids `vsKey/ip:port`). */
  drainingIds(): string[] {
    return [...this.draining.keys()].sort();
  }

  private async doSync(state: DesiredState, full: boolean): Promise<SyncOutcome> {
    const opts = this.deps.options;
    if (state.family !== opts.family)
      throw new RangeError(`ipvs proxier for ${opts.family} got a ${state.family} state`);
    const phases: Record<string, number> = {};
    let t = performance.now();
    const lap = (name: string): void => {
      const n = performance.now();
      phases[name] = n - t;
      t = n;
    };
    // Re-read every sync (upstream does too): an address added to the node gets its NodePorts at the next
    // sync, and a changed address set changes the context, which makes that sync a full one.
    const ctx = ipvsContext(state, opts, this.deps.localAddresses?.());
    const prev = this.program;
    const isFull = full || this.kernel === undefined || prev === undefined || prev.ctxKey !== contextKey(ctx);
    let kernel = this.kernel;
    // Until every batch has landed the kernel's state (and the program's match with it) is unknown:
    // the next sync is a full one that re-reads it.
    this.kernel = undefined;
    let program: IPVSProgram;
    let layout: IPVSLayout | undefined;
    let plan: SyncPlan;
    let tables: string;
    let rebuilt: number;
    if (isFull || !kernel || !prev) {
      // Full: render everything (keeping the fragments of unchanged service ports), read the kernel, diff everything.
      ({ program, rebuilt } = IPVSProgram.full(state, ctx, prev));
      this.program = program;
      layout = weighLayout(
        assembleIPVSLayout(ctx, opts, program.fragments(state.sortedKeys)),
        this.deps.health?.unhealthy() ?? NO_TARGETS,
      );
      tables = layout.nat + layout.filter;
      lap('render');
      this.logSkipped(layout.skipped);
      kernel = await readKernelState(this.exec, opts.family);
      lap('read');
      this.applySysctls(layout);
      await this.ensureJumps();
      lap('setup');
      plan = planSync(kernel, layout, opts.ipvsExcludeCIDRs);
      lap('diff');
    } else {
      // Partial: rebuild only the changed services' ports and diff only what they touched.
      program = prev;
      const update = program.update(state);
      rebuilt = update.rebuilt.length;
      for (const f of update.rebuilt) this.logSkipped(f.skipped);
      const t2 = renderIPVSTables(ctx.family, opts, (set) => program.nonEmpty(set), program.noNodeAccess());
      tables = t2.nat + t2.filter;
      lap('render');
      plan = planPartial(
        kernel,
        weighPartial(update.desired, this.deps.health?.unhealthy() ?? NO_TARGETS),
        opts.ipvsExcludeCIDRs,
      );
      lap('diff');
    }
    const writeTables = isFull || tables !== this.lastTables;
    try {
      if (plan.ipset) await ipsetRestore(this.exec, plan.ipset);
      lap('ipset');
      if (writeTables) {
        this.lastTables = undefined;
        await iptablesRestore(this.exec, this.deps.iptables, tables, { timeoutMs: TOOL_TIMEOUT_MS });
        this.lastTables = tables;
      }
      lap('iptables');
      if (plan.ipvs) await ipvsadmRestore(this.exec, plan.ipvs);
      lap('ipvs');
      if (plan.linkAdd) await ipBatch(this.exec, plan.linkAdd);
      if (plan.linkDel) await ipBatch(this.exec, plan.linkDel);
      lap('link');
    } catch (err) {
      this.lastTables = undefined;
      // The sync loop logs the failure once; this adds the mode's context at debug level.
      this.deps.logger.debug(
        { err, full: layout !== undefined },
        'ipvs sync failed; the next sync is a full one',
      );
      throw err;
    }
    this.kernel = kernel;
    if (isFull || plan.ipset || writeTables || plan.ipvs || plan.linkAdd || plan.linkDel)
      this.kernelVersion++;
    this.program = program;
    this.deps.health?.setTargets(healthTargets([...program.frags.values()].map((e) => e.frag)));
    if (this.deps.conntrackCleanup ?? true) {
      await reconcileConntrack(
        state,
        { exec: this.exec, logger: this.deps.logger, metrics: this.deps.metrics },
        isFull,
      );
      lap('conntrack');
    }
    const since = this.now();
    for (const id of plan.revived) this.draining.delete(id);
    for (const d of plan.draining) this.draining.set(d.id, { d, since });
    if (layout) this.adoptDraining(kernel, layout, since);
    this.armTimer();
    this.last = {
      full: layout !== undefined,
      rebuilt,
      stats: plan.stats,
      iptablesWritten: writeTables,
      phases,
    };
    this.deps.logger.debug(
      {
        family: state.family,
        full: layout !== undefined,
        rebuilt,
        ...plan.stats,
        iptables: writeTables,
        draining: this.draining.size,
      },
      'ipvs sync done',
    );
    const total = program.vsCount + program.rsCount;
    return {
      ruleCounts: {
        [`${state.family} ipvs`]: {
          total,
          written: plan.stats.vsAdded + plan.stats.rsAdded + plan.stats.rsEdited,
        },
      },
    };
  }

  /** After a restart, weight-0 TCP real servers nobody wants are drains in progress: keep draining them. */
  private adoptDraining(kernel: KernelState, layout: IPVSLayout, since: number): void {
    for (const vs of kernel.vss.values()) {
      if (vs.protocol !== 'TCP') continue;
      const want = layout.virtualServers.get(vs.key);
      for (const rs of vs.reals.values()) {
        if (rs.weight !== 0) continue;
        if (want?.realServers.some((r) => r.ip === rs.ip && r.port === rs.port)) continue;
        const id = rsId(vs.key, rs);
        if (!this.draining.has(id)) this.draining.set(id, { d: { id, vs, rs }, since });
      }
    }
  }

  private armTimer(): void {
    if (this.draining.size === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.locked(() => this.checkDraining())
        .catch((err: unknown) => {
          this.deps.logger.warn({ err }, 'ipvs graceful termination check failed');
        })
        .finally(() => {
          this.armTimer();
        });
    }, this.graceful.checkIntervalMs);
    this.timer.unref();
  }

  /**
   * Deletes draining real servers whose active+inactive connections reached 0, whose virtual
   * server is gone, or that have drained longer than the timeout. Returns the ids deleted.
   */
  async checkDraining(): Promise<string[]> {
    if (this.draining.size === 0) return [];
    const conns = parseIPVSConnections(await ipvsadmList(this.exec));
    const now = this.now();
    const lines: string[] = [];
    const done: string[] = [];
    for (const [id, { d, since }] of this.draining) {
      const n = conns.get(id);
      if (n === undefined) {
        done.push(id); // already gone (VS deleted, or removed by someone else)
        continue;
      }
      if (n > 0 && now - since < this.graceful.timeoutMs) continue;
      lines.push(`-d ${vsArgs(d.vs)} -r ${id.slice(id.indexOf('/') + 1)}`);
      done.push(id);
    }
    if (lines.length) await ipvsadmRestore(this.exec, lines.join('\n') + '\n');
    if (done.length > 0) this.kernelVersion++;
    for (const id of done) {
      const e = this.draining.get(id);
      this.draining.delete(id);
      if (e) this.kernel?.vss.get(e.d.vs.key)?.reals.delete(id.slice(id.indexOf('/') + 1));
    }
    if (lines.length)
      this.deps.logger.info(
        { deleted: lines.length, left: this.draining.size },
        'ipvs graceful termination: drained real servers deleted',
      );
    return done;
  }

  private applySysctls(layout: IPVSLayout): void {
    const write =
      this.deps.writeSysctl ??
      ((key: string, value: string) => {
        writeSysctl(key, value);
      });
    for (const s of layout.sysctls) {
      try {
        write(s.key, s.value);
      } catch (err) {
        this.deps.logger.error({ sysctl: s.key, value: s.value, err }, 'cannot set sysctl');
      }
    }
    if (!this.deps.writeSysctl && layout.family === 'IPv4') {
      try {
        if (readSysctl('net/bridge/bridge-nf-call-iptables') !== '1')
          this.deps.logger.info(
            'bridge-nf-call-iptables is not 1; pod-to-service traffic over a Linux bridge may not work',
          );
      } catch {
        this.deps.logger.info(
          'missing br_netfilter module or unset sysctl br-nf-call-iptables; proxy may not work as intended',
        );
      }
    }
  }

  /** Inserts our jumps at position 1 of the built-in chains when missing (upstream EnsureRule Prepend). */
  private async ensureJumps(): Promise<void> {
    // The chains must exist before a rule can jump to them.
    const decl = (table: string, chains: readonly string[]): string =>
      `*${table}\n${chains.map((c) => `:${c} - [0:0]`).join('\n')}\nCOMMIT\n`;
    if (this.lastTables === undefined)
      await iptablesRestore(
        this.exec,
        this.deps.iptables,
        decl('nat', N.NAT_CHAINS) + decl('filter', N.FILTER_CHAINS),
        { timeoutMs: TOOL_TIMEOUT_MS },
      );
    for (const j of N.JUMPS) {
      const args = ['-m', 'comment', '--comment', j.comment, '-j', j.to];
      await ensureRule(
        this.exec,
        this.deps.iptables,
        { table: j.table, chain: j.from, args },
        'prepend',
        30_000,
      );
    }
  }

  private logSkipped(skipped: IPVSLayout['skipped']): void {
    for (const s of skipped) {
      const key = `${s.service} ${s.field} ${s.value}`;
      if (this.skippedLogged.has(key)) continue;
      this.skippedLogged.add(key);
      this.deps.logger.error(
        { service: s.service, field: s.field, value: s.value },
        'service address skipped: not of this family or invalid',
      );
    }
  }

  /**
   * Drift (backends/drift.ts): reads the kernel as a full sync does (virtual and real servers, our
   * ipsets, kube-ipvs0's addresses) and compares with what the last successful sync left. Under the
   * sync lock, so it never sees a half-applied sync; nothing to compare after a failed sync.
   */
  checkDrift(): Promise<readonly DriftFinding[]> {
    return this.locked(async () => {
      const want = this.kernel;
      if (!want) return [];
      const version = this.kernelVersion;
      const texts = await readKernelTexts(this.exec);
      // The tools said exactly what they said at the last clean check, and we have written nothing
      // since: nothing drifted. Parsing and comparing 10,000 services' worth of text costs ~0.3 s of
      // CPU (bench/drift/ipvs-daemon.ts); the digest a few milliseconds.
      const digest = textsDigest(texts);
      if (this.cleanRead?.version === version && this.cleanRead.digest === digest) return [];
      if (this.kernel !== want || this.kernelVersion !== version) return [];
      const findings = compareIPVS(want, parseKernelState(texts, this.deps.options.family));
      this.cleanRead = findings.length === 0 ? { version, digest } : undefined;
      return findings;
    });
  }

  /** A restart: kube-ipvs0 exists (our dummy device; --cleanup deletes it). */
  async hasProgrammedRules(): Promise<boolean> {
    return (await deviceAddresses(this.exec, N.DUMMY_DEVICE)) !== undefined;
  }

  close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return Promise.resolve();
  }
}

/** Best effort: runs `cmd`, logs failures at debug, never throws. Returns whether it succeeded. */
async function tryRun(
  exec: Exec,
  logger: Logger,
  cmd: string,
  args: readonly string[],
  input?: string,
): Promise<boolean> {
  try {
    await exec(cmd, args, { timeoutMs: TOOL_TIMEOUT_MS, ...(input !== undefined ? { input } : {}) });
    return true;
  } catch (err) {
    logger.debug({ cmd, args, err }, 'cleanup step failed (probably nothing to remove)');
    return false;
  }
}

/**
 * The one `iptables-restore --noflush` text that removes everything of ours found in `saved` (an
 * `iptables-save` of all tables): our jumps (each copy), then our chains flushed and deleted.
 * Empty when nothing of ours is there. Pure: the fast path of cleanup, tested on its own.
 */
export function cleanupRestoreText(saved: string): string {
  const lines = saved.split('\n').map((l) => l.trim());
  let out = '';
  for (const [table, chains] of [
    ['nat', N.NAT_CHAINS],
    ['filter', N.FILTER_CHAINS],
  ] as const) {
    // Only the part of the save that belongs to this table.
    const from = lines.indexOf(`*${table}`);
    if (from < 0) continue;
    const to = lines.indexOf('COMMIT', from);
    const body = lines.slice(from + 1, to < 0 ? undefined : to);
    const dels: string[] = [];
    for (const j of N.JUMPS.filter((x) => x.table === table)) {
      const rule = `-A ${j.from} -m comment --comment "${j.comment}" -j ${j.to}`;
      const del = `-D ${j.from} -m comment --comment "${j.comment}" -j ${j.to}`;
      for (const l of body) if (l === rule) dels.push(del);
    }
    const present = chains.filter((c) => body.some((l) => l.startsWith(`:${c} `)));
    if (dels.length === 0 && present.length === 0) continue;
    out += `*${table}\n${dels.join('\n')}${dels.length ? '\n' : ''}${present.map((c) => `:${c} - [0:0]\n`).join('')}${present.map((c) => `-X ${c}\n`).join('')}COMMIT\n`;
  }
  return out;
}

/**
 * `--cleanup` for IPVS mode, as upstream cleanupLeftovers: flush all IPVS virtual servers, delete
 * kube-ipvs0, remove our iptables jumps and chains (legacy and nft, both families), then destroy our
 * ipsets (after iptables, which references them). Each step is one batch when it can be (cleanup
 * also runs in slow emulated VMs, where every spawn costs); when a batch fails (say KUBE-MARK-MASQ
 * is still used by iptables mode's rules) it falls back to one step at a time so one failure does
 * not block the rest.
 */
export async function cleanupIPVS(
  logger: Logger,
  exec: Exec = defaultExec,
  find: (c: string) => string | undefined = which,
): Promise<void> {
  if (find('ipvsadm')) await tryRun(exec, logger, 'ipvsadm', ['-C']);
  if (find('ip')) await tryRun(exec, logger, 'ip', ['link', 'del', N.DUMMY_DEVICE]);
  for (const backend of ['legacy', 'nft'] as const) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      const t = toolsFor(backend, family);
      if (!find(t.iptables) || !find(t.restore) || !find(t.save)) continue;
      let saved: string;
      try {
        saved = (await exec(t.save, [], { timeoutMs: TOOL_TIMEOUT_MS })).stdout;
      } catch {
        continue;
      }
      const batch = cleanupRestoreText(saved);
      if (batch === '' || (await tryRun(exec, logger, t.restore, ['-w', '--noflush'], batch))) continue;
      for (const j of N.JUMPS) {
        const rule = `-A ${j.from} -m comment --comment "${j.comment}" -j ${j.to}`;
        const count = saved.split('\n').filter((l) => l.trim() === rule).length;
        for (let i = 0; i < count; i++)
          await tryRun(exec, logger, t.iptables, [
            '-w',
            '-t',
            j.table,
            '-D',
            j.from,
            '-m',
            'comment',
            '--comment',
            j.comment,
            '-j',
            j.to,
          ]);
      }
      for (const [table, chains] of [
        ['nat', N.NAT_CHAINS],
        ['filter', N.FILTER_CHAINS],
      ] as const) {
        const present = chains.filter((c) => saved.includes(`\n:${c} `));
        if (present.length === 0) continue;
        await tryRun(
          exec,
          logger,
          t.restore,
          ['-w', '--noflush'],
          `*${table}\n${present.map((c) => `:${c} - [0:0]`).join('\n')}\nCOMMIT\n`,
        );
        for (const c of present)
          await tryRun(exec, logger, t.restore, ['-w', '--noflush'], `*${table}\n-X ${c}\nCOMMIT\n`);
      }
    }
  }
  if (find('ipset')) {
    const ours = new Set(N.allSetNames());
    let present: string[] = [...ours];
    try {
      present = (await ipsetNames(exec)).filter((l) => ours.has(l));
    } catch {
      // cannot list: try every name
    }
    if (
      present.length > 0 &&
      !(await tryRun(exec, logger, 'ipset', ['restore'], present.map((s) => `destroy ${s}\n`).join('')))
    )
      for (const s of present) await tryRun(exec, logger, 'ipset', ['destroy', s]);
  }
  logger.info('ipvs mode cleanup done');
}

/** IPVS connection timeouts (config ipvs.tcpTimeout, tcpFinTimeout, udpTimeout), ms; 0 leaves the kernel's value. */
export interface IPVSTimeouts {
  readonly tcpMs: number;
  readonly tcpFinMs: number;
  readonly udpMs: number;
}

/**
 * `ipvsadm --set TCP TCPFIN UDP` arguments (whole seconds, truncated as upstream does; ipvsadm
 * leaves a 0 unchanged), or undefined when every timeout is 0: upstream touches the kernel only
 * when one is set. Throws RangeError naming the field for a negative or non-finite value.
 */
export function ipvsTimeoutArgs(t: IPVSTimeouts): string[] | undefined {
  for (const [k, v] of Object.entries(t))
    if (!Number.isFinite(v) || v < 0)
      throw new RangeError(`ipvs timeout ${k} must be >= 0 ms, got ${String(v)}`);
  if (t.tcpMs <= 0 && t.tcpFinMs <= 0 && t.udpMs <= 0) return undefined;
  const s = (ms: number): string => String(Math.floor(ms / 1000));
  return ['--set', s(t.tcpMs), s(t.tcpFinMs), s(t.udpMs)];
}

/**
 * The timeout fields create() reads from the options when present. FamilyOptions does not carry
 * them yet; once it does (same names), `--ipvs-tcp-timeout` and friends take effect.
 */
export type WithTimeouts = FamilyOptions & {
  readonly ipvsTcpTimeoutMs?: number;
  readonly ipvsTcpFinTimeoutMs?: number;
  readonly ipvsUdpTimeoutMs?: number;
};
