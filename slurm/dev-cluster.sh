#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost, for trying hpc-agent's batch commands and for CI.
#
#   slurm/dev-cluster.sh up       install (Debian: slurm-wlm, munge, slurmdbd, mariadb-server) and start
#   slurm/dev-cluster.sh status   daemons, nodes, queue
#   slurm/dev-cluster.sh down     stop every daemon (state is kept; `up` again starts in seconds)
#
# Runs as root, without systemd (daemons are started directly). The configuration is written to
# /etc/slurm on every `up` from this script, so what runs is what you read here. Known fixes baked in:
#   DefMemPerCPU           else every job is given all the node's memory and jobs run one at a time
#   slurmdbd + sacctmgr    `sacct` (and so submitit's job.state) needs accounting, and the cluster registered
#   MailProg=/bin/true     no mailer here
#   proctrack/linuxproc, task/none   no cgroup v2 delegation without systemd
set -euo pipefail

CLUSTER=${HPC_AGENT_DEV_CLUSTER:-hpcagent}
PARTITION=${HPC_AGENT_DEV_PARTITION:-debug}
LOG=/var/log/slurm
SPOOL=/var/spool

die() { echo "dev-cluster: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts system daemons)"; }

install_packages() {
  local missing=()
  for b in slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge slurmdbd:slurmdbd mariadbd:mariadb-server sacct:slurm-client; do
    command -v "${b%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${b%%:*}" ] || missing+=("${b##*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev-cluster: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # the packages' postinst scripts try to start services; there is no init system to do that here
    apt-get install -y -qq slurm-wlm munge slurmdbd mariadb-server slurm-client >/dev/null
  fi
}

write_config() {
  local node_line host
  host=$(hostname -s)
  # `slurmd -C` prints this node's real CPUs/sockets/memory in slurm.conf syntax
  node_line=$(slurmd -C | head -n1)
  local mem=${node_line##*RealMemory=}
  mkdir -p /etc/slurm "$LOG" "$SPOOL/slurmctld" "$SPOOL/slurmd" /run/munge /run/mysqld
  cat > /etc/slurm/slurm.conf <<EOF
# Written by hpc-agent's slurm/dev-cluster.sh: a single-node cluster on localhost.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobRequeue=1
KillWait=10
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
${node_line% UpTime=*} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  sed -i "s/^NodeName=[^ ]*/NodeName=$host/" /etc/slurm/slurm.conf
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  : "$mem"
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "$what did not come up within ${t}s (logs in $LOG and /var/log/mysql)"
}

up() {
  need_root
  install_packages
  write_config
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key /run/munge; chmod 400 /etc/munge/munge.key
  running munged || su -s /bin/sh munge -c "/usr/sbin/munged"
  wait_for 10 munge munge -n
  chown mysql:mysql /run/mysqld
  if ! running mariadbd && ! running mysqld; then
    (mysqld_safe --user=mysql >/dev/null 2>&1 &)
  fi
  wait_for 30 mariadb mysqladmin ping
  running slurmdbd || /usr/sbin/slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -i -n list cluster format=cluster | grep -qw "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  running slurmctld || /usr/sbin/slurmctld
  running slurmd || /usr/sbin/slurmd
  wait_for 30 "an idle node" sh -c "sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'"
  # a node left DOWN/DRAIN by an earlier unclean stop is put back in service
  scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
  status
}

down() {
  need_root
  for d in slurmd slurmctld slurmdbd; do
    running "$d" && pkill -x "$d" || true
  done
  for _ in $(seq 50); do running slurmctld || running slurmd || running slurmdbd || break; sleep 0.2; done
  mysqladmin shutdown >/dev/null 2>&1 || true
  pkill -x munged || true
  for _ in $(seq 50); do running munged || running mariadbd || break; sleep 0.2; done
  echo "dev-cluster: stopped"
}

status() {
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    printf '%-10s %s\n' "$d" "$(pgrep -x "$d" >/dev/null && echo running || echo stopped)"
  done
  running slurmctld && { sinfo; squeue; } || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
