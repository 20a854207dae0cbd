#!/usr/bin/env bash
# Installs the Debian packages vkllm builds and tests with, only those missing.
# lavapipe (mesa-vulkan-drivers) comes from bookworm-backports (Mesa 25: Vulkan 1.4,
# VK_EXT_memory_budget, a heap the size of system memory); the suite is added with
# the mirror the machine's own Debian sources already name. When that suite cannot be
# reached, the stock Mesa driver is kept and the set-up says so.
set -euo pipefail

packages=(
    cmake ninja-build gcc pkg-config
    libvulkan-dev libvulkan-volk-dev vulkan-tools
    glslc glslang-tools spirv-tools
    mesa-vulkan-drivers vulkan-validationlayers
    libglfw3-dev libstb-dev libcjson-dev libmicrohttpd-dev xvfb
    curl jq
    clang libclang-rt-14-dev
)
suite_file=/etc/apt/sources.list.d/vkllm-bookworm-backports.sources

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup: $*" >&2; }

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

mesa_version() {
    dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true
}

# The URI of the main Debian archive the machine already uses, from either source format.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" {
                 i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                 if ($(i+1) == "bookworm") { print $i; exit }
             }' "$f"
    done | head -n 1
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
                 uri = ""; ok = 0
                 for (i = 1; i <= NF; i++) {
                     if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uri = u[1] }
                     if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
                 }
                 if (ok && uri != "") { print uri; exit }
             }' "$f"
    done | head -n 1
}

have_backports_source() {
    grep -rqsE '(^|[[:space:]])bookworm-backports([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

updated=0
apt_update() {
    if [ "$updated" = 0 ]; then
        "${sudo_cmd[@]}" apt-get update -qq
        updated=1
    fi
}

if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt_update || say "apt-get update reported errors; trying the install anyway"
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

case "$(mesa_version)" in
2[5-9].* | [3-9][0-9].*) ;;
*)
    if [ -r /etc/os-release ] && grep -q '^VERSION_CODENAME=bookworm' /etc/os-release; then
        if ! have_backports_source; then
            mirror=$(debian_mirror)
            if [ -n "$mirror" ]; then
                say "adding bookworm-backports from $mirror for Mesa 25's lavapipe"
                printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                    "$mirror" | "${sudo_cmd[@]}" tee "$suite_file" >/dev/null
                updated=0
            else
                say "no Debian bookworm source found in the apt configuration"
            fi
        fi
        if have_backports_source && apt_update &&
            "${sudo_cmd[@]}" apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null; then
            say "lavapipe from bookworm-backports: mesa $(mesa_version)"
        else
            say "bookworm-backports could not be reached; keeping the stock driver (mesa $(mesa_version)):" \
                "Vulkan 1.3, a 2 GiB heap, no memory budget, slower"
        fi
    fi
    ;;
esac
