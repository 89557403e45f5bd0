// Talks to one net-agent.mjs per namespace (JSON lines over stdin/stdout), so that a scenario can
// make hundreds of connections without paying a node start-up per connection.
import { fileURLToPath } from 'node:url';
import { spawnIn, type LabProcess } from './process.js';

const AGENT = fileURLToPath(new URL('./net-agent.mjs', import.meta.url));

/** Outcome of one TCP connection or UDP exchange. `localPort` is the client's source port, when known. */
export type ConnResult =
  | { readonly ok: true; readonly reply: string; readonly localPort?: number }
  | {
      readonly ok: false;
      /** 'refused' | 'timeout' | 'reset' | 'no-reply' | 'host-unreachable' | 'net-unreachable' | another errno code */
      readonly error: string;
      readonly localPort?: number;
      /** For a TCP timeout: whether the handshake completed ('reply': the path worked, no answer came) or not ('connect'). */
      readonly stage?: 'connect' | 'reply';
      /** For a timeout: how late the agent's timer fired (ms); large values mean the agent was not scheduled. */
      readonly lateMs?: number;
    };

/** What a request to the agent may carry. */
export interface AgentRequest {
  readonly op: 'tcp' | 'udp';
  readonly ip: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly n: number;
  readonly concurrency?: number;
  readonly sourcePort?: number;
  readonly sameSocket?: boolean;
  readonly payload?: string;
}

interface Pending {
  resolve: (r: ConnResult[]) => void;
  reject: (e: Error) => void;
}

/** A started net-agent.mjs. Requests may overlap; answers are matched by id. */
export class NetAgent {
  private nextId = 1;
  private buf = '';
  private readonly pending = new Map<number, Pending>();
  private readonly ready: Promise<void>;

  private constructor(readonly proc: LabProcess) {
    this.ready = proc.waitForOutput(/"ready":true/, 15_000).then(() => undefined);
    // The agent's first line is its ready marker; everything after it is answers.
    proc.onStdout((d) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.onLine(line);
      }
    });
    void proc.exited.then((info) => {
      const err = new Error(
        `lab: net agent in ${proc.ns} exited (${info.code ?? info.signal}); output:\n${proc.tail()}`,
      );
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  /** Starts an agent in `ns` (the caller owns and eventually kills `agent.proc`). */
  static start(ns: string): NetAgent {
    return new NetAgent(spawnIn(ns, process.execPath, [AGENT]));
  }

  /** Sends one request and resolves with one result per attempt, in order. */
  async request(req: AgentRequest): Promise<ConnResult[]> {
    await this.ready;
    if (this.proc.exitInfo) throw new Error(`lab: net agent in ${this.proc.ns} is not running`);
    const id = this.nextId++;
    // Keep the event loop alive only while an answer is outstanding, so a forgotten lab never hangs a test file.
    if (this.pending.size === 0) this.proc.setRef(true);
    const answer = new Promise<ConnResult[]>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.proc.stdin!.write(JSON.stringify({ id, ...req }) + '\n');
    try {
      return await answer;
    } finally {
      if (this.pending.size === 0) this.proc.setRef(false);
    }
  }

  private onLine(line: string): void {
    let msg: { id?: number; results?: ConnResult[]; fatal?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.id === undefined) return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.fatal !== undefined) p.reject(new Error(`lab: net agent in ${this.proc.ns}: ${msg.fatal}`));
    else p.resolve(msg.results ?? []);
  }
}
