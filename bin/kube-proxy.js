#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=1048576 node --max-semi-space-size=4
// Thin launcher: the compiled entry point lives in dist/ (npm run build).
// The line above holds whenever this file is run as a program: the image's /usr/local/bin/kube-proxy,
// the DaemonSet, an npm-installed `kube-proxy`. `node bin/kube-proxy.js` skips it; bench/memory
// applies it as this line gives it (docs/benchmarks.md, "Daemon memory"):
// - the node flag: V8's young generation at most 2 x 4 MB instead of 2 x 16 MB (~25 MB less peak RSS
//   at 10,000 Services);
// - glibc's malloc: blocks of 64 KiB and more (tool output read through 64 KiB Buffers, restore input)
//   are mapped and unmapped on their own, and freed memory above 1 MiB goes back to the kernel, instead
//   of staying in the arenas after a big read (~13 MB less peak on a restart onto a programmed
//   iptables node at 10,000 Services, 3 runs of 3). A process cannot set these for itself once started,
//   so they are set here, for node and the tools it runs.
import { main } from '../dist/main.js';
await main(process.argv.slice(2));
