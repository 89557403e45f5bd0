#!/usr/bin/env -S node --max-semi-space-size=4
// Thin launcher: the compiled entry point lives in dist/ (npm run build).
// The node flag above (V8's young generation at most 2 x 4 MB instead of 2 x 16 MB) holds whenever
// this file is run as a program: the image's /usr/local/bin/kube-proxy, the DaemonSet, an npm-installed
// `kube-proxy`. `node bin/kube-proxy.js` skips it; bench/memory applies it as this line gives it.
// At 10,000 Services it lowers the daemon's peak RSS by ~25 MB (docs/benchmarks.md, "Daemon memory").
import { main } from '../dist/main.js';
await main(process.argv.slice(2));
