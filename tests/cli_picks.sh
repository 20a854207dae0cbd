#!/usr/bin/env bash
# cli_picks.sh VKLLM MODELS_DIR
# `vkllm run --greedy` picks its tokens on the GPU, and sampling (or greedy decoding with
# a penalty) reads only the best logits, or with --gpu-picks (lavapipe selects on the
# host otherwise) samples on the GPU from them; with --host-picks the host reads every
# logit and picks. Both must print the same text and ids: through a context shift (48
# positions, 100 tokens: the run goes back to the host after each shift, then on), to -n,
# and to the end-of-text token. (The GPU samples in float, the host in double: a draw
# within rounding of a boundary could part them. These seeds' runs have none; the
# engine's test checks the margin wherever they part.)
set -u
V=$1 M=$2
if [ ! -e "$M/stories260K.gguf" ]; then
    echo "cli_picks: skipped: $M/stories260K.gguf not found (../shared beside the checkout)"
    exit 77
fi
fails=0
err=$(mktemp)
fail() {
    echo "cli_picks: FAIL: $*"
    fails=$((fails + 1))
}
check() { # name, what the statistics must say, then the run's flags
    local name=$1 says=$2
    shift 2
    local gpu host
    gpu=$("$V" run --print-ids "$@" 2>"$err") || fail "$name: the GPU run failed: $(tail -3 "$err")"
    grep -qF "$says" "$err" || fail "$name: the statistics do not say \"$says\": $(grep ^decode "$err")"
    grep "^stopped" "$err"
    local args=() a
    for a in "$@"; do [ "$a" = --gpu-picks ] || args+=("$a"); done
    host=$("$V" run --print-ids --host-picks "${args[@]}" 2>"$err") || fail "$name: the host run failed"
    grep -qE "picked on the GPU|from the best" "$err" && fail "$name: --host-picks did not read every logit"
    [ "$gpu" = "$host" ] || fail "$name: the texts differ:
GPU:  $gpu
host: $host"
    [ -n "$(printf '%s\n' "$gpu" | grep '^generated ids: [0-9]')" ] || fail "$name: no ids"
}
picked="(greedy, picked on the GPU)"
check shift "$picked" -m "$M/stories260K.gguf" --greedy -n 100 --ctx 48 --context-full shift \
    --ignore-eos
check limit "$picked" -m "$M/TinyStories-656K-Q8_0.gguf" --greedy -p "Once upon a time" -n 40
check eos "$picked" -m "$M/TinyStories-656K-Q8_0.gguf" --greedy -p "Once upon a time" -n -1
# sampling at a temperature, and greedy with a penalty, from the best logits
check sampled "(sampled from the best 40 logits)" -m "$M/TinyStories-656K-Q8_0.gguf" \
    -p "Once upon a time" -n 60 --seed 3
check sampled-shift "(sampled from the best 72 logits)" -m "$M/stories260K.gguf" -n 100 \
    --ctx 48 --context-full shift --ignore-eos --top-k 8 --repeat-penalty 1.2 --seed 4
check greedy-penalty "(greedy from the best 65 logits)" -m "$M/stories260K.gguf" --greedy \
    --repeat-penalty 1.3 -n 50
# sampling, and greedy with a penalty, on the GPU with the host's draws
check gpu-sampled "(sampled on the GPU from the best 40 logits)" -m \
    "$M/TinyStories-656K-Q8_0.gguf" -p "Once upon a time" -n 60 --seed 3 --gpu-picks
check gpu-sampled-shift "(sampled on the GPU from the best 72 logits)" -m "$M/stories260K.gguf" \
    -n 100 --ctx 48 --context-full shift --ignore-eos --top-k 8 --repeat-penalty 1.2 --seed 4 \
    --gpu-picks
check gpu-greedy-penalty "(greedy with a penalty, picked on the GPU from the best 65 logits)" \
    -m "$M/stories260K.gguf" --greedy --repeat-penalty 1.3 -n 50 --gpu-picks
check gpu-eos "(sampled on the GPU from the best 40 logits)" -m "$M/TinyStories-656K-Q8_0.gguf" \
    -p "Once upon a time" -n -1 --seed 5 --gpu-picks
# past what the GPU samples from (512): the host samples
check gpu-wide "(sampled from the best 600 logits)" -m "$M/TinyStories-656K-Q8_0.gguf" \
    -p "Once upon a time" -n 30 --seed 6 --top-k 600 --gpu-picks
"$V" run -m "$M/stories260K.gguf" -n 4 --gpu-picks --host-picks 2>"$err" &&
    fail "--gpu-picks with --host-picks was taken"
grep -q "not both" "$err" || fail "--gpu-picks with --host-picks: $(cat "$err")"
rm -f "$err"
[ $fails = 0 ] && echo "cli_picks: all checks passed"
[ $fails = 0 ]
