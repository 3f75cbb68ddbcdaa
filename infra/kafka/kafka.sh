#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1, without Docker.
#
#   infra/kafka/kafka.sh fetch                       resolve the broker jars once (Maven, cached)
#   infra/kafka/kafka.sh start [--dir D] [--port P] [--controller-port C] [--config KEY=VALUE ...]
#   infra/kafka/kafka.sh stop  [--dir D]             SIGTERM by PID, SIGKILL after 30 s
#   infra/kafka/kafka.sh status [--dir D]
#
# The jars are copied into $PARCELFLOW_CACHE/kafka/<version>/libs (default: .cache/ in the repo,
# gitignored) and reused when present. `start` is idempotent: a broker already running from the
# same data dir is reused. It prints the bootstrap address on success.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PARCELFLOW_CACHE:-$repo/.cache}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
libs="$cache/kafka/$version/libs"

data_dir="$cache/kafka-data"
port=19092
controller_port=19093
extra_config=()  # --config KEY=VALUE: broker properties added to (and overriding) the defaults below

die() { echo "kafka.sh: $*" >&2; exit 1; }

parse_flags() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) data_dir=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --controller-port) controller_port=$2; shift 2 ;;
      --config)
        case "$2" in *=*) ;; *) die "--config takes KEY=VALUE, got: $2" ;; esac
        extra_config+=("$2"); shift 2 ;;
      *) die "unknown option: $1" ;;
    esac
  done
}

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka"
  echo "kafka.sh: resolving Apache Kafka $version jars from Maven Central into $libs" >&2
  rm -rf "$libs"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >&2 \
    || die "mvn could not resolve the Kafka jars (see the output above)"
  touch "$libs/.complete"
}

pid_alive() { [ -f "$data_dir/broker.pid" ] && kill -0 "$(cat "$data_dir/broker.pid")" 2>/dev/null; }

write_config() {
  mkdir -p "$data_dir/log"
  cat > "$data_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir/log
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  if [ ${#extra_config[@]} -gt 0 ]; then
    printf '%s\n' "${extra_config[@]}" >> "$data_dir/server.properties"
  fi
}

start() {
  fetch
  if pid_alive; then
    echo "kafka.sh: reusing broker (pid $(cat "$data_dir/broker.pid")) from $data_dir" >&2
    cat "$data_dir/bootstrap"
    return 0
  fi
  write_config
  local cp="$libs/*"
  if [ ! -f "$data_dir/log/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    java -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$cp" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$data_dir/server.properties" > "$data_dir/format.log" 2>&1 \
      || { cat "$data_dir/format.log" >&2; die "formatting the storage dir failed"; }
  fi
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$data_dir" \
    -cp "$cp" kafka.Kafka "$data_dir/server.properties" > "$data_dir/broker.log" 2>&1 < /dev/null &
  echo $! > "$data_dir/broker.pid"
  echo "127.0.0.1:$port" > "$data_dir/bootstrap"
  if ! python3 "$here/wait_ready.py" "127.0.0.1:$port" 90; then
    tail -n 30 "$data_dir/broker.log" >&2 || true
    stop
    die "the broker did not become ready (log: $data_dir/broker.log)"
  fi
  echo "kafka.sh: broker ready at 127.0.0.1:$port (pid $(cat "$data_dir/broker.pid"), data $data_dir)" >&2
  echo "127.0.0.1:$port"
}

stop() {
  if ! pid_alive; then
    rm -f "$data_dir/broker.pid"
    return 0
  fi
  local pid
  pid=$(cat "$data_dir/broker.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: broker $pid did not stop in 30 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$data_dir/broker.pid"
}

status() {
  if pid_alive; then
    echo "running: pid $(cat "$data_dir/broker.pid"), $(cat "$data_dir/bootstrap")"
  else
    echo "stopped"
    return 1
  fi
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: kafka.sh fetch|start|stop|status [--dir D] [--port P] [--controller-port C]"
shift
parse_flags "$@"
case "$cmd" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command: $cmd" ;;
esac
