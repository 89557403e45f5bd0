#!/usr/bin/env bash
# The demo: kube-proxy-ts on its embedded default (the manifests in examples/). Installs what it needs,
# builds, and runs. Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
npm run -s build
exec node dist/demo/demo.js "$@"
