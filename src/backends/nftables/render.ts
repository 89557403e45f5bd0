/** `kube-proxy render --proxy-mode nftables`: the script a full sync of a fresh proxier loads. Pure. */
import type { FamilyOptions } from '../../proxy/options.js';
import type { DesiredState } from '../../proxy/types.js';
import { buildLayout } from './render-layout.js';
import { SlotAllocator } from './slots.js';
import { fullScript } from './render-script.js';

/**
 * One section per family, each starting with `# family: ipv4|ipv6` and followed by the exact text a
 * fresh proxier sends to `nft -f -` on its first (full) sync. Service ports that cannot be rendered
 * safely are listed as `# skipped:` comments. Byte-identical for the same input. With `whole`, each
 * state is part of the whole one of its family and gets the whole render's slot numbers.
 */
export function renderNFTables(
  states: readonly DesiredState[],
  options: readonly FamilyOptions[],
  whole?: readonly DesiredState[],
): string {
  const parts: string[] = [];
  for (const state of states) {
    const opts = options.find((o) => o.family === state.family);
    if (!opts) throw new RangeError(`nftables render: no options for family ${state.family}`);
    const layout = buildLayout(
      state,
      opts,
      new SlotAllocator(),
      whole?.find((w) => w.family === state.family),
    );
    let text = `# family: ${state.family.toLowerCase()}\n`;
    for (const s of layout.skipped)
      text += `# skipped: ${JSON.stringify(s.service)}: ${s.field} ${JSON.stringify(s.value)}\n`;
    parts.push(text + fullScript(layout));
  }
  return parts.join('');
}
