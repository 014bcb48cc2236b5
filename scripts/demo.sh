#!/usr/bin/env bash
# The main job, end to end on this machine: a real local cluster under write load, the master
# killed, a reviewable failover plan, its execution, and the result checked.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mha() { node bin/run.js "$@"; }
step() { echo; echo "\$ mha $*"; }

mha sandbox down --cluster app1 >/dev/null
# A new cluster: what an earlier run recorded of app1 (its failover, db1 out of service) is not about this one.
rm -rf plans/app1
step sandbox up --cluster app1 --haproxy "  # and a haproxy in front: the application's writes go through it"
mha sandbox up --cluster app1 --replicas 2 --haproxy

step check --cluster app1
mha check --cluster app1

step plan --cluster app1 "  # healthy: no changes"
mha plan --cluster app1

step sandbox load --cluster app1 --seconds 12 --through-proxy "  # in the background: 50 inserts/s through haproxy, acknowledged ids recorded"
mha sandbox load --cluster app1 --seconds 12 --interval 20 --through-proxy &
load=$!
sleep 3

step sandbox kill-master --cluster app1
mha sandbox kill-master --cluster app1
sleep 1

plan=plans/app1/demo-failover.json
step plan --cluster app1 -o $plan
mha plan --cluster app1 -o "$plan" || [ $? -eq 2 ]

step apply $plan
mha apply "$plan"

wait "$load"

step apply $plan "  # again: every step is already done"
mha apply "$plan"

step check --cluster app1 "  # the new topology"
mha check --cluster app1 || true
echo
echo "The sandbox keeps running: mha sandbox status | mha sandbox down (with --cluster app1)."
