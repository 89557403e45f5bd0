#!/usr/bin/env bash
# Runs every test of kube-proxy-ts: type check, lint, unit and integration tests, and — as root —
# the kernel end-to-end tests in network namespaces (and the IPVS tests in a VM where qemu runs).
# Installs what it needs first (scripts/deps.sh). Usage: scripts/test.sh [unit|e2e|all] (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-all}"
bash scripts/deps.sh

echo "== type check"
npx tsc -p tsconfig.json --noEmit
echo "== lint"
npx eslint . --max-warnings=0
echo "== format (prettier; fix with: npm run format)"
npm run -s format:check
echo "== build"
npm run -s build

status=0
if [ "$tier" = unit ] || [ "$tier" = all ]; then
  echo "== unit and integration tests"
  node scripts/run-tests.mjs unit || status=1
fi
if [ "$tier" = e2e ] || [ "$tier" = all ]; then
  if [ "$(id -u)" = 0 ] && ip netns list >/dev/null 2>&1; then
    echo "== kernel end-to-end tests (network namespaces)"
    node scripts/run-tests.mjs e2e || status=1
  else
    echo "== kernel end-to-end tests SKIPPED: they need root and 'ip netns' (run as root to include them)"
  fi
fi
exit $status
