#!/bin/bash
# The GPU runbook's one call (bench/RESULTS.md, "Runbook"). Here, once:
#   python3 -m mjx_piano repertoire build; python3 -m bench.device_stage --one-call
# then the device tool's `run` with carry [".device_a"], timeout_s 598 and the command
#   bash bench/device_run.sh
# It writes at most 8 files under $OUT (the tool brings back no more): log.txt, r2_eval.csv,
# r2_curve.png, parity.json.
#  1. R2 with the best recipe (`train ilc`: both fingerings, the segment search) under the
#     deterministic XLA ops it asks for (train/determinism.py). A sweep over the 550-step
#     clips is 220 rounds and the evaluation plays the best sweep end, so it moves only after
#     the first sweep: ~97 s of compiles, then ~1 round/s on an H200 (2026-12-04, without the
#     flag); its 390 s (counted from the first round) leave room for a slower round. Before
#     that sweep's end the evaluations replay the zero tables: equal rows mean deterministic
#     rollouts.
#  2. `bench ilc-parity` on the same clips (its programs are R2's, read back from the compile
#     cache): do the replays the search trusts agree bit for bit?
set -u
source .device_a/install.sh
R2=(monteverdi/madrigal.3.5/06 monteverdi/madrigal.3.5/05 haydn/opus74no1/movement2/03
    "trecento/PMFC_13_03-Gloria Micinella/02" bach/bwv112.5/00)
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco',
mujoco.__version__)"
  echo "== train ilc R2 $(date +%T)"
  timeout "${ILC_S:-500}" python3 -m mjx_piano train ilc --pieces "${R2[@]}" \
    --env-steps 8000000 --eval-every 16016 --time-limit "${ILC_LIMIT:-390}" --no-progress \
    --out /tmp/r2
  cp /tmp/r2/eval.csv "$OUT/r2_eval.csv"
  cp /tmp/r2/learning_curve.png "$OUT/r2_curve.png"
  echo "== bench ilc-parity $(date +%T)"
  timeout "${PARITY_S:-80}" python3 -m mjx_piano bench ilc-parity --pieces "${R2[@]}" \
    --windows 2 --out /tmp/parity
  cp /tmp/parity/parity.json "$OUT/parity.json"
  echo "== done $(date +%T)"
} 2>&1 | tee "$OUT/log.txt"
