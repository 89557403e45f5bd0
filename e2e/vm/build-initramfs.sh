#!/bin/bash
# Adapted from the team lab's ipvs-vm scripts (../shared/lab/ipvs-vm), brought into the project so it stands alone.
# Fetch a Debian kernel that has IPVS as modules and build a tiny busybox initramfs for it.
# Result: cache/vmlinuz, cache/initramfs.cpio.gz, cache/kernel/lib/modules/<kver>/ (all modules,
# shared into the guest read-only so modprobe works there).
# Needs: apt (debian), busybox-static, kmod, cpio. Idempotent; re-run with FORCE=1 to rebuild.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"; C="${IPVS_VM_CACHE:-/var/cache/ipvs-vm}"; mkdir -p "$C"
need() { command -v "$1" >/dev/null || { echo "missing $1: apt-get install -y $2" >&2; exit 1; }; }
need busybox busybox-static; need depmod kmod; need cpio cpio; need qemu-system-x86_64 qemu-system-x86
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q dynamic && { echo "/bin/busybox is dynamic; need busybox-static" >&2; exit 1; }
# The generic image: linux-image-cloud-amd64 has IPVS but no 9p (CONFIG_NET_9P is not set).
PKG=${KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}
[ -n "$PKG" ] || { echo "cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
KVER=${PKG#linux-image-}
if [ ! -e "$C/kernel/boot/vmlinuz-$KVER" ] || [ "${FORCE:-0}" = 1 ]; then
  rm -rf "$C/kernel"; mkdir -p "$C/kernel"
  ls "$C"/${PKG}_*.deb >/dev/null 2>&1 || (cd "$C" && apt-get download "$PKG")
  dpkg-deb -x "$C"/${PKG}_*.deb "$C/kernel"
  depmod -b "$C/kernel" "$KVER"
fi
ln -sf "kernel/boot/vmlinuz-$KVER" "$C/vmlinuz"
# Uncompressed ELF vmlinux: Debian kernels have CONFIG_PVH=y, so qemu boots it directly via the
# PVH entry point and skips the in-guest XZ decompression (~4.5 s under TCG emulation).
if [ ! -e "$C/vmlinux" ] || [ "$C/vmlinux" -ot "$C/kernel/boot/vmlinuz-$KVER" ]; then
  python3 - "$C/kernel/boot/vmlinuz-$KVER" "$C/vmlinux" <<'PY' || rm -f "$C/vmlinux"
import lzma, sys
d = open(sys.argv[1], 'rb').read(); i = d.find(b'\xfd7zXZ\x00')
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[i:]) if i >= 0 else b''
assert out[:4] == b'\x7fELF', 'no xz-compressed ELF found'
open(sys.argv[2], 'wb').write(out)
PY
fi
# initramfs: busybox + just what is needed to mount 9p and overlayfs
R=$(mktemp -d); trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,proc,sys,dev,newroot,mods}
cp /bin/busybox "$R/bin/busybox"
: > "$R/mods/order"
for m in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -d "$C/kernel" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do cp "$ko" "$R/mods/"; basename "$ko" >> "$R/mods/order"; done
cp "$HERE/initramfs-init" "$R/init"; chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$C/initramfs.cpio.gz"
echo "kernel $KVER: $C/vmlinuz; initramfs $(du -h "$C/initramfs.cpio.gz" | cut -f1) with $(wc -l < "$R/mods/order") modules"
