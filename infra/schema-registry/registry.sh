#!/usr/bin/env bash
# A real schema registry (Apicurio Registry, Confluent-compatible API) on 127.0.0.1, without Docker.
#
#   infra/schema-registry/registry.sh fetch                       the app once from Maven Central (cached)
#   infra/schema-registry/registry.sh start [--dir D] [--port P] [--management-port M]
#   infra/schema-registry/registry.sh stop  [--dir D]             SIGTERM by PID, SIGKILL after 30 s
#   infra/schema-registry/registry.sh status [--dir D]
#
# The ready-to-run Quarkus app (io.apicurio:apicurio-registry-app:<version>:tar.gz:all) is unpacked
# into $PARCELFLOW_CACHE/schema-registry/<version> (default: .cache/ in the repo, gitignored) and
# reused when present. It needs Java 21+: $PARCELFLOW_REGISTRY_JAVA, else $JAVA_HOME, else `java` on
# PATH, else the newest JDK under /usr/lib/jvm, whichever is first to be 21 or newer.
# Storage is in memory (schemas live as long as the process), compatibility BACKWARD for every
# subject, as Confluent's registry defaults to. `start` is idempotent: a registry already running
# from the same dir is reused. It prints the Confluent-compatible URL (…/apis/ccompat/v7) on success.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PARCELFLOW_CACHE:-$repo/.cache}
version=3.3.3
app_dir="$cache/schema-registry/$version"
artifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all"
maven_repo=${MAVEN_REPO:-$HOME/.m2/repository}
min_java=21

data_dir="$cache/schema-registry-data"
port=18081
management_port=18091

die() { echo "registry.sh: $*" >&2; exit 1; }

parse_flags() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) data_dir=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --management-port) management_port=$2; shift 2 ;;
      *) die "unknown option: $1" ;;
    esac
  done
}

fetch() {
  if [ -f "$app_dir/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Apicurio Registry $version"
  echo "registry.sh: fetching Apicurio Registry $version from Maven Central into $app_dir" >&2
  mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get -Dtransitive=false -Dartifact="$artifact" >&2 \
    || die "mvn could not fetch $artifact (see the output above)"
  local archive="$maven_repo/io/apicurio/apicurio-registry-app/$version/apicurio-registry-app-$version-all.tar.gz"
  [ -f "$archive" ] || die "fetched, but $archive is missing (set MAVEN_REPO to Maven's local repository)"
  rm -rf "$app_dir"
  mkdir -p "$app_dir"
  tar -xzf "$archive" -C "$app_dir" || die "could not unpack $archive"
  [ -f "$app_dir/quarkus-run.jar" ] || die "$archive holds no quarkus-run.jar"
  touch "$app_dir/.complete"
}

java_major() {  # "25.0.1" -> 25, "1.8.0_412" -> 8; empty when the binary does not run
  local line
  line=$("$1" -version 2>&1 | head -n 1) || return 0
  line=${line#*\"}
  line=${line%%\"*}
  case "$line" in 1.*) line=${line#1.} ;; esac
  echo "${line%%[.+-]*}"
}

find_java() {
  local candidate major
  for candidate in "${PARCELFLOW_REGISTRY_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    major=$(java_major "$candidate")
    if [ -n "$major" ] && [ "$major" -ge "$min_java" ]; then echo "$candidate"; return 0; fi
  done
  local best="" best_major=0
  for candidate in /usr/lib/jvm/*/bin/java; do
    [ -x "$candidate" ] || continue
    major=$(java_major "$candidate")
    if [ -n "$major" ] && [ "$major" -ge "$min_java" ] && [ "$major" -gt "$best_major" ]; then
      best=$candidate best_major=$major
    fi
  done
  [ -n "$best" ] && { echo "$best"; return 0; }
  die "Apicurio Registry $version needs Java $min_java+, and none was found (PARCELFLOW_REGISTRY_JAVA, JAVA_HOME, java on PATH, /usr/lib/jvm/*): install a JDK $min_java+ or set PARCELFLOW_REGISTRY_JAVA"
}

pid_alive() { [ -f "$data_dir/registry.pid" ] && kill -0 "$(cat "$data_dir/registry.pid")" 2>/dev/null; }

wait_ready() {  # bounded poll of the Confluent-compatible API, giving up at once if the process died
  local url=$1 pid=$2 seconds=$3
  python3 - "$url" "$pid" "$seconds" <<'PY'
import os, sys, time, urllib.request
url, pid, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.25)
sys.exit(1)
PY
}

start() {
  fetch
  if pid_alive; then
    echo "registry.sh: reusing the registry (pid $(cat "$data_dir/registry.pid")) from $data_dir" >&2
    cat "$data_dir/url"
    return 0
  fi
  local java
  java=$(find_java)
  mkdir -p "$data_dir"
  local url="http://127.0.0.1:$port/apis/ccompat/v7"
  # Both listeners on loopback (Quarkus binds 0.0.0.0:8080 and :9000 by default); serial GC and C1
  # only start it in seconds on a small machine; the access log would log every schema lookup.
  (cd "$data_dir" || exit 1
    nohup "$java" -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$management_port" \
    -Dquarkus.http.access-log.enabled=false \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -jar "$app_dir/quarkus-run.jar" > "$data_dir/registry.log" 2>&1 < /dev/null &
    echo $! > "$data_dir/registry.pid")
  echo "$url" > "$data_dir/url"
  if ! wait_ready "$url" "$(cat "$data_dir/registry.pid")" 120; then
    tail -n 30 "$data_dir/registry.log" >&2 || true
    stop
    die "the registry did not become ready (log: $data_dir/registry.log)"
  fi
  echo "registry.sh: registry ready at $url (pid $(cat "$data_dir/registry.pid"), $java)" >&2
  echo "$url"
}

stop() {
  if ! pid_alive; then
    rm -f "$data_dir/registry.pid"
    return 0
  fi
  local pid
  pid=$(cat "$data_dir/registry.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "registry.sh: registry $pid did not stop in 30 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$data_dir/registry.pid"
}

status() {
  if pid_alive; then
    echo "running: pid $(cat "$data_dir/registry.pid"), $(cat "$data_dir/url")"
  else
    echo "stopped"
    return 1
  fi
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: registry.sh fetch|start|stop|status [--dir D] [--port P] [--management-port M]"
shift
parse_flags "$@"
case "$cmd" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command: $cmd" ;;
esac
