#!/usr/bin/env bash
# The Slurm scripts for real, on a single-node Slurm brought up here: munge, slurmctld and two
# slurmd (two node names for this one host: a heterogeneous job needs its components on
# different nodes), a slurm.conf in a temporary folder, no GPU gres (the test strips the
# --gres lines from copies of the scripts). Submits (a) hetjob.sbatch and (b)
# receiver-service.sbatch + transmitters.sbatch + stop-service.sbatch with sbatch and checks
# their outputs. Skips (77), saying why, where it cannot run: not root, or slurm-wlm/munge not
# installed (scripts/bootstrap.sh installs them). Stops every daemon it started.
#   slurm_test.sh BUILD_DIR
set -u
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (slurmd, munged)"; exit 77; }
for tool in slurmctld slurmd sbatch squeue sinfo munged; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "SKIP: $tool is not installed (apt-get install slurm-wlm munge; scripts/bootstrap.sh does)"; exit 77; }
done
export PATH=$PATH:/usr/sbin
tmp=$(mktemp -d /tmp/offload-slurm.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  [ -n "${SLURM_CONF:-}" ] && scancel --quiet --user=root 2>/dev/null
  for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "${OFFLOAD_SLURM_KEEP:-}" ] && trap - EXIT  # debugging: leave it all up
fail() { echo "FAIL: $*"; for f in "$tmp"/*.out "$tmp"/log/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; }; done; exit 1; }

# munge: start one unless one runs.
if ! [ -S /run/munge/munge.socket.2 ] || ! munge -n </dev/null >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null
  [ -f /etc/munge/munge.key ] || { echo "SKIP: /etc/munge/munge.key is missing"; exit 77; }
  runuser -u munge -- /usr/sbin/munged --force || fail "munged did not start"
  pids+=("$(cat /run/munge/munged.pid 2>/dev/null)")
fi

host=$(hostname -s)
mkdir -p "$tmp/state" "$tmp/log" "$tmp/spool-$host" "$tmp/spool-$host-b" "$tmp/tmp-$host" "$tmp/tmp-$host-b" "$tmp/shared"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=offloadtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=6917
SlurmdPort=6918
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool-%n
TmpFS=$tmp/tmp-%n
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd-%n.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd-%n.log
NodeName=$host NodeHostName=$host NodeAddr=127.0.0.1 Port=6918 CPUs=4 RealMemory=4000
NodeName=$host-b NodeHostName=$host-b NodeAddr=127.0.0.1 Port=6919 CPUs=4 RealMemory=4000
PartitionName=test Nodes=$host,$host-b Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -D -i >"$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N "$host" >"$tmp/log/slurmd-a.out" 2>&1 &
pids+=($!)
slurmd -D -N "$host-b" >"$tmp/log/slurmd-b.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ "$(sinfo -h -o '%t' 2>/dev/null | sort -u | tr -d '\n')" = idle ] && break
  sleep 0.2
done
[ "$(sinfo -h -o '%t' 2>/dev/null | sort -u | tr -d '\n')" = idle ] || fail "the Slurm nodes did not come up: $(sinfo 2>&1)"
echo "slurm: $(sinfo -h -o '%P %D nodes %t' | head -1)"

# Copies of the scripts without GPU gres (this machine has none).
for s in hetjob receiver-service transmitters stop-service; do
  sed '/--gres=gpu/d' "$root/scripts/slurm/$s.sbatch" >"$tmp/$s.sbatch"
done
export OFFLOAD_BUILD=$build OFFLOAD_SHARED=$tmp/shared
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_hwloc_base_binding_policy=none
# Both Slurm "nodes" are this one host: ranks of the two disagree on what is local unless every
# byte goes over TCP (with shared memory allowed, Open MPI 4.1 crashed in ob1 matching here).
export OMPI_MCA_btl=self,tcp

echo "== (a) heterogeneous job"
# The step takes about 10 s. Twice, in about 8 full-suite runs over two sessions, its ranks
# printed nothing before the step's kill (not even the receiver's warning that this build has no
# CUDA, printed once MPI is up: they never got out of MPI_Init), with slurmctld logging a socket
# timeout; never in 8 runs of this test alone, two of
# them beside two CPU hogs or a loop of mpiruns. Such a launch hang, and only
# it, is tried once more; where the ranks then were (ps: state, kernel wait channel) is printed.
export OFFLOAD_STEP_TIMEOUT=90
het_job() {  # het_job ATTEMPT: runs hetjob.sbatch into $tmp/het.out; ranks' states at 75 s into $tmp/hang.$1.txt
  rm -f "$tmp/het.out"
  timeout -s KILL 150 sbatch --wait --chdir "$tmp" --output "$tmp/het.out" "$tmp/hetjob.sbatch" >/dev/null &
  local job=$!
  for _ in $(seq 750); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then
    ps -eo pid,stat,wchan:32,etimes,args | grep -E "[o]ffload-run|[s]lurmstepd|[s]run " >"$tmp/hang.$1.txt"
  fi
  wait "$job"
}
het_job 1
if ! grep -q "^status: ok" "$tmp/het.out" && ! grep -Eq "^ +all |receiver rank|\[(warning|error)\]" "$tmp/het.out"; then
  echo "  NOTE: (a) the step's ranks printed nothing before its kill (a launch hang); where they were:"
  sed 's/^/    /' "$tmp/hang.1.txt" 2>/dev/null
  echo "  (a) once more"
  het_job 2
fi
grep -v "^\[" "$tmp/het.out" | grep -E "offload hetjob|^ +all|^status|receiver rank" | sed 's/^/  /'
grep -q "^status: ok" "$tmp/het.out" || fail "(a): no 'status: ok'"
grep -Eq "^ +all +400 .* 400 +0 +0$" "$tmp/het.out" || fail "(a): not all 400 events remote and validated"
grep -Eq "^receiver rank 0 .* requests 400," "$tmp/het.out" || fail "(a): receiver rank 0 did not serve 400 requests"

echo "== (b) receiver service + transmitter jobs"
service_job=$(sbatch --parsable --chdir "$tmp" -N 1 -w "$host" --output "$tmp/service.out" "$tmp/receiver-service.sbatch") ||
  fail "cannot submit the receiver service"
for i in 1 2; do
  timeout -s KILL 200 sbatch --wait --chdir "$tmp" -N 1 -w "$host" --output "$tmp/tx$i.out" "$tmp/transmitters.sbatch" >/dev/null
  grep -Eq "^ +all +400 .* 400 +0 +0$" "$tmp/tx$i.out" || fail "(b): transmitter job $i did not complete 400 validated events"
  squeue -h -j "$service_job" -o %T | grep -q RUNNING || fail "(b): the receiver service is not running after job $i"
  echo "  transmitter job $i: $(grep -E '^ +all' "$tmp/tx$i.out")"
done
timeout -s KILL 100 sbatch --wait --chdir "$tmp" -N 1 -w "$host" --output "$tmp/stop.out" "$tmp/stop-service.sbatch" >/dev/null
for _ in $(seq 150); do [ -z "$(squeue -h -j "$service_job" 2>/dev/null)" ] && break; sleep 0.2; done
[ -z "$(squeue -h -j "$service_job" 2>/dev/null)" ] || fail "(b): the receiver service did not end after the stop job"
grep -E "session|served" "$tmp/service.out" | sed 's/^/  /'
grep -q "served 2 session(s): requests 800, replies 800, .*error_replies 0," "$tmp/service.out" ||
  fail "(b): the service did not report 2 sessions of 400 requests"
echo "PASS: Slurm (a) hetjob and (b) receiver service with two transmitter jobs"
