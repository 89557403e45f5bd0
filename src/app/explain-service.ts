/**
 * `GET /debug/explain` in the daemon: the same answer as `kube-proxy explain -o json`, from the
 * state of the last successful sync of each family. The rules are rendered and loaded into a tracer
 * once per synced state, on the first request after it (so a request costs a trace, not a render).
 */
import type { Backend } from '../backends/backend.js';
import type { LocalAddress } from '../backends/ipvs/render.js';
import type { IPFamily } from '../model/types.js';
import type { FamilyOptions } from '../proxy/options.js';
import type { DesiredState } from '../proxy/types.js';
import {
  ExplainInputError,
  explainWith,
  formatJSON,
  loadTracer,
  parseExplainRequest,
  stateForFamily,
  type ExplainContext,
  type Tracer,
} from '../explain/explain.js';
import { compareLive } from '../explain/live.js';
import { readLiveRules } from './explain-live-read.js';

/** An HTTP answer: status and JSON body. */
export interface ExplainReply {
  readonly status: number;
  readonly body: string;
}

interface Loaded {
  readonly ctx: ExplainContext;
  tracer?: Tracer;
}

/** Keeps the latest synced state per family and answers explain queries about it. */
export class ExplainService {
  private readonly families = new Map<IPFamily, Loaded>();

  constructor(
    private readonly backend: Backend,
    private readonly interfaceAddresses: readonly string[],
    /** The machine's addresses with their interfaces, read when a synced state is rendered. */
    private readonly localAddresses?: () => readonly LocalAddress[],
  ) {}

  /** Records the state a sync just programmed (the tracer is rebuilt lazily). */
  synced(state: DesiredState, options: FamilyOptions): void {
    this.families.set(state.family, {
      ctx: {
        mode: this.backend.mode,
        state,
        options,
        rules: '',
        interfaceAddresses: this.interfaceAddresses,
      },
    });
  }

  /** Answers `?protocol=&source=&destination=[&live=1]`: 200 with the JSON, 400 for bad input, 503 before the first sync. */
  async handle(query: URLSearchParams): Promise<ExplainReply> {
    const err = (status: number, message: string): ExplainReply => ({
      status,
      body: `${JSON.stringify({ error: message })}\n`,
    });
    try {
      const p = parseExplainRequest(
        {
          protocol: query.get('protocol') ?? undefined,
          source: query.get('source') ?? undefined,
          destination: query.get('destination') ?? undefined,
        },
        (n) => n,
      );
      if (this.families.size === 0) return err(503, 'no sync has completed yet');
      const loaded = stateForFamily(
        [...this.families.values()].map((l) => ({ state: l.ctx.state, l })),
        p,
        'destination',
      ).l;
      let ctx = loaded.ctx;
      if (!loaded.tracer) {
        const localAddresses = this.localAddresses?.();
        ctx = {
          ...ctx,
          rules: this.backend.render([ctx.state], [ctx.options], undefined, { localAddresses }),
          ...(localAddresses ? { localAddresses } : {}),
        };
        Object.assign(loaded, { ctx, tracer: loadTracer(ctx) });
      }
      const live = query.get('live');
      if (live === '1' || live === 'true') {
        const cmp = compareLive(ctx, await readLiveRules(ctx.mode, ctx.state.family), p);
        const j = JSON.parse(formatJSON(cmp.live)) as Record<string, unknown>;
        return { status: 200, body: `${JSON.stringify({ ...j, differences: cmp.differences })}\n` };
      }
      return { status: 200, body: formatJSON(explainWith(loaded.tracer!, ctx, p)) };
    } catch (e) {
      if (e instanceof ExplainInputError) return err(400, e.message);
      return err(500, e instanceof Error ? e.message : String(e));
    }
  }
}
