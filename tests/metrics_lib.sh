# Sourced by the tests that read a running vkllm's metrics endpoint.

# metrics_port LOG: waits (up to 20 s) for "metrics: http://127.0.0.1:PORT/metrics" in a
# vkllm run's stderr LOG and prints PORT; nothing when it never came.
metrics_port() {
    local port
    for _ in $(seq 100); do
        port=$(sed -n 's|^metrics: http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$1")
        [ -n "$port" ] && break
        sleep 0.2
    done
    printf '%s' "$port"
}

# http_get PORT PATH: the whole HTTP/1.0 response (status line, headers, body), CRs removed.
http_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
    tr -d '\r' <&3
    exec 3<&-
}

# metrics_wait_decode PORT: waits (up to 120 s: a cold shader cache makes the first
# pipelines slow to compile on lavapipe) until the endpoint counts a decoded token.
metrics_wait_decode() {
    local n
    for _ in $(seq 600); do
        n=$(http_get "$1" /metrics 2>/dev/null |
            sed -n 's/^vkllm_tokens_total{phase="decode"} \([0-9]*\)$/\1/p')
        [ -n "$n" ] && [ "$n" -gt 0 ] && return 0
        sleep 0.2
    done
    return 1
}
