#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `scripts/bench --simulator`: how many authenticated CancelOTATaskByDevice calls per second the platform
# simulator answers (release build). wrk sends pre-signed, distinct requests (each its own SignatureNonce, one
# of 1,000 generated devices) over keep-alive connections; the simulator verifies every signature, timestamp and
# nonce and applies every cancel. The run fails if any call was refused or the rate is below --min-rate.
#
# Usage: scripts/bench --simulator [--duration SECONDS] [--connections N] [--method GET|POST] [--min-rate N]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh
ensure_project_packages
ensure_packages wrk:wrk

duration=15 connections=32 method=GET min_rate=10000
while (($#)); do
    case $1 in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --method) method=$2; shift 2 ;;
        --min-rate) min_rate=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d /tmp/ota-sim-bench.XXXXXX)
sim_pid=
cleanup() {
    [[ -n $sim_pid ]] && { kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "==> building ota-platform-sim (release)"
scratch=(${SCRATCH_PATH:+--scratch-path "$SCRATCH_PATH"})
if ! swift build "${scratch[@]}" -c release --product ota-platform-sim >"$work/build.log" 2>&1; then
    grep -v "unhandled; explicitly declare\\|CMakeLists.txt" "$work/build.log" >&2
    exit 1
fi
bin=$(swift build "${scratch[@]}" -c release --show-bin-path)

# Enough distinct requests that no nonce repeats even at twice the expected rate.
count=$((duration * 25000))
echo "==> signing $count distinct requests ($method)"
python3 scripts/lib/presign.py "$work/paths.txt" "$count" --method "$method"

"$bin/ota-platform-sim" --port 0 --generate-devices 1000 --qps 0 --log-level warning >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.]*:[0-9]*' "$work/sim.out" | head -n 1)
[[ -n $url ]] || { echo "the simulator did not start" >&2; cat "$work/sim.log" >&2; exit 1; }

echo "==> wrk: 2 threads, $connections connections, ${duration}s against $url (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
PATHS_FILE="$work/paths.txt" THREADS=2 METHOD="$method" \
    wrk -t2 -c"$connections" -d"${duration}s" --latency -s scripts/lib/wrk-presigned.lua "$url" | tee "$work/wrk.out"
curl -fsS "$url/_sim/stats" >"$work/stats.json"
python3 - "$work/wrk.out" "$work/stats.json" "$min_rate" <<'PY'
import json, re, sys
wrk = open(sys.argv[1]).read()
stats = json.load(open(sys.argv[2]))
minimum = float(sys.argv[3])
match = re.search(r"(\d+) requests in ([\d.]+)(m?s)", wrk)
requests, seconds = int(match.group(1)), float(match.group(2)) / (1000 if match.group(3) == "ms" else 1)
refused = stats["errorAnswers"] + stats["authFailures"]
rate = requests / seconds
print("simulator: %.0f authenticated calls/s (%d calls in %.1f s, every one verified and applied: "
      "cancelCalls %d, refused %d)" % (rate, requests, seconds, stats["cancelCalls"], refused))
if refused or "Non-2xx" in wrk:
    sys.exit("some calls were refused: the figure does not count")
if rate < minimum:
    sys.exit("below the required %.0f calls/s" % minimum)
PY
