#!/usr/bin/env bash
# vkllm developer entry point: installs what is missing, builds, and runs.
#
#   scripts/dev.sh run    set up, build, run the main job (devices, a story, a benchmark)
#   scripts/dev.sh test   set up, build, run the whole test suite through ctest
#   scripts/dev.sh build  set up and build only
#
# Environment:
#   BUILD_DIR          build folder (default: build)
#   VKLLM_MODEL=FILE   a model to run and benchmark (default: a story from
#                      ../shared/models/TinyStories-656K-Q8_0.gguf, then a benchmark of a
#                      synthetic model)
#   VKLLM_PROMPT=TEXT  the prompt (default "Once upon a time")
#   VKLLM_BENCH=SPEC   the synthetic model benchmarked when VKLLM_MODEL is not set, as
#                      PRESET:TYPE (default llama2-7b:Q4_0 pp512/tg128 on a GPU,
#                      smollm-135m:Q4_0 pp128/tg32 on a CPU driver)
#   VKLLM_SANITIZE=1   AddressSanitizer + UndefinedBehaviorSanitizer build
#   VKLLM_SKIP_SETUP=1 do not touch system packages
#   CI=true            -Werror, and a missing Vulkan device fails the tests
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
mode=${1:-run}
build_dir=${BUILD_DIR:-build}

case "$mode" in
run|test|build) ;;
*)
    echo "usage: scripts/dev.sh run|test|build" >&2
    exit 2
    ;;
esac

if [ "${VKLLM_SKIP_SETUP:-0}" != 1 ]; then
    scripts/setup-debian.sh
fi

werror=OFF
require_device=OFF
if [ "${CI:-}" = true ]; then
    werror=ON
    require_device=ON
fi
sanitize=OFF
[ "${VKLLM_SANITIZE:-0}" = 1 ] && sanitize=ON

cmake -S . -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVKLLM_WERROR="$werror" \
    -DVKLLM_SANITIZE="$sanitize" \
    -DVKLLM_REQUIRE_DEVICE="$require_device"
cmake --build "$build_dir" -j "$(nproc)"

case "$mode" in
run)
    # The main job: the device list; a story generated on the GPU with the trained test
    # model in ../shared (or VKLLM_MODEL / VKLLM_PROMPT); then `vkllm bench` on the best
    # device: the given model, or else a synthetic one of real shapes.
    vkllm="$build_dir/vkllm"
    "$vkllm" devices
    model=${VKLLM_MODEL:-../shared/models/TinyStories-656K-Q8_0.gguf}
    if [ -f "$model" ]; then
        "$vkllm" run -m "$model" -p "${VKLLM_PROMPT:-Once upon a time}" -n 200
    else
        echo "dev.sh: $model not found; set VKLLM_MODEL=FILE.gguf to run a model" >&2
    fi
    echo
    if [ -n "${VKLLM_MODEL:-}" ]; then
        "$vkllm" bench -m "$VKLLM_MODEL" -r 3
    elif "$vkllm" devices --json | grep -Eq '"type": "(discrete|integrated)"'; then
        "$vkllm" bench --synthetic "${VKLLM_BENCH:-llama2-7b:Q4_0}" -p 512 -n 128 -r 3
    else
        # a CPU driver (lavapipe): a small model, so the run takes a minute, not an hour
        "$vkllm" bench --synthetic "${VKLLM_BENCH:-smollm-135m:Q4_0}" -p 128 -n 32 -r 2
    fi
    ;;
test)
    # Tests run on the CPU driver (lavapipe) with the validation layer on.
    # (the sanitizer run leaves out the runs at other subgroup sizes and the capped
    # profiles' runs of the kernel and model tests, the same host code choosing other
    # kernels, and the GGUF fuzzer, which builds itself with the sanitizers in the first run)
    skip=()
    [ "$sanitize" = ON ] &&
        skip=(-LE subgroup -E '^(fuzz_gguf|test_(matrix|matrix_fused|ops|attention|model|session)_(minimal|mobile))$')
    ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "${skip[@]}"
    if [ "${CI:-}" = true ] && [ "$sanitize" = OFF ]; then
        # CI also runs the suite under AddressSanitizer + UndefinedBehaviorSanitizer.
        BUILD_DIR="$build_dir-asan" VKLLM_SANITIZE=1 VKLLM_SKIP_SETUP=1 "$0" test
    fi
    ;;
esac
