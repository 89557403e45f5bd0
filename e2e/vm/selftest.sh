#!/bin/bash
# Adapted from the team lab's ipvs-vm scripts (../shared/lab/ipvs-vm), brought into the project so it stands alone.
# Checks run-in-ipvs-vm.sh itself: exit codes, argument quoting, shared dir writes,
# the timeout, and that no qemu process is left behind (also after SIGTERM to the runner).
cd "$(dirname "$0")"; R=./run-in-ipvs-vm.sh; F=0
ok() { echo "PASS $*"; }; bad() { echo "FAIL $*"; F=$((F+1)); }
qemus() { pgrep -f "qemu-system-x86_64 -name ipvs-vm" | wc -l; }
before=$(qemus)
out=$($R printf '<%s>' 'a b' "c'd" '$HOME' 2>/dev/null); rc=$?
[ "$rc" = 0 ] && [ "$out" = "<a b><c'd><\$HOME>" ] && ok "quoting: $out" || bad "quoting rc=$rc out=$out"
$R bash -c 'exit 42' 2>/dev/null; rc=$?; [ "$rc" = 42 ] && ok "exit code 42 propagated" || bad "exit code $rc"
$R no-such-command 2>/dev/null; rc=$?; [ "$rc" = 127 ] && ok "missing command -> 127" || bad "missing command rc=$rc"
rm -f .vm-write-test; $R sh -c 'echo hi > .vm-write-test' 2>/dev/null; [ "$(cat .vm-write-test 2>/dev/null)" = hi ] && ok "guest wrote into shared cwd" || bad "write to share"; rm -f .vm-write-test
$R sh -c 'touch /usr/bin/.overlay-test && ls /usr/bin/.overlay-test' >/dev/null 2>&1; [ ! -e /usr/bin/.overlay-test ] && ok "writes outside the share stay in the guest overlay" || bad "host root modified!"
t0=$SECONDS; VM_TIMEOUT=25 $R sleep 300 2>/dev/null; rc=$?
[ "$rc" = 124 ] && [ $((SECONDS-t0)) -lt 40 ] && ok "timeout -> 124 after $((SECONDS-t0))s" || bad "timeout rc=$rc after $((SECONDS-t0))s"
sleep 1; [ "$(qemus)" = "$before" ] && ok "no qemu left after timeout" || bad "qemu left behind: $(qemus)"
$R sleep 300 >/dev/null 2>&1 & rp=$!; sleep 15; kill -TERM $rp; wait $rp; rc=$?; sleep 1
[ "$(qemus)" = "$before" ] && ok "SIGTERM to runner (rc=$rc) killed its qemu" || bad "qemu left after SIGTERM: $(qemus)"
echo "== selftest: $F failure(s)"; exit $((F>0))
