#!/usr/bin/env bash
# cli_check.sh EXPECT_STATUS PATTERN -- COMMAND...
#   EXPECT_STATUS: 0 (must succeed) or nonzero (must fail)
#   PATTERN: extended regex that the combined output must match
# Prints the output; fails when the status or the pattern does not match.
# CLI_NEEDS=FILE: skip (status 77) with a message when FILE does not exist.
set -u
if [ -n "${CLI_NEEDS:-}" ] && [ ! -e "$CLI_NEEDS" ]; then
    echo "cli_check: skipped: $CLI_NEEDS not found (../shared beside the checkout)"
    exit 77
fi
expect=$1 pattern=$2
shift 3
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$expect" = 0 ] && [ "$status" != 0 ]; then
    echo "cli_check: expected success, got status $status" >&2
    exit 1
fi
if [ "$expect" != 0 ] && [ "$status" = 0 ]; then
    echo "cli_check: expected failure, got status 0" >&2
    exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$pattern"; then
    echo "cli_check: output does not match /$pattern/" >&2
    exit 1
fi
