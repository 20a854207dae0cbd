#!/usr/bin/env bash
# cli_viewer.sh VKLLM VIEWER CHECK MODEL WORKDIR: vkllm-viewer attached to a running
# generation under Xvfb writes a screenshot whose panels match the metrics endpoint
# (viewer_check), and with nothing to attach to it still draws, saying "disconnected".
set -u
vkllm=$1 viewer=$2 check=$3 model=$4 work=$5
if [ ! -e "$model" ]; then
    echo "cli_viewer: skipped: $model not found (../shared beside the checkout)"
    exit 77
fi
if ! command -v xvfb-run >/dev/null; then
    echo "cli_viewer: xvfb-run is missing (Debian package xvfb; scripts/setup-debian.sh installs it)"
    exit 1
fi
rm -rf "$work" && mkdir -p "$work" || exit 1
"$vkllm" run -m "$model" -n -1 --ignore-eos --ctx 2048 --metrics-port 0 --quiet >/dev/null 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
. "$(dirname "$0")/metrics_lib.sh"
port=$(metrics_port "$work/log")
[ -n "$port" ] || { cat "$work/log"; echo "cli_viewer: FAIL: no metrics address"; exit 1; }
scrape() { http_get "$port" /metrics; }
val() { printf '%s\n' "$1" | awk -v k="$2" 'index($0, k) == 1 { print $NF; exit }'; }
metrics_wait_decode "$port" || { echo "cli_viewer: FAIL: no decoded token within 120 s"; exit 1; }
before=$(scrape)
xvfb-run -a "$viewer" --connect "127.0.0.1:$port" --screenshot "$work/shot.png" || {
    echo "cli_viewer: FAIL: the viewer failed"
    exit 1
}
after=$(scrape)
used=0
for p in weights kv scratch staging; do
    used=$(awk -v a="$used" -v b="$(val "$after" "vkllm_memory_bytes{purpose=\"$p\"}")" 'BEGIN { print a + b }')
done
budget=$(val "$after" 'vkllm_heap_budget_bytes{heap="0"')
cap=$(val "$after" 'vkllm_kv_cache_capacity_tokens ')
k0=$(val "$before" 'vkllm_kv_cache_tokens ') k1=$(val "$after" 'vkllm_kv_cache_tokens ')
px() { awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN { printf "%.2f", w * a / b }'; }
mem_px=$(px "$used" "$budget" 920)
"$check" "$work/shot.png" "$mem_px" "$(px "$k0" "$cap" 920)" "$(px "$k1" "$cap" 920)" || exit 1
kill $pid
wait $pid 2>/dev/null
# nothing listening: it draws and says so
xvfb-run -a "$viewer" --connect "127.0.0.1:$port" --screenshot "$work/alone.png" 2>"$work/alone" ||
    { echo "cli_viewer: FAIL: the viewer failed without an engine"; exit 1; }
grep -q "(disconnected)" "$work/alone" || { echo "cli_viewer: FAIL: not disconnected"; exit 1; }
# the viewer inside vkllm run (--view): a frame of a connected window, the generation whole
xvfb-run -a "$vkllm" run -m "$model" -n 200 --ignore-eos --greedy --view-screenshot "$work/in.png" \
    >"$work/in.out" 2>"$work/in.err" || { cat "$work/in.err"; echo "cli_viewer: FAIL: run --view"; exit 1; }
grep -q "wrote $work/in.png (connected)" "$work/in.err" || { cat "$work/in.err"; echo "cli_viewer: FAIL: no connected frame"; exit 1; }
grep -q "^decode   200 tokens" "$work/in.err" || { echo "cli_viewer: FAIL: the generation did not finish"; exit 1; }
echo "cli_viewer: all checks passed"
