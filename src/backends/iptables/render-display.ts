/**
 * `kube-proxy render --proxy-mode iptables`: the text a user reads (and golden tests pin) for what the
 * daemon's first full sync programs. Pure.
 */
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState } from '../../proxy/types.js';
import { JUMP_RULES, renderIPTables, type IPTablesTable, type JumpRule, type RenderMode } from './render.js';

/**
 * The jumps as a restore fragment, one `*table` block each: target chains declared first (a `:` line
 * for a built-in chain would flush it under --noflush, so built-ins are never declared), then `-A`
 * lines in the order the kernel ends up with after upstream's insert-at-1 of each jump (reverse of
 * the ensure order).
 */
export function renderJumpFragment(jumps: readonly JumpRule[] = JUMP_RULES): string {
  let out = '';
  for (const table of ['filter', 'nat'] as const satisfies readonly IPTablesTable[]) {
    const mine = jumps.filter((j) => j.table === table);
    if (mine.length === 0) continue;
    const targets = [...new Set(mine.map((j) => j.target))];
    out += `*${table}\n`;
    for (const t of targets) out += `:${t} - [0:0]\n`;
    for (const j of [...mine].reverse()) out += `${j.rule}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

/**
 * For each state (one per IP family): a `# family: ipv4|ipv6` line when there is more than one state
 * (dual-stack), then `# jumps`, the jump fragment, then `# table: filter` and `# table: nat` with the
 * full-sync documents exactly as the daemon restores them (production mark format, no nfacct, no
 * stale chains). Each family's part, fed to `iptables-restore --noflush` (ip6tables-restore for IPv6)
 * in an empty namespace, gives a working dataplane. `options` are matched to states by family, falling
 * back to the same index. Byte-identical output for the same input.
 */
export function renderForDisplay(
  states: readonly DesiredState[],
  options: readonly FamilyOptions[],
  mode: Partial<RenderMode> = {},
): string {
  let out = '';
  states.forEach((state, i) => {
    const opts = options.find((o) => o.family === state.family) ?? options[i];
    if (!opts) throw new RangeError(`renderForDisplay: no FamilyOptions for family ${state.family}`);
    const plan = renderIPTables(state, opts, { ...mode, full: true });
    if (states.length > 1) out += `# family: ${state.family.toLowerCase()}\n`;
    out += '# jumps (ensured in the built-in chains on full syncs)\n';
    out += renderJumpFragment(plan.jumps);
    out += '# table: filter\n';
    out += plan.filter;
    out += '# table: nat\n';
    out += plan.nat;
  });
  return out;
}
