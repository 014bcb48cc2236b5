#!/usr/bin/env bash
# The main job, end to end on this machine: a real local cluster, then mha looks at it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mha() { node bin/run.js "$@"; }

mha sandbox down --cluster app1 >/dev/null
mha sandbox up --cluster app1 --replicas 2
echo
echo '$ mha check --cluster app1'
mha check --cluster app1
echo
echo '$ mha plan --cluster app1          # healthy: a "no changes" plan'
mha plan --cluster app1
echo
echo '$ mha sandbox kill-master --cluster app1'
mha sandbox kill-master --cluster app1
sleep 1
echo
echo '$ mha plan --cluster app1          # the master is dead: a failover plan (exit 2)'
mha plan --cluster app1 || [ $? -eq 2 ]
echo
echo "The sandbox keeps running: mha sandbox status | mha sandbox kill-master | mha sandbox down (all with --cluster app1)."
