#!/usr/bin/env bash
# Tear down the single-node SLURM cluster that cluster/up.sh started.
#
#   sudo cluster/down.sh           # cancel every job, stop slurmd, slurmctld and munged (by PID)
#   sudo cluster/down.sh --purge   # also delete job state, logs and the configuration up.sh wrote
#
# Stopping slurmd does not kill running jobs, so the queue is cancelled and drained first.
# The packages stay installed (remove them with apt-get purge slurm-wlm munge).
set -euo pipefail

MARK="# written by complementarity cluster/up.sh"
PURGE=0
[[ ${1:-} == --purge ]] && PURGE=1

say() { echo "cluster/down.sh: $*"; }
[[ $(id -u) -eq 0 ]] || {
    echo "cluster/down.sh: ERROR: run as root: sudo $0" >&2
    exit 1
}

if [[ -f /etc/slurm/slurm.conf ]] && ! head -n1 /etc/slurm/slurm.conf | grep -qF "$MARK"; then
    echo "cluster/down.sh: ERROR: /etc/slurm/slurm.conf was not written by cluster/up.sh; not stopping someone's real cluster" >&2
    exit 1
fi

# Cancel the queue and wait until no job is left running (slurmctld must still be up for this).
if command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
    if [[ -n $(squeue -h -t PD,R,CG,CF,S -o %i) ]]; then
        say "cancelling $(squeue -h -t PD,R,CG,CF,S -o %i | wc -l) job(s)"
        squeue -h -t PD,R,CF,S -o %i | xargs -r scancel 2>/dev/null || true
        for _ in $(seq 100); do
            [[ -z $(squeue -h -t PD,R,CG,CF,S -o %i) ]] && break
            sleep 0.2
        done
    fi
fi

# Stop the daemons by PID, newest first, and wait for each to exit.
stop() {
    local name=$1 pidfile=$2 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}
stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop munged /run/munge/munged.pid

if ((PURGE)); then
    say "purging job state, logs, fake GPUs and the configuration written by up.sh"
    rm -rf /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/lib/slurm/fakegpu /var/log/slurm
    for f in slurm.conf gres.conf cgroup.conf; do
        if [[ -f /etc/slurm/$f ]] && head -n1 "/etc/slurm/$f" | grep -qF "$MARK"; then rm -f "/etc/slurm/$f"; fi
    done
fi
say "down"
