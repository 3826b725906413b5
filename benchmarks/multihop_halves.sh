#!/usr/bin/env bash
# Passage recall of the no-LLM agent on one half of the three multi-hop sets, one line per configuration:
# what each issue-15 pass compares (docs/benchmarks.md). Builds a dataset's workspace (text index, title
# index and knowledge graph, networkx) the first time it is needed.
#
#   benchmarks/multihop_halves.sh RUNS dev|held-out|all [CONFIG...]
#
# CONFIG is DATASET-CHANNELS: DATASET wk (2WikiMultiHopQA, 300 questions), hp (HotpotQA, 100), mq (MuSiQue,
# 100); CHANNELS text (text + title) or both (with the knowledge graph's channel). Default: all six.
# The development half is the first half of the file (150 / 50 / 50 questions), held-out the rest.
# Each run folder RUNS/TAG-HALF-CONFIG holds predictions.jsonl; benchmarks/split_metrics.py splits an "all".
# Environment: WORKSPACES (default runs/multihop-ws), DATA (default ../shared/data/multihop),
# CODE (a checkout of another commit to run instead of this one; default: this repository), TAG (default run),
# CAPTURE=1 (each run folder also gets capture.jsonl, for benchmarks/cover_weights.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=$1 HALF=$2
shift 2
CONFIGS=("$@")
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(wk-text wk-both hp-text hp-both mq-text mq-both)
WORKSPACES=${WORKSPACES:-runs/multihop-ws} DATA=${DATA:-../shared/data/multihop} CODE=${CODE:-$PWD} TAG=${TAG:-run}
mkdir -p "$RUNS" "$WORKSPACES"
for config in "${CONFIGS[@]}"; do
  case ${config%-*} in
    wk) questions=2wikimultihopqa_dev300.json corpus=2wikimultihopqa_corpus.json half=150 ;;
    hp) questions=hotpotqa_train.json corpus=hotpotqa_train_corpus.json half=50 ;;
    mq) questions=musique_train.json corpus=musique_train_corpus.json half=50 ;;
    *) echo "unknown dataset in $config (wk, hp or mq)" >&2; exit 2 ;;
  esac
  case ${config#*-} in
    text) channels=() ;;
    both) channels=(--channels both) ;;
    *) echo "unknown channels in $config (text or both)" >&2; exit 2 ;;
  esac
  case $HALF in
    dev) select=(--limit "$half") ;;
    held-out) select=(--offset "$half") ;;
    all) select=() ;;
    *) echo "unknown half $HALF (dev, held-out or all)" >&2; exit 2 ;;
  esac
  workspace=$WORKSPACES/${config%-*}
  if [ ! -d "$workspace" ]; then  # one question builds it: ingest is what takes the time
    .venv/bin/pagehop -w "$workspace" eval "$DATA/$questions" --corpus "$DATA/$corpus" --no-llm --limit 1 \
      --out "$workspace-build" > "$workspace-build.log" 2>&1
  fi
  out=$RUNS/$TAG-$HALF-$config
  rm -rf "$out"
  PYTHONPATH=$CODE .venv/bin/python "$CODE/benchmarks/multihop_latency.py" "$workspace" "$DATA/$questions" \
    --corpus "$DATA/$corpus" --out "$out" "${select[@]}" "${channels[@]}" ${CAPTURE:+--capture} > "$out.log" 2>&1
  echo "$TAG $HALF $config R@2 R@5 EM F1 p50: $(grep -E '^ +(R@2|R@5|EM|F1|wall p50 s):' "$out.log" | awk '{print $NF}' | tr '\n' ' ')"
done
