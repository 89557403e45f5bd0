#!/bin/bash
# Adapted from the team lab's ipvs-vm scripts (../shared/lab/ipvs-vm), brought into the project so it stands alone.
# Stage 2: PID 1 inside the guest, running on the host's (overlaid, read-only) root.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
echo 1 > /proc/sys/kernel/sysrq
hostname ipvs-vm; ip link set lo up
. /run/vmctl/env
echo "@@VM-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)@@"
echo "@@VM-CMD-START@@"
bash /run/vmctl/cmd.sh < /dev/null 2>&1
rc=$?
echo "@@VM-CMD-EXIT=$rc uptime=$(cut -d' ' -f1 /proc/uptime)@@"
echo "$rc" > /run/vmctl/rc; sync
echo o > /proc/sysrq-trigger
sleep 10 2>/dev/null; echo b > /proc/sysrq-trigger
