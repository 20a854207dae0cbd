#!/usr/bin/env bash
# cli_serve.sh VKLLM SHARED_DIR
# `vkllm serve` through HTTP, as clients use it (curl, jq): greedy completions equal to
# llama.cpp's golden text, streamed pieces that join to the whole answer, the prompt
# cache reusing what the session holds, stop strings, chat completions in the chat
# format, seeds that repeat, requests at once answered in turn, a client that leaves
# mid-stream, refusals with OpenAI's error object, an API key, a reply's reasoning apart
# from its content (deepseek-r1), and a clean stop on SIGTERM with the validation layer
# silent.
set -u
V=$1 S=$2
model=$S/models/TinyStories-656K-Q8_0.gguf
golden=$S/models/golden/TinyStories-656K-Q8_0.llamacpp-greedy.json
if [ ! -e "$model" ] || [ ! -e "$golden" ]; then
    echo "cli_serve: skipped: $model or its golden file not found (../shared beside the checkout)"
    exit 77
fi
for tool in curl jq; do
    if ! command -v $tool >/dev/null; then
        echo "cli_serve: FAIL: $tool is not installed (scripts/setup-debian.sh installs it)"
        exit 1
    fi
done
fails=0
fail() {
    echo "cli_serve: FAIL: $*"
    fails=$((fails + 1))
}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

# start NAME FLAGS...: a server on a free port; sets $url
start() {
    local name=$1
    shift
    "$V" serve -m "$model" --port 0 --validation "$@" 2>"$work/$name.err" &
    pids+=($!)
    pid=$!
    for _ in $(seq 600); do
        url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/$name.err" | head -1)
        [ -n "$url" ] && return 0
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    echo "cli_serve: FAIL: the server did not start: $(tail -3 "$work/$name.err")"
    exit 1
}
post() { # PATH JSON: the answer's body
    curl -sS -m 120 "$url$1" -H 'Content-Type: application/json' -d "$2"
}
# the text of a stream of server-sent events on stdin: its pieces joined
joined() { # [FIELD]: the deltas' reasoning_content instead
    sed -n 's/^data: //p' | grep -v '^\[DONE\]$' |
        jq -j ".choices[0] | (.text // .delta.${1:-content} // \"\")"
}

start main --chat-template chatml
main_pid=$pid
[ "$(curl -sS "$url/health" | jq -r .status)" = ok ] || fail "/health"
models=$(curl -sS "$url/v1/models")
[ "$(jq -r '.data[0].meta.n_ctx' <<<"$models")" -gt 0 ] || fail "/v1/models: $models"

# greedy: llama.cpp's text
want=$(jq -r '.[0].expected' "$golden")
a=$(post /v1/completions '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}')
text=$(jq -r '.choices[0].text' <<<"$a")
echo "completion: $text"
[ -n "$text" ] && [ "${want#"$text"}" != "$want" ] || fail "greedy text is not llama.cpp's: $a"
[ "$(jq -r '.choices[0].finish_reason' <<<"$a")" = length ] || fail "finish_reason: $a"
[ "$(jq '.usage.completion_tokens' <<<"$a")" = 32 ] || fail "usage: $a"

# the same prompt again: all but its last token from the cache, the same text
b=$(post /v1/completions '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}')
n=$(jq '.usage.prompt_tokens' <<<"$b")
[ "$(jq '.usage.prompt_tokens_details.cached_tokens' <<<"$b")" = $((n - 1)) ] ||
    fail "the prompt cache was not used: $(jq -c .usage <<<"$b")"
[ "$(jq -r '.choices[0].text' <<<"$b")" = "$text" ] || fail "the cached prompt gave other text"

# streamed: pieces that join to the same text, a finish, [DONE]
curl -sSN -m 120 "$url/v1/completions" -d '{"prompt": "Once upon a time", "max_tokens": 32,
    "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}' >"$work/s1"
[ "$(joined <"$work/s1")" = "$text" ] || fail "the stream's pieces join to other text: $(joined <"$work/s1")"
tail -n 2 "$work/s1" | grep -qx 'data: \[DONE\]' || fail "the stream does not end with [DONE]"
grep -q '"finish_reason":"length"' "$work/s1" || fail "the stream has no finish_reason"
grep -q '"usage":{"prompt_tokens"' "$work/s1" || fail "include_usage gave no usage chunk"

# a stop string: the text ends before it
c=$(post /v1/completions '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0,
    "stop": ["Lily", "never"]}')
[ "$(jq -r '.choices[0].text' <<<"$c")" = "${text%%Lily*}" ] &&
    [ "$(jq -r '.choices[0].finish_reason' <<<"$c")" = stop ] || fail "stop string: $c"
curl -sSN -m 120 "$url/v1/completions" -d '{"prompt": "Once upon a time", "max_tokens": 32,
    "temperature": 0, "stop": "Lily", "stream": true}' >"$work/s2"
[ "$(joined <"$work/s2")" = "${text%%Lily*}" ] || fail "streamed stop string: $(joined <"$work/s2")"

# chat: the format's tokens, a reply streamed alike
msgs='"messages": [{"role": "system", "content": "Tell a story."},
                  {"role": "user", "content": "Once upon a time"}]'
d=$(post /v1/chat/completions "{$msgs, \"max_tokens\": 16, \"temperature\": 0}")
reply=$(jq -r '.choices[0].message.content' <<<"$d")
echo "chat reply: $reply"
[ "$(jq -r '.choices[0].message.role' <<<"$d")" = assistant ] && [ -n "$reply" ] || fail "chat: $d"
ids=$(post /tokenize '{"content": "<|im_start|>system\nTell a story.<|im_end|>\n<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n", "add_special": true}')
[ "$(jq '.tokens | length' <<<"$ids")" = "$(jq .usage.prompt_tokens <<<"$d")" ] ||
    fail "the chat prompt is not the chatml text: $(jq -c .usage <<<"$d") vs $ids"
# thinking off: this model's template has no switch (the server's chatml), so nothing changes
d2=$(post /v1/chat/completions "{$msgs, \"max_tokens\": 1, \"chat_template_kwargs\": {\"enable_thinking\": false}}")
[ "$(jq .usage.prompt_tokens <<<"$d2")" = "$(jq .usage.prompt_tokens <<<"$d")" ] ||
    fail "enable_thinking false changed a template without the switch: $d2"
curl -sSN -m 120 "$url/v1/chat/completions" -d "{$msgs, \"max_tokens\": 16, \"temperature\": 0,
    \"stream\": true}" >"$work/s3"
[ "$(joined <"$work/s3")" = "$reply" ] || fail "the streamed reply differs: $(joined <"$work/s3")"
grep -q '"delta":{"role":"assistant"' "$work/s3" || fail "the stream does not open with the role"
# reasoning_format deepseek: a reply that opens no <think> block stays content
d3=$(post /v1/chat/completions "{$msgs, \"max_tokens\": 16, \"temperature\": 0, \"reasoning_format\": \"deepseek\"}")
[ "$(jq -r '.choices[0].message.content' <<<"$d3")" = "$reply" ] &&
    [ "$(jq '.choices[0].message | has("reasoning_content")' <<<"$d3")" = false ] ||
    fail "reasoning_format deepseek changed a reply without a block: $d3"

# a seed repeats its sample; /detokenize is /tokenize's inverse
s='{"prompt": "Once upon a time", "max_tokens": 24, "temperature": 1, "seed": 7}'
[ "$(post /v1/completions "$s" | jq -r '.choices[0].text')" = "$(post /v1/completions "$s" | jq -r '.choices[0].text')" ] ||
    fail "one seed gave two texts"
back=$(post /detokenize "$(post /tokenize '{"content": "The dog ran."}' | jq -c '{tokens: .tokens}')")
[ "$(jq -r .content <<<"$back")" = " The dog ran." ] || [ "$(jq -r .content <<<"$back")" = "The dog ran." ] ||
    fail "detokenize: $back"

# three at once: answered in turn, each the greedy text
at_once=()
for i in 1 2 3; do
    post /v1/completions '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}' >"$work/p$i" &
    at_once+=($!)
done
wait "${at_once[@]}"
for i in 1 2 3; do
    [ "$(jq -r '.choices[0].text' "$work/p$i")" = "$text" ] || fail "request $i of 3 at once: $(cat "$work/p$i")"
done

# a client that leaves mid-stream: its generation stops, the next request is answered
curl -sSN -m 1 "$url/v1/completions" -d '{"prompt": "Once", "max_tokens": -1, "ignore_eos": true,
    "stream": true}' >/dev/null 2>&1
e=$(post /v1/completions '{"prompt": "Once upon a time", "max_tokens": 32, "temperature": 0}')
[ "$(jq -r '.choices[0].text' <<<"$e")" = "$text" ] || fail "after a client left: $e"
curl -sS "$url/metrics" | grep -q '^vkllm_requests_total{outcome="cancelled"} 1$' ||
    fail "metrics do not count the cancelled request: $(curl -sS "$url/metrics" | grep requests_total)"

# refusals: OpenAI's error object with a message naming the problem
refused() { # STATUS MESSAGE-PART PATH BODY
    local got
    got=$(curl -sS -m 60 -o "$work/r" -w '%{http_code}' "$url$3" -d "$4")
    [ "$got" = "$1" ] && jq -r .error.message "$work/r" | grep -qF -- "$2" ||
        fail "$3 $4: want $1 \"$2\", got $got $(cat "$work/r")"
}
refused 400 '"n" other than 1' /v1/completions '{"prompt": "x", "n": 2}'
refused 400 'not JSON' /v1/completions '{"prompt": '
refused 400 'context holds' /v1/completions "{\"prompt\": \"$(printf 'word %.0s' $(seq 3000))\"}"
refused 400 'not an id of the vocabulary' /v1/completions '{"prompt": [1, 2, 999999]}'
refused 400 '"temperature" must be a number' /v1/completions '{"prompt": "x", "temperature": "hot"}'
refused 400 'only text parts' /v1/chat/completions '{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}'
refused 404 'no such endpoint' /v1/embeddings '{"input": "x"}'
refused 400 '"reasoning_format" must be' /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "reasoning_format": "o1"}'
refused 400 '"enable_thinking" true or false' /v1/chat/completions '{"messages": [{"role": "user", "content": "x"}], "chat_template_kwargs": {"enable_thinking": "no"}}'

# stopping: SIGTERM ends the server cleanly, without validation messages
kill -TERM $main_pid
wait $main_pid
rc=$?
[ $rc = 0 ] || fail "the server exited with $rc: $(tail -5 "$work/main.err")"
grep -q '^vkllm serve: terminated: stopping' "$work/main.err" || fail "no stop message"
grep -iq 'validation' "$work/main.err" && fail "validation messages: $(grep -i -m3 validation "$work/main.err")"
grep '^serve: ' "$work/main.err" | head -4

# an API key: /health without it, everything else with it (and deepseek-r1's format below)
start key --api-key sesame --quiet --greedy --chat-template deepseek-r1
refused 401 'API key' /v1/models ''
[ "$(curl -sS "$url/health" | jq -r .status)" = ok ] || fail "/health needs no key"
k=$(curl -sS "$url/v1/completions" -H 'Authorization: Bearer sesame' -d '{"prompt": "Once upon a time", "max_tokens": 32}')
[ "$(jq -r '.choices[0].text' <<<"$k")" = "$text" ] || fail "with the key (and --greedy as the default): $k"

# deepseek-r1: the prompt opens the reply's <think> block, which this model never closes:
# all of the reply is reasoning_content (white space around it left out), streamed as such;
# reasoning_format none leaves it in content
kpost() { curl -sS -m 120 "$url$1" -H 'Authorization: Bearer sesame' -d "$2"; }
r1msgs='"messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 24'
r=$(kpost /v1/chat/completions "{$r1msgs}")
thought=$(jq -r '.choices[0].message.reasoning_content' <<<"$r")
echo "deepseek-r1 reasoning: $thought"
[ -n "$thought" ] && [ "$thought" != null ] && [ "$(jq -r '.choices[0].message.content' <<<"$r")" = "" ] ||
    fail "deepseek-r1: the reply is not all reasoning: $r"
ids=$(kpost /tokenize "{\"content\": \"<｜User｜>Once upon a time<｜Assistant｜><think>\\n\", \"add_special\": true}")
[ "$(jq '.tokens | length' <<<"$ids")" = "$(jq .usage.prompt_tokens <<<"$r")" ] ||
    fail "the deepseek-r1 prompt is not R1's text: $(jq -c .usage <<<"$r") vs $ids"
curl -sSN -m 120 "$url/v1/chat/completions" -H 'Authorization: Bearer sesame' \
    -d "{$r1msgs, \"stream\": true}" >"$work/s4"
[ "$(joined reasoning_content <"$work/s4")" = "$thought" ] && [ "$(joined <"$work/s4")" = "" ] ||
    fail "the streamed reasoning differs: $(joined reasoning_content <"$work/s4")"
raw=$(kpost /v1/chat/completions "{$r1msgs, \"reasoning_format\": \"none\"}")
[ "$(jq -r '.choices[0].message.content | sub("^\\s+"; "") | sub("\\s+$"; "")' <<<"$raw")" = "$thought" ] &&
    [ "$(jq '.choices[0].message | has("reasoning_content")' <<<"$raw")" = false ] ||
    fail "reasoning_format none: $raw"
kill -TERM $pid
wait $pid || fail "the second server exited with $?"

if [ $fails -gt 0 ]; then
    echo "cli_serve: $fails failures"
    exit 1
fi
echo "cli_serve: all checks passed"
