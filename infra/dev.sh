#!/usr/bin/env bash
# parcelflow's developer entry point. The two commands a newcomer needs:
#
#   infra/dev.sh run    set up, start a local Kafka broker, a worker and the network simulator; Ctrl-C stops all
#   infra/dev.sh test   set up, then lint, type-check and run every test (unit + real broker)
#
# Also: `setup` (venv, Kafka jars and the schema registry app only), `lock` (rewrite constraints.txt from the venv).
# Needs python3.11, Java 17+ (21+ for the schema registry tests) and Maven on PATH; everything else is
# installed by this script.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv="$repo/.venv"
python=${PYTHON:-$(command -v python3.11 || command -v python3)}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

setup() {
  local stamp
  stamp=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
  if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv in .venv"
    "$python" -m venv "$venv"
  fi
  if [ "$(cat "$venv/.parcelflow-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "installing parcelflow and its pinned dependencies"
    "$venv/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
    echo "$stamp" > "$venv/.parcelflow-stamp"
  fi
  infra/kafka/kafka.sh fetch
  infra/schema-registry/registry.sh fetch
}

# The observability tests run the real Prometheus server and promtool, and validate
# docker-compose.yml with docker-compose: Debian packages, installed once when missing.
system_tools() {
  local missing=()
  { command -v prometheus && command -v promtool; } >/dev/null || missing+=(prometheus)
  command -v docker-compose >/dev/null || missing+=(docker-compose)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "dev.sh: ${missing[*]} missing and no root: run 'sudo apt-get install ${missing[*]}' first" >&2
      exit 1
    fi
  fi
  command -v apt-get >/dev/null \
    || { echo "dev.sh: ${missing[*]} missing: install them (Debian packages of the same names)" >&2; exit 1; }
  say "installing ${missing[*]} (Debian packages)"
  # Keep apt from starting the packaged Prometheus service: the tests start their own, by PID.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    made_policy=1
  fi
  local status=0
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
    && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      > /dev/null || status=$?
  [ -n "$made_policy" ] && "${sudo[@]}" rm -f "$policy"
  [ "$status" -eq 0 ] || { echo "dev.sh: apt-get could not install ${missing[*]}" >&2; exit 1; }
}

run_tests() {
  setup
  system_tools
  say "ruff"
  "$venv/bin/ruff" check .
  say "mypy"
  "$venv/bin/mypy" streams tests bench
  say "pytest (unit, then the real broker)"
  "$venv/bin/pytest" "$@"
}

run_demo() {
  setup
  local data="$repo/.cache/demo" port=${PARCELFLOW_DEMO_PORT:-19092}
  local metrics_port=${PARCELFLOW_METRICS_PORT:-9108} worker_pid="" sim_pid=""
  mkdir -p "$data"
  cleanup() {
    trap - EXIT INT TERM
    if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
      kill -TERM "$sim_pid" 2>/dev/null || true
      wait "$sim_pid" 2>/dev/null || true
    fi
    if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
      say "stopping the worker (pid $worker_pid)"
      kill -TERM "$worker_pid" 2>/dev/null || true
      wait "$worker_pid" 2>/dev/null || true
    fi
    say "stopping the broker"
    infra/kafka/kafka.sh stop --dir "$data/kafka"
    exit 0
  }
  trap cleanup EXIT INT TERM
  say "starting Kafka on 127.0.0.1:$port"
  local bootstrap
  bootstrap=$(infra/kafka/kafka.sh start --dir "$data/kafka" --port "$port" --controller-port $((port + 1)))
  export PARCELFLOW_BOOTSTRAP=$bootstrap PARCELFLOW_METRICS_PORT=$metrics_port PARCELFLOW_DATA_DIR=$data/worker
  "$venv/bin/parcelflow" topics
  say "starting a worker; metrics at http://127.0.0.1:$metrics_port/metrics"
  "$venv/bin/parcelflow" worker > "$data/worker.log" 2>&1 &
  worker_pid=$!
  # The simulated network replays the last day at 60x (a simulated day in 24 minutes): event
  # times stay in the past, which Kafka requires (it refuses records stamped over an hour ahead).
  local start=now-24h
  say "simulating the last 24 h of the hub network at 60x; metrics at http://127.0.0.1:$metrics_port/metrics"
  say "(worker log: $data/worker.log). Ctrl-C stops everything."
  "$venv/bin/parcelflow" simulate --to kafka --start "$start" --duration 24h --speed 60 \
    --disorder 0.01 --late 0.001 --corrupt 0.0005 --truth "$data/truth.json" &
  sim_pid=$!
  wait "$sim_pid" || true  # (background + wait: a signal to this script is handled at once)
  sim_pid=""
  say "simulated day done; the worker keeps serving metrics. Ctrl-C stops."
  wait "$worker_pid"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  test) run_tests "$@" ;;
  run) run_demo "$@" ;;
  lock)
    setup
    { sed -n '1,2p' constraints.txt; "$venv/bin/pip" freeze --exclude-editable | grep -vi '^parcelflow'; } > constraints.txt.new
    mv constraints.txt.new constraints.txt ;;
  *) echo "usage: infra/dev.sh run|test [pytest args]|setup|lock" >&2; exit 2 ;;
esac
