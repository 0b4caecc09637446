#!/usr/bin/env bash
# The RWM experiment of docs/results.md: from an existing init run (PPO on the real embedded simulator), pretrain a
# world model on real data, fine-tune the init policy in imagination only with uncertainty penalty weights LAMBDAS, and
# evaluate every policy in the real simulator with `rwmspec eval`.
#
#   scripts/finetune_experiment.sh RUNS_DIR DEVICE [PRETRAIN_ITERS] [FINETUNE_ITERS] [extra --set/--overlay ...]
#
# RUNS_DIR must hold a finished run of specs/anymal_d_init.toml (the finetune spec's policy_from). The pretrain stage
# starts from that policy too, so its replay buffer holds the gaits the fine-tuned policy will see; the ensemble has 5
# members so that the epistemic uncertainty the penalty reads is not zero. LAMBDAS (default "0.0 1.0") lists the
# penalty weights; every policy is evaluated on EVAL_ENVS envs (default 128) x 1000 steps. Results:
# RUNS_DIR/experiment/ (eval.json and metrics.jsonl per run, and imagined_vs_real.png).
set -euo pipefail
runs=$1 device=$2 pretrain_iters=${3:-100} finetune_iters=${4:-80}
shift $(( $# < 4 ? $# : 4 ))
common=(--runs-dir "$runs" --device "$device" --set world_model.ensemble_size=5
        --set world_model.train.num_mini_batches=8 "$@")
out="$runs/experiment"
mkdir -p "$out"
python3 -m rwmspec run specs/anymal_d_pretrain.toml "${common[@]}" --num-envs 2048 --max-iterations "$pretrain_iters" \
  --set 'runner.policy_from={spec="anymal_d_init.toml"}' --console compact | tail -n 3
for lambda in ${LAMBDAS:-0.0 1.0}; do
  python3 -m rwmspec run specs/anymal_d_finetune.toml "${common[@]}" --max-iterations "$finetune_iters" \
    --set imagination.warmup_iterations=20 --set imagination.uncertainty_penalty_weight="$lambda" \
    --set experiment.run_name="finetune_lambda$lambda" --console compact | tail -n 2
done
for run in "$runs"/anymal_d_flat/*_init "$runs"/anymal_d_flat/*_finetune_lambda*; do
  python3 -m rwmspec eval "$run" --num-envs "${EVAL_ENVS:-128}" --steps 1000 --device "$device" | grep -E "tracking|fall|length"
  cp "$run/eval.json" "$out/$(basename "$run").eval.json"
  if [ -f "$run/metrics.jsonl" ]; then cp "$run/metrics.jsonl" "$out/$(basename "$run").metrics.jsonl"; fi
done
cp "$runs"/anymal_d_flat/*_pretrain/metrics.jsonl "$out/pretrain.metrics.jsonl"
python3 scripts/plot_finetune_experiment.py "$out/imagined_vs_real.png" "$out"/*_finetune_lambda*.metrics.jsonl
