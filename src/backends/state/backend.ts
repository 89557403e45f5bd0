/** Registration of the `state` pseudo-mode: render only; its "data plane" is the log. */
import type { Backend, Proxier } from '../backend.js';
import { renderState } from './render.js';

export const stateBackend: Backend = {
  mode: 'state',
  kernel: false,
  watches: [],
  prerequisites: [],
  syncPeriods: (config) => ({
    syncPeriodMs: config.iptables.syncPeriodMs,
    minSyncPeriodMs: config.iptables.minSyncPeriodMs,
  }),
  fromConfig: () => stateBackend,
  render: (states) => renderState(states),
  create: ({ logger }) => {
    const p: Proxier = {
      sync: (state, full) => {
        logger.info(
          {
            family: state.family,
            full,
            servicePorts: state.services.size,
            changedServices: state.changedServices.size,
          },
          'desired state computed (state mode programs nothing)',
        );
        return Promise.resolve({});
      },
      close: () => Promise.resolve(),
    };
    return Promise.resolve(p);
  },
  cleanup: () => Promise.resolve(),
};
