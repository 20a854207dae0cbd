#!/usr/bin/env bash
# cli_chat.sh VKLLM MODELS_DIR
# `vkllm run --chat`: messages read from stdin, each answered in the chat format, the
# session extended turn by turn. stories260K is no chat model (and its vocabulary has no
# chatml tokens: the markers are plain text to it), but greedy decoding makes every reply
# repeatable: after /reset the first message gets the first reply again, GPU and host
# picks give the same transcript, a small context leaves old exchanges out and a message
# that cannot fit is refused while the conversation goes on.
set -u
V=$1 M=$2
model=$M/stories260K.gguf
if [ ! -e "$model" ]; then
    echo "cli_chat: skipped: $model not found (../shared beside the checkout)"
    exit 77
fi
fails=0
err=$(mktemp)
fail() {
    echo "cli_chat: FAIL: $*"
    fails=$((fails + 1))
}
# the reply after the message line "> $1" in the transcript on stdin
reply_to() {
    awk -v want="> $1" -v nth="$2" '
        /^> / { if (on) exit; if ($0 == want && ++seen == nth) { on = 1; next } }
        on { print }'
}

input=$'Once upon a time\nThe dog\\\nran away\n/reset\nOnce upon a time\n/exit\nnever read\n'
run=(run -m "$model" --chat-template chatml --greedy -n 12 --system "Tell a story.")
out=$(printf '%s' "$input" | "$V" "${run[@]}" --validation 2>"$err") ||
    fail "the conversation failed: $(tail -3 "$err")"
printf '%s\n' "$out"
grep -E '^(chat|prefill|decode|stopped) ' "$err"
grep -q "^chat     3 replies" "$err" || fail "three replies expected: $(grep ^chat "$err")"
grep -qF "chatml format (from --chat-template)" "$err" || fail "the format is not named"
printf '%s\n' "$out" | grep -qx '> The dog' || fail "a message continued with \\ is not one message"
printf '%s\n' "$out" | grep -q 'never read' && fail "a message after /exit was read"
first=$(printf '%s\n' "$out" | reply_to "Once upon a time" 1)
again=$(printf '%s\n' "$out" | reply_to "Once upon a time" 2)
[ -n "$first" ] || fail "no reply to the first message"
[ "$first" = "$again" ] || fail "after /reset the same message got another reply:
$first
---
$again"

# the host reading every logit picks the same tokens as the GPU
host=$(printf '%s' "$input" | "$V" "${run[@]}" --host-picks 2>"$err") ||
    fail "the host-picks conversation failed: $(tail -3 "$err")"
[ "$host" = "$out" ] || fail "--host-picks gives another transcript:
$host"

# 64 positions: the oldest exchanges are left out, the conversation goes on
many=$'one day\ntwo days\nthree days\nfour days\nfive days\n'
printf '%s' "$many" | "$V" run -m "$model" --chat-template zephyr --greedy -n 10 --ctx 64 \
    >/dev/null 2>"$err" || fail "the small-context conversation failed: $(tail -3 "$err")"
grep -q "old exchanges left out to fit the context of 64" "$err" ||
    fail "nothing was left out in 64 positions: $(cat "$err")"
grep -q "^chat     5 replies" "$err" || fail "five replies expected: $(grep ^chat "$err")"

# a message longer than the context: refused with the reason, the next one answered
long=$(printf 'word %.0s' $(seq 40))
printf '%s\nshort\n' "$long" | "$V" run -m "$model" --chat-template llama2 --greedy -n 4 \
    --ctx 32 >/dev/null 2>"$err" || fail "a refused message ended the conversation: $(tail -3 "$err")"
grep -q "tokens with the system message but the context holds 32" "$err" ||
    fail "the long message was not refused: $(cat "$err")"
grep -q "^chat     1 replies" "$err" || fail "the short message got no reply: $(grep ^chat "$err")"

# a model without a chat template needs --chat-template
if "$V" run -m "$model" --chat </dev/null >/dev/null 2>"$err"; then
    fail "--chat without a template succeeded"
fi
grep -q "the file has no chat template; pass --chat-template NAME" "$err" ||
    fail "no explanation: $(cat "$err")"
if "$V" run -m "$model" --chat-template jinja </dev/null >/dev/null 2>"$err"; then
    fail "an unknown --chat-template was taken"
fi
grep -q "not a format vkllm knows (chatml," "$err" || fail "no list of formats: $(cat "$err")"

rm -f "$err"
[ "$fails" = 0 ] || exit 1
echo "cli_chat: ok"
