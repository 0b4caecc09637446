#!/usr/bin/env bash
# The RWM experiment of docs/results.md: from an existing init run (PPO on the real embedded simulator), pretrain a
# world model on real data, fine-tune the init policy in imagination only with uncertainty penalty 0 and 1, and
# evaluate every policy in the real simulator with `rwmspec eval`.
#
#   scripts/finetune_experiment.sh RUNS_DIR DEVICE [PRETRAIN_ITERS] [FINETUNE_ITERS] [extra --set/--overlay ...]
#
# RUNS_DIR must hold a finished run of specs/anymal_d_init.toml (the finetune spec's policy_from). The pretrain stage
# starts from that policy too, so its replay buffer holds the gaits the fine-tuned policy will see; the ensemble has 5
# members so that the epistemic uncertainty the penalty reads is not zero. Results: RUNS_DIR/experiment/*.json.
set -euo pipefail
runs=$1 device=$2 pretrain_iters=${3:-100} finetune_iters=${4:-80}
shift $(( $# < 4 ? $# : 4 ))
common=(--runs-dir "$runs" --device "$device" --set world_model.ensemble_size=5
        --set world_model.train.num_mini_batches=8 --set logging.learning_curve=false "$@")
out="$runs/experiment"
mkdir -p "$out"
python3 -m rwmspec run specs/anymal_d_pretrain.toml "${common[@]}" --num-envs 2048 --max-iterations "$pretrain_iters" \
  --set 'runner.policy_from={spec="anymal_d_init.toml"}' --console compact | tail -n 3
for lambda in 0.0 1.0; do
  python3 -m rwmspec run specs/anymal_d_finetune.toml "${common[@]}" --max-iterations "$finetune_iters" \
    --set imagination.warmup_iterations=20 --set imagination.uncertainty_penalty_weight="$lambda" \
    --set experiment.run_name="finetune_lambda$lambda" --console compact | tail -n 2
done
for run in "$runs"/anymal_d_flat/*_init "$runs"/anymal_d_flat/*_finetune_lambda*; do
  python3 -m rwmspec eval "$run" --num-envs 32 --steps 1000 --device "$device" | grep -E "tracking|fall|length"
  cp "$run/eval.json" "$out/$(basename "$run").eval.json"
  if [ -f "$run/metrics.jsonl" ]; then cp "$run/metrics.jsonl" "$out/$(basename "$run").metrics.jsonl"; fi
done
cp "$runs"/anymal_d_flat/*_pretrain/metrics.jsonl "$out/pretrain.metrics.jsonl"
