#!/bin/bash
# Adapted from the team lab's ipvs-vm scripts (../shared/lab/ipvs-vm), brought into the project so it stands alone.
# usage: e2e/vm/run-in-ipvs-vm.sh CMD [ARGS...]
#
# Boots a Debian 6.1 kernel (IPVS, dummy, 9p... as modules) under qemu with no disk:
# the host's / is shared read-only over 9p with a throw-away tmpfs overlay on top, the
# current directory (or $VM_SHARE) is shared read-write at the same path, and the kernel's
# /lib/modules is shared so modprobe works. Runs CMD (via bash, in the same cwd) as root in
# the guest, streams its output, exits with CMD's exit code, and always kills the qemu it started.
#
# env: VM_SHARE=dir (default: $PWD)  VM_TIMEOUT=s (default 300, whole run)
#      VM_BOOT_TIMEOUT=s (default 30 for kvm / 180 for tcg)  VM_MEM=MiB (1024)  VM_SMP=n (2)
#      VM_ACCEL=auto|kvm|tcg (auto: try kvm, fall back to tcg)  VM_VERBOSE=1 (show boot log)
#      VM_CPU=qemu -cpu model (max)  VM_APPEND=extra kernel args  VM_KEEP=1 (keep temp dir)
# exit: CMD's code; 124 timeout; 125 VM failed to boot / no exit code.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"; C="${IPVS_VM_CACHE:-/var/cache/ipvs-vm}"
[ $# -gt 0 ] || { sed -n '2,17p' "$0"; exit 2; }
[ -e "$C/vmlinuz" ] && [ -e "$C/initramfs.cpio.gz" ] || "$HERE/build-initramfs.sh" >&2 || exit 125
SHARE=$(cd "${VM_SHARE:-$PWD}" && pwd) || exit 125
TIMEOUT=${VM_TIMEOUT:-300} MEM=${VM_MEM:-1024} SMP=${VM_SMP:-2} ACCEL=${VM_ACCEL:-auto}
KVER=$(ls "$C/kernel/lib/modules")
KERNEL=$C/vmlinux; [ -s "$KERNEL" ] || KERNEL=$C/vmlinuz   # ELF vmlinux boots via PVH, faster
T=$(mktemp -d /tmp/ipvs-vm.XXXXXX); chmod 755 "$T"
QPID= JPID= TPID=   # qemu pid (from -pidfile), its wrapper subshell, the output streamer
cleanup() {
  [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null && { kill "$QPID" 2>/dev/null; sleep 0.5; kill -9 "$QPID" 2>/dev/null; }
  [ -n "$TPID" ] && kill "$TPID" 2>/dev/null
  [ -n "$JPID" ] && wait "$JPID" 2>/dev/null
  [ "${VM_KEEP:-0}" = 1 ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
cp "$HERE/guest-stage2.sh" "$T/stage2.sh"
{ printf 'cd %q || exit 125\n' "$PWD"; printf 'exec'; printf ' %q' "$@"; echo; } > "$T/cmd.sh"
echo "VM_SHARE=$(printf %q "$SHARE")" > "$T/env"

boot() { # accel -> starts qemu in background, sets QPID
  local accel=$1 cpu=${VM_CPU:-max}
  : > "$T/console.log"; rm -f "$T/rc" "$T/qemu.pid"
  # the wrapper subshell keeps bash from printing "Aborted"/"Killed" job notices for qemu
  ( qemu-system-x86_64 -name ipvs-vm -pidfile "$T/qemu.pid" -machine pc,accel="$accel" -cpu $cpu -m "$MEM" -smp "$SMP" \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial "file:$T/console.log" \
    -kernel "$KERNEL" -initrd "$C/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init 8250.nr_uarts=1 mitigations=off tsc=reliable vm.work=$SHARE ${VM_APPEND:-}" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$C/kernel/lib/modules,mount_tag=kmods,security_model=none,readonly=on" \
    -virtfs "local,path=$T,mount_tag=vmctl,security_model=none" \
    -virtfs "local,path=$SHARE,mount_tag=work,security_model=none,multidevs=remap" \
    > "$T/qemu.out" 2>&1 < /dev/null; echo "qemu exited with $?" >> "$T/qemu.out" ) 2>>"$T/qemu.out" &
  JPID=$!; QPID=
  for _ in $(seq 100); do [ -s "$T/qemu.pid" ] && { QPID=$(cat "$T/qemu.pid"); break; }; kill -0 $JPID 2>/dev/null || break; sleep 0.05; done
  [ -n "$QPID" ] || QPID=$JPID
}
wait_booted() { # limit -> 0 when stage 2 reported in, 1 if qemu died or limit passed
  local limit=$1 t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$limit" ]; do
    grep -q '@@VM-BOOTED' "$T/console.log" 2>/dev/null && return 0
    grep -q '@@VM-INIT-FAIL' "$T/console.log" 2>/dev/null && return 1
    kill -0 "$QPID" 2>/dev/null || return 1
    sleep 0.1
  done; return 1
}
stop_qemu() { kill "$QPID" 2>/dev/null; sleep 0.3; kill -9 "$QPID" 2>/dev/null; wait "$JPID" 2>/dev/null; QPID= JPID=; }

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a-b}'; }
START=$(now); used=
if [ "$ACCEL" != tcg ] && [ -w /dev/kvm ]; then
  boot kvm
  if wait_booted "${VM_BOOT_TIMEOUT:-30}"; then used=kvm; else
    echo "[vm] kvm failed, falling back to tcg: $(grep -m2 '^qemu' "$T/qemu.out" | tr '\n' ' ')$(tr -d '\r' < "$T/console.log" | grep -v '^$' | tail -2)" >&2
    stop_qemu; [ "$ACCEL" = kvm ] && exit 125
  fi
fi
if [ -z "$used" ]; then
  boot tcg
  wait_booted "${VM_BOOT_TIMEOUT:-180}" && used=tcg || {
    echo "[vm] boot failed (tcg). qemu: $(cat "$T/qemu.out")" >&2; tr -d '\r' < "$T/console.log" | tail -30 >&2; exit 125; }
fi
BOOTED=$(now)
echo "[vm] booted with $used in $(sub "$BOOTED" "$START")s ($(grep -o '@@VM-BOOTED[^@]*' "$T/console.log" | sed 's/@@VM-BOOTED //'))" >&2
# stream the command's output (everything between the markers; all of it with VM_VERBOSE=1)
tail -n +1 -F --pid="$QPID" "$T/console.log" 2>/dev/null | tr -d '\r' | awk -v all="${VM_VERBOSE:-0}" '
  /@@VM-CMD-EXIT=/ { if (on && !all) { i = index($0, "@@VM-CMD-EXIT="); printf "%s", substr($0, 1, i - 1) }; on = 0 }
  on || all {print; fflush()} /@@VM-CMD-START@@/ {on=1}' &
TPID=$!
while kill -0 "$QPID" 2>/dev/null; do
  if awk -v a="$(now)" -v b="$START" -v t="$TIMEOUT" 'BEGIN{exit !(a-b > t)}'; then
    echo "[vm] timeout after ${TIMEOUT}s, killing qemu" >&2; stop_qemu; wait "$TPID" 2>/dev/null; TPID=; exit 124
  fi
  sleep 0.2
done
wait "$JPID" 2>/dev/null; QPID= JPID=; wait "$TPID" 2>/dev/null; TPID=
END=$(now)
if [ -s "$T/rc" ]; then rc=$(cat "$T/rc"); else
  rc=$(grep -o '@@VM-CMD-EXIT=[0-9]*' "$T/console.log" | tail -1 | cut -d= -f2)
  [ -n "$rc" ] || { echo "[vm] no exit code from guest; last console lines:" >&2; tr -d '\r' < "$T/console.log" | tail -20 >&2; rc=125; }
fi
echo "[vm] exit code $rc; total $(sub "$END" "$START")s (boot $(sub "$BOOTED" "$START")s, accel $used)" >&2
exit "$rc"
