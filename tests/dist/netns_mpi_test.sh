#!/usr/bin/env bash
# Two "hosts" on one machine: network namespaces joined by a veth pair with addresses in a
# private /30 (10.99.0.0/30) that exists only inside them. mpirun runs in the first namespace,
# Open MPI's rsh launcher starts the second host's daemon through `ip netns exec` (no ssh), and
# the ranks talk over the TCP BTL on the veth only. A 2-rank vit-train run across the two hosts
# must give the bitwise weights of the same run on one host (two ranks sum a + b either way).
# Needs root and iproute2; exits 77 (CTest: skipped) when namespaces cannot be made.
# usage: netns_mpi_test.sh BUILD_DIR [MPIEXEC]
set -u
B=$(cd "$1" && pwd); HERE=$(cd "$(dirname "$0")" && pwd); MPIEXEC=${2:-mpiexec}
T=$B/src/vit-train; CMP="python3 $HERE/compare_safetensors.py"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
[[ $(id -u) == 0 ]] && command -v ip >/dev/null || { echo "skip: needs root and iproute2"; exit 77; }
W=$(mktemp -d); N0=vitmpi$$a; N1=vitmpi$$b
cleanup() { ip netns del "$N0" 2>/dev/null; ip netns del "$N1" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
if ! { ip netns add "$N0" && ip netns add "$N1" && ip link add "v$$a" type veth peer name "v$$b" &&
       ip link set "v$$a" netns "$N0" && ip link set "v$$b" netns "$N1" &&
       ip -n "$N0" addr add 10.99.0.1/30 dev "v$$a" && ip -n "$N1" addr add 10.99.0.2/30 dev "v$$b" &&
       ip -n "$N0" link set lo up && ip -n "$N1" link set lo up &&
       ip -n "$N0" link set "v$$a" up && ip -n "$N1" link set "v$$b" up; } 2>"$W/ns.err"; then
  echo "skip: cannot create network namespaces: $(tr '\n' ' ' <"$W/ns.err")"; exit 77
fi
cat >"$W/agent.sh" <<AGENT
#!/bin/sh
# Open MPI rsh agent: "agent HOST command..." runs the command in the namespace owning HOST.
host=\$1; shift
case \$host in 10.99.0.1) ns=$N0;; 10.99.0.2) ns=$N1;; *) echo "unknown host \$host" >&2; exit 1;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
chmod +x "$W/agent.sh"
printf '10.99.0.1 slots=1\n10.99.0.2 slots=1\n' >"$W/hosts"
python3 "$HERE/../cli/make_tiny_dataset.py" "$W/train" --per-class 16
ARGS=(--config "$HERE/../cli/tiny.json" --data "$W/train" --steps 4 -q)
NET=(--mca btl tcp,self --mca btl_tcp_if_include 10.99.0.0/30 --mca oob_tcp_if_include 10.99.0.0/30)
ip netns exec "$N0" "$MPIEXEC" --hostfile "$W/hosts" -np 2 --bind-to none --mca plm_rsh_agent "$W/agent.sh" "${NET[@]}" \
  "$T" "${ARGS[@]}" --out "$W/two_hosts" >"$W/two.out" 2>"$W/two.err"
rc=$?
if [[ $rc != 0 ]]; then echo "FAIL: two-host run exit $rc"; tail -n 20 "$W/two.err"; exit 1; fi
"$MPIEXEC" -np 2 --oversubscribe --bind-to none "$T" "${ARGS[@]}" --out "$W/one_host" >"$W/one.out" 2>"$W/one.err" ||
  { echo "FAIL: one-host run"; tail -n 20 "$W/one.err"; exit 1; }
grep -q '"ranks":2' "$W/two.out" || { echo "FAIL: the two-host run did not report 2 ranks"; exit 1; }
$CMP "$W/two_hosts/checkpoints/step-00000004.safetensors" "$W/one_host/checkpoints/step-00000004.safetensors" ||
  { echo "FAIL: two hosts vs one host not bitwise"; exit 1; }
echo "two-host (netns + TCP) run matches the one-host run bitwise"
