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
