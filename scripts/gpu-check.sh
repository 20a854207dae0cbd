#!/bin/sh
# Correctness and speed on a real GPU in one go: the device's identity, the GPU test
# binaries (validation layer on), then the benchmarks whose figures docs/benchmarks.md
# records. Every step has a time limit so that a hang costs minutes, not the session.
#
#   scripts/gpu-check.sh [BUILD_DIR] [STEPS]
#
# BUILD_DIR holds vkllm and tests/ (default build); STEPS is a comma-separated subset of
# info,tests,kernels,model,profile,fusion,attention,prefill (default all). Logs go to $OUT (default
# ./gpu-check-out), one file per step; the summary lines go to stdout.
set -u
B=${1:-build}
STEPS=${2:-info,tests,kernels,model,profile,fusion,attention,prefill}
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
V="$B/vkllm"

want() { case ",$STEPS," in *",$1,"*) return 0 ;; esac; return 1; }
step() { echo "== $1 ($(date +%T))"; }

if want info; then
    step info
    { vulkaninfo --summary 2>&1 | sed -n '/^Devices:/,$p'; "$V" devices --bandwidth; } \
        >"$OUT/info.txt" 2>&1
    grep -E "deviceName|driverInfo|apiVersion|copy bandwidth" "$OUT/info.txt"
fi

if want tests; then
    step tests
    : >"$OUT/tests.txt"
    for t in test_pipelines test_kernels test_matrix test_matrix_fused test_ops test_attention test_memory test_model; do
        VKLLM_TEST_REQUIRE_DEVICE=1 timeout 150 "$B/tests/$t" >>"$OUT/tests.txt" 2>&1
        echo "$t: exit $? ($(grep -c ' FAIL' "$OUT/tests.txt") FAIL lines so far)"
    done
    grep -E "FAIL|passed," "$OUT/tests.txt" | head -40
fi

if want kernels; then
    step kernels
    timeout 200 "$V" bench kernels --reps 20 --no-baseline \
        --formats f16,q8_0,q4_0,q4_K,q6_K,iq4_nl >"$OUT/kernels.txt" 2>&1
    grep -E "matvec|matmul|mv-|mm-|bandwidth|FMA" "$OUT/kernels.txt" | head -80
fi

if want model; then
    step model
    timeout 300 "$V" bench --synthetic llama2-7b:Q4_0,llama2-7b:Q4_K_M,llama2-7b:Q8_0 \
        -p 512 -n 128 -r 3 >"$OUT/model.txt" 2>&1
    cat "$OUT/model.txt" | grep -v "^\s*$" | tail -20
fi

if want profile; then
    step profile
    timeout 120 "$V" bench --synthetic llama2-7b:Q4_0 -p 0 -n 32 -r 1 --profile-ops \
        >"$OUT/profile.txt" 2>&1
    tail -45 "$OUT/profile.txt"
fi

if want fusion; then
    # the norms and silu·mul fused into the products against the unfused sequence, and the
    # reused decode recording against recording each step, and greedy picks on the GPU
    # (steps queued, no wait per token) against llama-bench's wait per step, and sampling
    # from the best logits (by the host, or on the GPU with steps queued) against every
    # logit read back, in turn (twice each: the second round says how much of the
    # difference is noise)
    step fusion
    for run in 1 2; do
        for f in "" --unfused-products --record-each-step --gpu-picks "--sample best" \
            "--sample best --gpu-picks" "--sample all"; do
            timeout 150 "$V" bench --synthetic llama2-7b:Q4_0,llama2-7b:Q4_K_M -p 0 -n 128 \
                -r 3 $f 2>&1 | grep tg128
        done
    done >"$OUT/fusion.txt"
    cat "$OUT/fusion.txt"
fi

if want attention; then
    step attention
    timeout 200 "$V" bench attention --ctx 1024,4096,16384,32768 >"$OUT/attention.txt" 2>&1
    grep -E "attention|unfused" "$OUT/attention.txt" | head -40
fi
if want prefill; then
    # prefill's choices side by side: the cooperative-matrix matmul (off by default until
    # it has run here; test_matrix matmul_coopmat and test_model layers_coopmat in the
    # tests step check it on the matrix units), and the f32 kernel's 8 x 8 register tiles
    # against the 4 x 4 ones the earlier H100 figures were taken with
    step prefill
    {
        VKLLM_COOPMAT=1 timeout 200 "$V" bench --synthetic llama2-7b:Q4_0,llama2-7b:Q4_K_M \
            -p 512 -n 0 -r 3
        echo "cooperative-matrix tiles 128x128x32 (4 x 4 fragments per subgroup), 64x64x64:"
        for t in 128x128x32/1x1 64x64x64/1x1 128x64x32/1x1; do
            VKLLM_MATMUL=$t timeout 100 "$V" bench kernels --reps 10 --no-baseline \
                --formats q4_0,q4_K --shapes 4096x4096,4096x11008 | grep -E "tiles|mm-cm"
        done
        VKLLM_MATMUL=64x64x16/4x4 timeout 150 "$V" bench kernels --reps 10 --no-baseline \
            --formats q4_0,q4_K --shapes 4096x4096,4096x11008
        echo "K-quant prefill: the integer matmul (default where 8-bit dots are accelerated), then f32"
        for mv in "" 128x2f; do
            VKLLM_MATVEC=$mv timeout 150 "$V" bench --synthetic llama2-7b:Q4_K_M -p 512 -n 0 -r 3
        done
        echo "short prompts: matvec passes of 8 (default below 56 tokens), then the matmul"
        for mm in 0 1; do
            VKLLM_MATMUL_MIN=$([ $mm = 1 ] && echo 1 || echo 56) timeout 150 "$V" bench \
                --synthetic llama2-7b:Q4_0 -p 16,32,48 -n 0 -r 3
        done
        echo "attention, 512 queries: scalar kernel, then cooperative matrices"
        timeout 100 "$V" bench attention --tokens 512 --ctx 4096 --kv-types f16 --no-unfused
        VKLLM_COOPMAT=1 timeout 100 "$V" bench attention --tokens 512 --ctx 4096 --kv-types f16 \
            --no-unfused
    } >"$OUT/prefill.txt" 2>&1
    grep -E "pp512|pp16|pp32|pp48|matmul|mm-|attention|f16" "$OUT/prefill.txt" | head -40
fi
step done
