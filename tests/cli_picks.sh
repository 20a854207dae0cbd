#!/usr/bin/env bash
# cli_picks.sh VKLLM MODELS_DIR
# `vkllm run --greedy` picks its tokens on the GPU; --host-picks picks them on the host
# from the logits. Both must print the same text and ids: through a context shift (48
# positions, 100 tokens: the run goes back to the host after each shift, then on), to
# -n, and to the end-of-text token.
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
check() { # name, then the run's flags
    local name=$1
    shift
    local gpu host
    gpu=$("$V" run --greedy --print-ids "$@" 2>"$err") || fail "$name: the GPU run failed: $(tail -3 "$err")"
    grep -q "(greedy, picked on the GPU)" "$err" || fail "$name: the statistics do not say the GPU picked"
    grep "^stopped" "$err"
    host=$("$V" run --greedy --print-ids --host-picks "$@" 2>"$err") || fail "$name: the host run failed"
    grep -q "picked on the GPU" "$err" && fail "$name: --host-picks still picked on the GPU"
    [ "$gpu" = "$host" ] || fail "$name: the texts differ:
GPU:  $gpu
host: $host"
    [ -n "$(printf '%s\n' "$gpu" | grep '^generated ids: [0-9]')" ] || fail "$name: no ids"
}
check shift -m "$M/stories260K.gguf" -n 100 --ctx 48 --context-full shift --ignore-eos
check limit -m "$M/TinyStories-656K-Q8_0.gguf" -p "Once upon a time" -n 40
check eos -m "$M/TinyStories-656K-Q8_0.gguf" -p "Once upon a time" -n -1
rm -f "$err"
[ $fails = 0 ] && echo "cli_picks: all checks passed"
[ $fails = 0 ]
