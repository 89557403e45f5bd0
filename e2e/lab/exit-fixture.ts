// Child process for lab.test.ts: builds a lab, prints its prefix, then either waits to be
// signalled ('wait') or returns without destroy() ('forget'), to prove the exit/signal cleanup.
import { createLab } from './topology.js';

const mode = process.argv[2] ?? 'wait';
const lab = await createLab({ pods: 1 });
await lab.startBackend('pod1', { tcpPorts: [8080] });
const r = await lab.tcp('node', lab.pod('pod1').ip, 8080);
process.stdout.write(JSON.stringify({ prefix: lab.prefix, ok: r.ok }) + '\n');
if (mode === 'wait') setInterval(() => undefined, 1000);
