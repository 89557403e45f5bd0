/** Registers every mode built into this version. The composition root imports this once. */
import { registerBackend } from './backend.js';
import { stateBackend } from './state/backend.js';
import { userspaceBackend } from './userspace/backend.js';
import { nftablesBackend } from './nftables/backend.js';
import { iptablesBackend } from './iptables/backend.js';
import { ipvsBackend } from './ipvs/backend.js';

registerBackend(stateBackend);
registerBackend(userspaceBackend);
registerBackend(nftablesBackend);
registerBackend(iptablesBackend);
registerBackend(ipvsBackend);
