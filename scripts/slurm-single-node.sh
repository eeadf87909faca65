#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages, to try the sweep's job-array
# recipe (docs/experiments.md) on a workstation or in CI.
#
#   sudo apt-get install slurm-wlm munge      # once
#   scripts/slurm-single-node.sh start        # munged, slurmctld and slurmd; waits for the node
#   sinfo; sbatch ...                         # use it
#   scripts/slurm-single-node.sh stop         # stops every daemon it started
#
# Needs root (it writes /etc/slurm/slurm.conf and runs the daemons). The daemons' PIDs, logs
# and state live in $SLURM_LOCAL_DIR (default /tmp/d2l-slurm).
set -euo pipefail
dir=${SLURM_LOCAL_DIR:-/tmp/d2l-slurm}
conf=/etc/slurm/slurm.conf

start() {
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "slurm-single-node.sh: $tool not found; apt-get install slurm-wlm munge"; exit 1; }
  done
  [ -f /etc/munge/munge.key ] || { echo "slurm-single-node.sh: /etc/munge/munge.key is missing; reinstall munge"; exit 1; }
  if [ -f "$dir/pids" ]; then
    echo "slurm-single-node.sh: already started ($dir/pids); run '$0 stop' first"
    exit 1
  fi
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
  mkdir -p "$dir"/{state,spool,log} /run/munge /etc/slurm
  chown munge:munge /run/munge 2>/dev/null || true
  if [ -f "$conf" ] && ! grep -q '^# written by slurm-single-node.sh' "$conf"; then
    cp "$conf" "$dir/slurm.conf.saved"
  fi
  cat > "$conf" <<CONF
# written by slurm-single-node.sh; the original, if any, is in $dir/slurm.conf.saved
ClusterName=d2l
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  : > "$dir/pids"
  su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/d2l-munged.pid" \
    || { echo "slurm-single-node.sh: munged did not start"; exit 1; }
  sleep 0.5
  cat /run/munge/d2l-munged.pid >> "$dir/pids"
  /usr/sbin/slurmctld
  /usr/sbin/slurmd
  for _ in $(seq 1 100); do
    [ -s "$dir/slurmctld.pid" ] && [ -s "$dir/slurmd.pid" ] && break
    sleep 0.1
  done
  cat "$dir/slurmctld.pid" "$dir/slurmd.pid" >> "$dir/pids"
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx 'idle'; then
      echo "slurm: node $host idle ($cpus CPUs), partition debug; stop with '$0 stop'"
      return 0
    fi
    sleep 0.5
  done
  echo "slurm-single-node.sh: the node did not become idle; logs in $dir/log"
  sinfo || true
  exit 1
}

stop() {
  [ -f "$dir/pids" ] || { echo "slurm-single-node.sh: nothing started ($dir/pids is missing)"; return 0; }
  scancel --user="$(id -un)" 2>/dev/null || true
  # Jobs first, then the daemons in reverse order of their start.
  for pid in $(tac "$dir/pids"); do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $(cat "$dir/pids"); do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$dir/pids"
  if [ -f "$dir/slurm.conf.saved" ]; then mv "$dir/slurm.conf.saved" "$conf"; fi
  echo "slurm: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop"; exit 2 ;;
esac
