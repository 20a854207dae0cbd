#!/usr/bin/env bash
# fuzz_gguf.sh BUILD_DIR SECONDS [SHARED_DIR]
# Builds the GGUF reader's libFuzzer target with clang (AddressSanitizer,
# UndefinedBehaviorSanitizer) and runs it for SECONDS on a seed corpus: the first 64 KiB
# of the shared test models and a file with every metadata type (written by test_gguf).
# Any crash, leak, sanitizer report, allocation over 64 MiB or input taking over 10 s
# fails. Found inputs are kept in BUILD_DIR/fuzz-gguf-corpus for the next run.
set -euo pipefail
build=$1 seconds=$2 shared=${3:-}
src=$(cd "$(dirname "$0")/.." && pwd)
cc=${FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null; then
    echo "fuzz_gguf: $cc not found (scripts/setup-debian.sh installs clang)" >&2
    exit 1
fi
out=$build/fuzz_gguf
"$cc" -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$src/compress" \
    "$src/tests/fuzz_gguf.c" "$src/compress/cmp_gguf.c" "$src/compress/cmp_quant.c" \
    "$src/compress/cmp_quant_k.c" "$src/compress/cmp_half.c" -lm -o "$out"
corpus=$build/fuzz-gguf-corpus
seeds=$build/fuzz-gguf-seeds
mkdir -p "$corpus" "$seeds"
if [ -n "$shared" ] && [ -d "$shared/models" ]; then
    for f in "$shared"/models/*.gguf "$shared"/models/vocab/*.gguf; do
        [ -f "$f" ] && head -c 65536 "$f" >"$seeds/$(basename "$f")"
    done
fi
[ -f "$build/tests/test_gguf_seed.gguf" ] && cp "$build/tests/test_gguf_seed.gguf" "$seeds/"
ASAN_OPTIONS=detect_leaks=1 "$out" "$corpus" "$seeds" -max_total_time="$seconds" \
    -max_len=65536 -malloc_limit_mb=64 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    2>&1 | tail -25
exit "${PIPESTATUS[0]}"
