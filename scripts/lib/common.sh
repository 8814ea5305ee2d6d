# SPDX-License-Identifier: Apache-2.0
# Shared by scripts/demo and scripts/test: install what is missing (as root) or say exactly what to run.

# ensure_packages CMD:PACKAGE ...  — each CMD (or a file path) that is missing is provided by PACKAGE.
ensure_packages() {
    local missing=()
    local pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        if [[ $cmd == /* ]]; then
            [[ -e $cmd ]] || missing+=("$pkg")
        else
            command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    # Unique, in order.
    local unique=() seen=" " p
    for p in "${missing[@]}"; do [[ $seen == *" $p "* ]] || { unique+=("$p"); seen+="$p "; }; done
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing ${unique[*]}" >&2
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${unique[@]}" >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${unique[@]}" >/dev/null
        fi
    else
        echo "error: missing system packages. Run:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${unique[*]}" >&2
        exit 1
    fi
}

# The system packages the project needs to build and to run its tests and demo.
ensure_project_packages() {
    ensure_packages \
        mosquitto:mosquitto \
        mosquitto_rr:mosquitto-clients \
        mosquitto_sub:mosquitto-clients \
        /usr/include/mosquitto.h:libmosquitto-dev \
        /usr/include/sqlite3.h:libsqlite3-dev \
        pkg-config:pkg-config \
        curl:curl \
        openssl:openssl \
        python3:python3
}

# A free TCP port on the loopback interface.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_port PORT SECONDS — until something accepts connections on 127.0.0.1:PORT.
wait_for_port() {
    local port=$1 deadline=$((SECONDS + $2))
    until python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

mosquitto_binary() {
    command -v mosquitto 2>/dev/null || echo /usr/sbin/mosquitto
}
