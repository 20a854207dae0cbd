#!/usr/bin/env bash
# cli_metrics.sh VKLLM MODEL: the metrics endpoint of a running generation.
#   - GET /metrics twice, seconds apart: every sample line is Prometheus text, the
#     expected families are there, the token counter grows, decode steps reuse their
#     recording and the KV gauge stays within its capacity; another path answers 404.
set -u
vkllm=$1 model=$2
if [ ! -e "$model" ]; then
    echo "cli_metrics: skipped: $model not found (../shared beside the checkout)"
    exit 77
fi
log=$(mktemp) && trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
"$vkllm" run -m "$model" -n -1 --ignore-eos --ctx 128 --context-full shift --metrics-port 0 --profile-ops \
    --quiet --validation >/dev/null 2>"$log" &
pid=$!
. "$(dirname "$0")/metrics_lib.sh"
port=$(metrics_port "$log")
[ -n "$port" ] || { cat "$log"; echo "cli_metrics: FAIL: no metrics address printed"; exit 1; }
get() { http_get "$port" "$1"; }
fails=0
fail() {
    echo "cli_metrics: FAIL: $*" >&2
    fails=$((fails + 1))
}
metrics_wait_decode "$port" || fail "no decoded token within 120 s"
first=$(get /metrics)
sleep 2
second=$(get /metrics)
printf '%s\n' "$second"
body=$(printf '%s\n' "$second" | sed '1,/^$/d')
printf '%s\n' "$second" | head -1 | grep -q "^HTTP/1.[01] 200" || fail "status of /metrics"
bad=$(printf '%s\n' "$body" | grep -v '^#' | grep -Ev '^[a-z_:][a-z0-9_:]*(\{([a-z_][a-z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.]+(e[-+]?[0-9]+)?$' | head -3)
[ -z "$bad" ] || fail "lines that are not Prometheus samples: $bad"
for family in vkllm_device_info vkllm_memory_bytes vkllm_heap_budget_bytes vkllm_tokens_total \
    vkllm_kv_cache_tokens vkllm_kv_cache_capacity_tokens vkllm_op_gpu_seconds; do
    printf '%s\n' "$body" | grep -q "^# TYPE $family " || fail "no $family"
done
tok() { printf '%s\n' "$1" | sed -n 's/^vkllm_tokens_total{phase="decode"} \([0-9]*\)$/\1/p'; }
a=$(tok "$first") b=$(tok "$second")
[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] || fail "decode tokens did not grow: $a then $b"
reused=$(printf '%s\n' "$body" | sed -n 's/^vkllm_decode_steps_reused_total \([0-9]*\)$/\1/p')
[ -n "$reused" ] && [ "$reused" -gt 0 ] || fail "no decode step reused a recording ($reused)"
kv=$(printf '%s\n' "$body" | sed -n 's/^vkllm_kv_cache_tokens \([0-9]*\)$/\1/p')
[ -n "$kv" ] && [ "$kv" -le 128 ] || fail "KV cache tokens $kv beyond the capacity 128"
get /nothing | head -1 | grep -q " 404" || fail "another path is not 404"
kill -0 $pid 2>/dev/null || fail "the generation stopped"
[ $fails = 0 ] && echo "cli_metrics: all checks passed (decode tokens $a -> $b)"
exit $((fails > 0))
