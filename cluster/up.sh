#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine, for testing the SLURM profile for real.
#
#   sudo cluster/up.sh            # install (Debian/Ubuntu apt) if needed, configure, start; idempotent
#   sudo cluster/down.sh          # cancel every job, stop the daemons (add --purge to forget all state)
#
# What you get: Debian's slurm-wlm (slurmctld + slurmd on localhost, partition `main`) and munge, no
# systemd needed. The node advertises fake GPUs through GRES (`gpu:2` by default; the device files
# are links to /dev/null), so `--gpus=1` requests schedule and queue like on a GPU cluster: a third
# one-GPU job waits with Reason=Resources. No accounting daemon: `sacct` does not work here, so run
# Snakemake with `--slurm-status-command squeue` (profiles/slurm sets it); MinJobAge is one hour so
# finished jobs stay visible to squeue/scontrol.
#
# Settings (environment variables):
#   CLUSTER_GPUS=2          fake GPUs the node advertises
#   CLUSTER_CPUS=16         CPUs the node advertises (may exceed the real count: config_overrides)
#   CLUSTER_MEM_MB=131072   memory the node advertises (MB), so LLM-sized mem_mb requests schedule
#   CLUSTER_GPU_TYPE=       optional GPU type, e.g. `a100`, to try the profile's gpu_model
# To change them on a running cluster, run cluster/down.sh first (up.sh leaves a running cluster as is).
#
# Measured on a 2-core Debian 12 VM: first install ~15 s (apt), then the daemons are up in ~2 s.
set -euo pipefail

GPUS=${CLUSTER_GPUS:-2}
CPUS=${CLUSTER_CPUS:-16}
MEM_MB=${CLUSTER_MEM_MB:-131072}
GPU_TYPE=${CLUSTER_GPU_TYPE:-}
MARK="# written by complementarity cluster/up.sh"
CONF=/etc/slurm
FAKEGPU=/var/lib/slurm/fakegpu
START=$(date +%s)

say() { echo "cluster/up.sh: $*"; }
die() {
    echo "cluster/up.sh: ERROR: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages, writes /etc/slurm and starts daemons): sudo $0"

# --- packages -----------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and apt-get is not available; install them with your package manager"
    say "installing slurm-wlm and munge with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
id slurm >/dev/null 2>&1 || die "the package did not create the 'slurm' user"
id munge >/dev/null 2>&1 || die "the package did not create the 'munge' user"

# --- already up? ----------------------------------------------------------------------------------
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive /run/munge/munged.pid && alive /run/slurm/slurmctld.pid && alive /run/slurm/slurmd.pid \
    && scontrol ping 2>/dev/null | grep -q UP; then
    say "already up"
    sinfo -N -o "%N %T %c %m %G"
    exit 0
fi

# --- host name -------------------------------------------------------------------------------------
NODE=$(hostname -s)
if ! getent hosts "$NODE" >/dev/null; then
    say "adding $NODE to /etc/hosts (slurmd must resolve its own name)"
    echo "127.0.0.1 $NODE" >>/etc/hosts
fi

# --- directories (no systemd/tmpfiles to create them) ---------------------------------------------
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o slurm -g slurm -m 0755 /run/slurm /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d -o root -g root -m 0755 /var/lib/slurm/slurmd "$CONF" "$FAKEGPU"

# --- munge ----------------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! alive /run/munge/munged.pid; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
fi
for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break || sleep 0.1; done
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

# --- configuration ----------------------------------------------------------------------------------
# Never overwrite a configuration this script did not write: that is someone's real cluster.
for f in slurm.conf gres.conf cgroup.conf; do
    if [[ -s $CONF/$f ]] && ! head -n1 "$CONF/$f" | grep -qF "$MARK"; then
        die "$CONF/$f exists and was not written by this script; refusing to overwrite it"
    fi
done

gpu_names=""
for ((i = 0; i < GPUS; i++)); do
    ln -sfn /dev/null "$FAKEGPU/gpu$i" # gres.conf needs File= to be a character device
    gpu_names="$gpu_names gpu$i"
done
if [[ -n $GPU_TYPE ]]; then gres="gpu:$GPU_TYPE:$GPUS" type_kw="Type=$GPU_TYPE"; else gres="gpu:$GPUS" type_kw=""; fi

cat >"$CONF/slurm.conf" <<EOF
$MARK: a single-node test cluster on localhost
ClusterName=localcluster
SlurmctldHost=$NODE
AuthType=auth/munge
SlurmUser=slurm
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups/systemd needed; the tasks are not confined (fine for a test node).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Cores, memory and GPUs are consumable, so GPU jobs queue once the GPUs are taken.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A job that asks for no memory gets 1 GB per CPU, not the whole node.
DefMemPerCPU=1000
GresTypes=gpu
# Let the node advertise more CPUs/memory than it has, so LLM-sized requests schedule.
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for an hour (the squeue status check needs this).
MinJobAge=3600
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=$gres State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

{
    echo "$MARK: fake GPUs (links to /dev/null)"
    echo "AutoDetect=off"
    for ((i = 0; i < GPUS; i++)); do
        echo "NodeName=$NODE Name=gpu ${type_kw} File=$FAKEGPU/gpu$i"
    done
} >"$CONF/gres.conf"

cat >"$CONF/cgroup.conf" <<EOF
$MARK
CgroupPlugin=autodetect
IgnoreSystemd=yes
EOF

# --- daemons ------------------------------------------------------------------------------------------
alive /run/slurm/slurmctld.pid || slurmctld
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break || sleep 0.1; done
scontrol ping | grep -q UP || die "slurmctld did not come up (see /var/log/slurm/slurmctld.log)"
alive /run/slurm/slurmd.pid || slurmd

# Wait for the node to register; a node left DRAIN/INVAL by an earlier bad config comes back on resume.
state=""
for _ in $(seq 150); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1)
    case $state in
    idle* | mixed* | allocated*) break ;;
    drain* | inval* | down*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case $state in
idle* | mixed* | allocated*) ;;
*) die "node $NODE is '$state', not idle (see /var/log/slurm/slurmd.log and scontrol show node)" ;;
esac
advertised=$(sinfo -h -n "$NODE" -o %G)
[[ $advertised == *gpu* ]] || die "node $NODE advertises no GPUs ($advertised): check $CONF/gres.conf"

say "up in $(($(date +%s) - START)) s: node $NODE, partition main, $CPUS CPUs, $MEM_MB MB, $advertised (fake)"
sinfo -N -o "%N %P %T %c %m %G"
