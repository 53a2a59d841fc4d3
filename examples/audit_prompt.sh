#!/usr/bin/env bash
# Audit an existing teaching prompt: plant canaries in your private data, let YOUR pipeline write the
# prompt from the planted copy, then score and gate. Usage: audit_prompt.sh DATA.jsonl OUT_DIR
set -euo pipefail
data=$1; out=$2
mkdir -p "$out"
privacy-audit canaries generate --template "The secret code is {secret}" --space digits:4 \
    --count 5 --references 50 --seed 1 --out "$out/set.json"
privacy-audit canaries plant "$out/set.json" --data "$data" --field text --out "$out/planted.jsonl"
# Replace this line with your own pipeline, reading $out/planted.jsonl and writing $out/prompt.txt:
privacy-audit teach --pipeline instructions --data "$out/planted.jsonl" --field text --out "$out/prompt.txt"
privacy-audit score --prompt "$out/prompt.txt" --canaries "$out/set.json" --out "$out/report.json"
privacy-audit gate "$out/report.json" --max-exposure 4
