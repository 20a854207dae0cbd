#!/usr/bin/env bash
# cli_bench.sh VKLLM WORKDIR: vkllm synth and vkllm bench end to end.
#   - synth writes a file that vkllm run generates from, and refuses to overwrite it;
#   - bench on a synthetic model prints a row per test in every format, with figures;
#   - bench compare reads its JSON and JSONL back into one table and draws a PNG;
#   - a gate that fails means no timings and a non-zero status.
set -u
vkllm=$1 work=$2
rm -rf "$work" && mkdir -p "$work" || exit 1
fails=0
fail() {
    echo "cli_bench: FAIL: $*" >&2
    fails=$((fails + 1))
}
# out FILE: the command's stdout in FILE, stderr shown; its status returned
run() {
    local to=$1
    shift
    "$@" >"$to" 2>"$work/stderr"
    local st=$?
    cat "$work/stderr" >&2
    return $st
}

# synth
run "$work/synth.out" "$vkllm" synth --preset tiny --type Q4_K_M -o "$work/tiny.gguf" --seed 3 ||
    fail "synth failed"
grep -Eq "tensors +f32: 5, q4_K: 13, q6_K: 3" "$work/stderr" || fail "synth's tensor types line"
run "$work/synth.out" "$vkllm" synth --preset tiny --type Q4_0 -o "$work/tiny.gguf" &&
    fail "synth overwrote a file without --force"
grep -q "exists; pass --force" "$work/stderr" || fail "synth's refusal message"
run "$work/synth.out" "$vkllm" synth --preset huge-42b --type Q4_0 -o "$work/x.gguf" &&
    fail "synth took an unknown preset"
run "$work/run.out" "$vkllm" run -m "$work/tiny.gguf" -p "hello" -n 8 --greedy --validation ||
    fail "run on the synthetic file failed"
grep -q "^hello" "$work/run.out" || fail "run did not print the prompt and generation"

# bench: each format
bench=("$vkllm" bench --synthetic tiny:Q4_0 -p 32 -n 8 -r 2 --validation)
run "$work/b.md" "${bench[@]}" || fail "bench (md) failed"
grep -Eq "^\| .* \| tiny Q4_0 \(synthetic\) \| .* \| pp32 \| [0-9.]+ ± [0-9.]+ \|" "$work/b.md" ||
    fail "no pp32 row in the markdown"
grep -Eq "^\| .* \| tg8 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ \| [0-9.]+% \|" "$work/b.md" ||
    fail "no tg8 row with GB/s and % of the copy bandwidth in the markdown"
grep -Eq "gate pass: .*worst logit error" "$work/stderr" || fail "the gate's verdict is not shown"
run "$work/b.csv" "${bench[@]}" -o csv || fail "bench (csv) failed"
[ "$(wc -l <"$work/b.csv")" = 3 ] || fail "csv: want a header and 2 rows"
head -1 "$work/b.csv" | grep -q "^build_commit,.*,avg_ts,stddev_ts,.*bandwidth_pct" ||
    fail "csv header"
run "$work/b.json" "${bench[@]}" -o json || fail "bench (json) failed"
run "$work/b.jsonl" "${bench[@]}" -o jsonl --profile minimal || fail "bench (jsonl) failed"
[ "$(wc -l <"$work/b.jsonl")" = 2 ] || fail "jsonl: want 2 lines"

# tg with the tokens picked on the GPU (steps queued): its rows say so, the pp row does not
run "$work/picks.md" "$vkllm" bench --synthetic tiny:Q4_0 -p 16 -n 8 -d 0,20 -r 1 --gpu-picks \
    --validation || fail "bench --gpu-picks failed"
[ "$(grep -Ec '^\| .* \| Vulkan, GPU picks \| .* \| tg8( @ d20)? \| [0-9.]+ ±' "$work/picks.md")" = 2 ] ||
    fail "--gpu-picks: want 2 tg8 rows that say GPU picks"
grep -Eq '^\| .* \| Vulkan \| .* \| pp16 \|' "$work/picks.md" ||
    fail "--gpu-picks: the pp16 row should not say GPU picks"

# tg sampled from the best logits and from all of them: rows and JSON say which
run "$work/sample.md" "$vkllm" bench --synthetic tiny:Q4_0 -p 0 -n 8 -r 1 --sample best ||
    fail "bench --sample best failed"
grep -Eq '^\| .* \| Vulkan, sampled from the best logits \| .* \| tg8 \| [0-9.]+ ±' "$work/sample.md" ||
    fail "--sample best: want a tg8 row that says so"
run "$work/sample.json" "$vkllm" bench --synthetic tiny:Q4_0 -p 0 -n 8 -r 1 --sample all -o json ||
    fail "bench --sample all failed"
grep -Eq '"sample":[[:space:]]+"all"' "$work/sample.json" || fail "--sample all: the JSON row does not say so"
"$vkllm" bench --synthetic tiny:Q4_0 --sample some >/dev/null 2>"$work/err" &&
    fail "--sample some was taken"
grep -q 'best or all' "$work/err" || fail "--sample some: $(cat "$work/err")"
"$vkllm" bench --synthetic tiny:Q4_0 --sample all --gpu-picks >/dev/null 2>"$work/err" &&
    fail "--sample all with --gpu-picks was taken"
grep -q 'not both' "$work/err" || fail "--sample all --gpu-picks: $(cat "$work/err")"
# sampled on the GPU, steps queued: the rows say both
run "$work/gpu-sample.jsonl" "$vkllm" bench --synthetic tiny:Q4_0 -p 0 -n 8 -r 1 --sample best \
    --gpu-picks --validation -o jsonl || fail "bench --sample best --gpu-picks failed"
grep -q '"gpu_picks":true,.*"sample":"best"' "$work/gpu-sample.jsonl" ||
    fail "--sample best --gpu-picks: the JSON row does not say both: $(cat "$work/gpu-sample.jsonl")"

# depth (-d is the depth, as in llama-bench) and both attention paths: 2 x 2 x 2 rows
run "$work/fa.jsonl" "$vkllm" bench --synthetic tiny:Q8_0 -p 16 -n 4 -d 0,32 -fa 0,1 -r 1 -o jsonl ||
    fail "bench with depths and -fa 0,1 failed"
[ "$(wc -l <"$work/fa.jsonl")" = 8 ] || fail "-d 0,32 -fa 0,1: want 8 rows"
[ "$(grep -c '"flash_attn":0,.*"n_depth":32' "$work/fa.jsonl")" = 2 ] ||
    fail "-fa 0 at depth 32: want a pp and a tg row"

# a combination the path refuses (the unfused attention over a q8_0 cache) is said and
# skipped, the others still run: fa 0 f16, fa 1 f16 and fa 1 q8_0, a pp and a tg each
run "$work/skip.jsonl" "$vkllm" bench --synthetic tiny:Q8_0 -p 16 -n 4 -fa 0,1 -ctk f16,q8_0 \
    -r 1 -o jsonl && fail "a refused combination left the exit status 0"
grep -q "unfused attention path reads f16 caches only" "$work/stderr" ||
    fail "the refused combination was not said"
[ "$(wc -l <"$work/skip.jsonl")" = 6 ] || fail "after a refused combination: want 6 rows"

# compare keys rows by configuration too: the 8 rows of -d 0,32 -fa 0,1 stay 8
run "$work/cmpfa.md" "$vkllm" bench compare "$work/fa.jsonl" "$work/skip.jsonl" --no-chart ||
    fail "compare of configurations failed"
[ "$(grep -c '^| tiny Q8_0' "$work/cmpfa.md")" = 10 ] ||
    fail "compare: want 10 rows (8 of -d 0,32 -fa 0,1, and q8_0's pp and tg)"
grep -q '| tg4 @ d32 (fa 0) | [0-9.]* ± [0-9.]* ([0-9]*% of bw) | - |' "$work/cmpfa.md" ||
    fail "compare: no tg4 @ d32 (fa 0) row in the first run only"
grep -q '| pp16 (kv q8_0/f16) | - | [0-9.]* ± ' "$work/cmpfa.md" ||
    fail "compare: no pp16 (kv q8_0/f16) row in the second run only"

# compressed KV caches: q8_0 keys with q4_0 values, recorded in the rows
run "$work/kv.jsonl" "$vkllm" bench --synthetic tiny:Q8_0 -p 16 -n 4 -ctk q8_0 -ctv q4_0 -r 1 \
    -o jsonl || fail "bench with -ctk q8_0 -ctv q4_0 failed"
[ "$(grep -c '"type_k":"q8_0","type_v":"q4_0"' "$work/kv.jsonl")" = 2 ] ||
    fail "-ctk q8_0 -ctv q4_0: want 2 rows with those types"

# compare: both read back, one column each, a PNG written
run "$work/cmp.md" "$vkllm" bench compare "$work/b.json" "$work/b.jsonl" --labels native,minimal \
    -o "$work/chart.png" || fail "compare failed"
grep -Eq "^\| tiny Q4_0 \(synthetic\) \| pp32 \| [0-9.]+ ± [0-9.]+ \| [0-9.]+ ± [0-9.]+ \|$" \
    "$work/cmp.md" || fail "compare: no pp32 row with both runs"
grep -Eq "^\| tiny Q4_0 \(synthetic\) \| tg8 \| [0-9.]+ ± [0-9.]+ \([0-9]+% of bw\) \| " \
    "$work/cmp.md" || fail "compare: no tg8 row"
[ "$(head -c 8 "$work/chart.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "compare: the chart is not a PNG"
[ "$(wc -c <"$work/chart.png")" -gt 2000 ] || fail "compare: the chart is nearly empty"
run "$work/cmp2.md" "$vkllm" bench compare "$work/b.md" --no-chart &&
    fail "compare took a markdown file"

# a failing gate: reported, nothing timed, status 1
run "$work/gate.md" "$vkllm" bench --synthetic tiny:Q4_0 -p 32 -n 8 -r 2 \
    --gate-model "$work/no-such-model.gguf" && fail "bench passed with a failing gate"
grep -Eq "\| gate \| FAIL" "$work/gate.md" || fail "the failing gate has no row"
grep -Eq "pp32|tg8" "$work/gate.md" && fail "a device that failed the gate was timed"

cat "$work/b.md" "$work/cmp.md"
[ $fails = 0 ] && echo "cli_bench: all checks passed"
exit $((fails > 0))
