/** Registers every mode built into this version. The composition root imports this once. */
import { registerBackend } from './backend.js';
import { stateBackend } from './state/backend.js';
import { userspaceBackend } from './userspace/relay.js';

registerBackend(stateBackend);
registerBackend(userspaceBackend);
registerBackend((await import('./nftables/proxier.js')).nftablesBackend);
registerBackend((await import('./iptables/backend.js')).iptablesBackend);
registerBackend((await import('./ipvs/proxier.js')).ipvsBackend);
