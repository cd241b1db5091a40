#!/bin/bash
# The GPU runbook's calls (bench/RESULTS.md, "Runbook"). Here, once:
#   python3 -m mjx_piano repertoire build; python3 -m bench.device_stage --one-call
# then the device tool's `run`, twice, back to back (the machine stays warm between them):
#   1. carry [".device_a"], timeout_s 598:  bash bench/device_run.sh r2
#   2. no carry (the warm machine keeps .device_a, its packages and its compile cache),
#      timeout_s 200:                       bash bench/device_run.sh parity
# Each writes under $OUT (the tool brings back at most 8 files): r2 log_r2.txt, r2_eval.csv,
# r2_curve.png; parity log_parity.txt, parity.json.
#  r2: R2 with the best recipe (`train ilc`: both fingerings, the segment search) under the
#      deterministic XLA ops and the full float32 products it asks for (train/determinism.py).
#      A sweep over the 550-step clips is 220 rounds (81,400 env steps per clip) and the
#      evaluation plays the best sweep end, so `--eval-every 81400` evaluates once more, at
#      round 220: just after the first sweep's end (an evaluation before it would replay the
#      zero tables). On 2026-12-04 (H200, deterministic ops, TF32 products) the first round
#      came ~110 s after the start and a round took ~1.8 s with its share of evaluations;
#      `--time-limit 440` (counted from the first round) leaves room for 2 s a round.
#  parity: `bench ilc-parity` on the same clips (R2's programs, read back from the compile
#      cache): do the replays the search trusts agree, and how large is their first gap?
set -u
stage=${1:-r2}
if [ "$stage" != r2 ] && [ "$stage" != parity ]; then
  echo "usage: bash bench/device_run.sh r2|parity" >&2; exit 2
fi
source .device_a/install.sh
R2=(monteverdi/madrigal.3.5/06 monteverdi/madrigal.3.5/05 haydn/opus74no1/movement2/03
    "trecento/PMFC_13_03-Gloria Micinella/02" bach/bwv112.5/00)
case "$stage" in
  r2)
    {
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
      python3 -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco',
mujoco.__version__)"
      echo "== train ilc R2 $(date +%T)"
      timeout "${ILC_S:-575}" python3 -m mjx_piano train ilc --pieces "${R2[@]}" \
        --env-steps 8000000 --eval-every 81400 --time-limit "${ILC_LIMIT:-440}" \
        --no-progress --out /tmp/r2
      cp /tmp/r2/eval.csv "$OUT/r2_eval.csv"
      cp /tmp/r2/learning_curve.png "$OUT/r2_curve.png"
      echo "== done $(date +%T)"
    } 2>&1 | tee "$OUT/log_r2.txt" ;;
  parity)
    {
      echo "== bench ilc-parity $(date +%T)"
      timeout "${PARITY_S:-185}" python3 -m mjx_piano bench ilc-parity --pieces "${R2[@]}" \
        --windows 2 --out /tmp/parity
      cp /tmp/parity/parity.json "$OUT/parity.json"
      echo "== done $(date +%T)"
    } 2>&1 | tee "$OUT/log_parity.txt" ;;
esac
