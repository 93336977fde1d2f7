#!/usr/bin/env bash
# Local real infrastructure for Trial Ledger: one Kafka 4.x node (KRaft,
# broker+controller in one JVM) and one PostgreSQL cluster, both bound to
# 127.0.0.1, with all data, logs and pid files under $TL_STATE_DIR.
# TL_KAFKA_NODES=3 runs a replicated cluster instead: three such nodes, each a
# broker and a voter of the controller quorum (node N on TL_KAFKA_PORT+2(N-1)
# and TL_KAFKA_CONTROLLER_PORT+2(N-1)), topics with replication factor 3 and
# min.insync.replicas 2 (docs/operations.md, "A replicated Kafka cluster").
#
#   infra.sh start  [kafka|postgres]   start (idempotent; recovers after kill -9)
#   infra.sh stop   [kafka|postgres]   clean stop (SIGTERM / pg_ctl -m fast)
#   infra.sh kafka-pid N               the pid of Kafka node N (fault tests kill it)
#   infra.sh status                    one line per component; exit 0 only if
#                                      both are running and ready, else 3
#   infra.sh env                       print the generated export lines
#   infra.sh kafka-tool CLASS [ARGS]   run a Kafka CLI class on the broker's
#                                      classpath, e.g. org.apache.kafka.tools.TopicCommand
#   infra.sh superuser-sql DATABASE    run SQL from stdin as the PostgreSQL superuser
#                                      (restore drills, tamper tests)
#   infra.sh kafka-libs                resolve Kafka's jars (once) and print their folder
#                                      (deploy/standins/build.sh copies them into an image)
#   infra.sh browser                   Debian's Chromium and the browser test's npm packages
#                                      (tests/browser: axe-core), each once, when missing
#
# Nothing here needs Docker: Kafka jars come from Maven Central (resolved once
# into $TL_CACHE_DIR), PostgreSQL from Debian packages.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd -P)

# Overrides may be relative (to the caller's directory); they are made
# absolute and symlink-free because the paths are compared against
# /proc/PID/cmdline and /proc/PID/cwd to recognise our own servers.
abs_path() { realpath -m -- "$1"; }

STATE_DIR=$(abs_path "${TL_STATE_DIR:-$REPO_ROOT/.local}")
CACHE_DIR=$(abs_path "${TL_CACHE_DIR:-$REPO_ROOT/.cache}")
KAFKA_PORT=${TL_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${TL_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_VERSION=${TL_KAFKA_VERSION:-4.3.1}
KAFKA_NODES=${TL_KAFKA_NODES:-1}
[[ $KAFKA_NODES =~ ^[1-9]$ ]] || { echo "[infra] ERROR: TL_KAFKA_NODES must be 1 to 9" >&2; exit 1; }
# what a cluster of this size can promise: 3 copies, 2 of them before an acknowledgement
KAFKA_REPLICATION=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
KAFKA_MIN_ISR=$((KAFKA_NODES < 2 ? 1 : 2))
PG_PORT=${TL_PG_PORT:-55432}
DATABASES=${TL_DATABASES:-enrollment infusion adverse_events assessments projections identity}

PG_APP_ROLE=trial_ledger
# A restart loads every partition it holds: a day of test runs makes thousands, and a busy
# machine loads them slowly. Waiting longer costs nothing when it is ready sooner.
KAFKA_READY_TIMEOUT=${TL_KAFKA_READY_TIMEOUT:-240}
KAFKA_STOP_TIMEOUT=30
PG_READY_TIMEOUT=60

# --- Kafka paths -------------------------------------------------------------
# One node's paths and ports, set by kafka_node N (node 1 keeps the single
# broker's folder, so a one-node state dir is what it always was).
kafka_node() {
  NODE=$1
  KAFKA_DIR=$STATE_DIR/kafka
  ((NODE == 1)) || KAFKA_DIR=$STATE_DIR/kafka-$NODE
  KAFKA_DATA=$KAFKA_DIR/data
  KAFKA_LOGS=$KAFKA_DIR/logs
  KAFKA_PID_FILE=$KAFKA_DIR/kafka.pid
  KAFKA_PROPS=$KAFKA_DIR/server.properties
  KAFKA_PROBE_PROPS=$KAFKA_DIR/probe.properties
  NODE_PORT=$((KAFKA_PORT + 2 * (NODE - 1)))
  NODE_CONTROLLER_PORT=$((KAFKA_CONTROLLER_PORT + 2 * (NODE - 1)))
}
kafka_node 1
KAFKA_CLUSTER_ID_FILE=$STATE_DIR/kafka/cluster.id  # one cluster id for every node
# Every node's broker address (bootstrap) or controller voter (voters), comma-separated.
# Only ever called as $(...): kafka_node there changes the subshell's globals, not ours.
kafka_node_list() {
  local n out=""
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    kafka_node "$n"
    if [[ $1 == voters ]]; then
      out+="${out:+,}$n@127.0.0.1:$NODE_CONTROLLER_PORT"
    else
      out+="${out:+,}127.0.0.1:$NODE_PORT"
    fi
  done
  printf '%s\n' "$out"
}
KAFKA_BOOTSTRAP=$(kafka_node_list bootstrap)
KAFKA_POM=$SCRIPT_DIR/kafka/pom.xml
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_LIBS_MARKER=$KAFKA_LIBS/.resolved

# --- PostgreSQL paths --------------------------------------------------------
PG_DIR=$STATE_DIR/postgres
PG_DATA=$PG_DIR/data
PG_INIT_MARKER=$PG_DIR/initdb.done
PG_LOGS=$PG_DIR/logs
PG_LOG_FILE=$PG_LOGS/postgresql.log
PG_PASSWORD_FILE=$PG_DIR/password

ENV_FILE=$STATE_DIR/env

# --- small helpers -------------------------------------------------------------
log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

# A pid is alive if /proc has it and it is not a zombie (a zombie still
# answers kill -0, but it is a dead server).
pid_alive() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
  # The state follows the parenthesised command name, which may hold spaces.
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}

# /proc/PID/cmdline is NUL-separated; turn it into one searchable line.
pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# Something (ours or not) accepts TCP connections on 127.0.0.1:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# A server killed a moment ago may still hold its listener while the kernel
# tears the process down, so give the port a few seconds to close.
require_free_port() {
  local what=$1 port=$2 i
  for ((i = 0; i < 20; i++)); do
    port_open "$port" || return 0
    sleep 0.25
  done
  if port_open "$port"; then
    die "$what port 127.0.0.1:$port is already in use by another process (override with the TL_*_PORT variables)"
  fi
}

# Install Debian packages, which needs root (true in CI and on dev machines here).
apt_install() {
  [[ $EUID -eq 0 ]] || die "missing $*; install it (apt-get install -y $*) or re-run as root"
  log "installing Debian packages: $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Serialize concurrent start/stop calls on the same state dir. Every process
# we launch gets `9>&-` so that a long-lived server never inherits the lock.
take_lock() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/.infra.lock"
  flock -w 300 9 || die "another infra.sh holds $STATE_DIR/.infra.lock"
}

print_log_tail() {
  local file=$1
  if [[ -f $file ]]; then
    log "last lines of $file:"
    tail -n 40 "$file" >&2
  fi
}

# ============================================================================
# Kafka
# ============================================================================

# Fill the Kafka classpath from Maven Central once. The marker records the
# version and the POM's checksum, so editing the POM triggers a re-resolve,
# and a resolve killed half-way (no marker) is simply redone.
kafka_ensure_libs() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  local want
  want="$KAFKA_VERSION $(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [[ -f $KAFKA_LIBS_MARKER && $(<"$KAFKA_LIBS_MARKER") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  log "resolving Kafka $KAFKA_VERSION jars into $KAFKA_LIBS (first run only)"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  # Debian's Maven 3.8 prints bare colour-reset codes even with -q -B; strip
  # them (pipefail keeps mvn's exit status).
  mvn -q -B -f "$KAFKA_POM" \
    -Dmaven.repo.local="$CACHE_DIR/m2" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" 2>&1 \
    | sed 's/\x1b\[[0-9;]*m//g; /^$/d' >&2 \
    || die "could not resolve Kafka $KAFKA_VERSION from Maven (see output above)"
  printf '%s\n' "$want" >"$KAFKA_LIBS_MARKER"
}

# Run a Kafka CLI class with quiet logging (warnings on stderr only).
kafka_java_tool() {
  java -Xmx256m -cp "$KAFKA_LIBS/*" \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.xml" \
    "$@" 9>&-
}

# Regenerated on every start so port overrides take effect. The quorum is
# static (controller.quorum.voters) rather than formatted with --standalone:
# a static voter set lives only in this file, so changing
# TL_KAFKA_CONTROLLER_PORT later does not strand an already formatted log.
kafka_write_config() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS" "$(dirname "$KAFKA_CLUSTER_ID_FILE")"
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/infra.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$(kafka_node_list voters)
listeners=PLAINTEXT://127.0.0.1:$NODE_PORT,CONTROLLER://127.0.0.1:$NODE_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$NODE_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA
offsets.topic.replication.factor=$KAFKA_REPLICATION
transaction.state.log.replication.factor=$KAFKA_REPLICATION
transaction.state.log.min.isr=$KAFKA_MIN_ISR
share.coordinator.state.topic.replication.factor=$KAFKA_REPLICATION
share.coordinator.state.topic.min.isr=$KAFKA_MIN_ISR
default.replication.factor=$KAFKA_REPLICATION
min.insync.replicas=$KAFKA_MIN_ISR
group.initial.rebalance.delay.ms=0
num.partitions=3
auto.create.topics.enable=false
EOF
  # The probe must fail fast while the broker is still coming up, instead of
  # the AdminClient's default one-minute retries.
  cat >"$KAFKA_PROBE_PROPS" <<EOF
request.timeout.ms=3000
default.api.timeout.ms=5000
socket.connection.setup.timeout.ms=1000
socket.connection.setup.timeout.max.ms=2000
EOF
}

# Format the log dir only once: a second format would wipe the cluster's
# metadata. The cluster id is kept beside it for reference.
kafka_format_once() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  local cluster_id
  if [[ -s $KAFKA_CLUSTER_ID_FILE ]]; then
    cluster_id=$(<"$KAFKA_CLUSTER_ID_FILE")
  else
    cluster_id=$(kafka_java_tool kafka.tools.StorageTool random-uuid | tail -n 1)
    [[ -n $cluster_id ]] || die "kafka StorageTool random-uuid returned nothing"
    printf '%s\n' "$cluster_id" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  log "formatting Kafka storage (cluster id $cluster_id)"
  kafka_java_tool kafka.tools.StorageTool format --ignore-formatted \
    -t "$cluster_id" -c "$KAFKA_PROPS" >"$KAFKA_LOGS/format.log" 2>&1 \
    || { print_log_tail "$KAFKA_LOGS/format.log"; die "kafka storage format failed"; }
}

# Pid of our broker, or failure. A pid file whose process is gone, or whose
# pid was recycled by something else, is stale: the command line must be a
# kafka.Kafka JVM started with this state dir's server.properties.
kafka_pid() {
  local pid cmd
  [[ -f $KAFKA_PID_FILE ]] || return 1
  pid=$(<"$KAFKA_PID_FILE")
  pid_alive "$pid" || return 1
  cmd=$(pid_cmdline "$pid")
  [[ $cmd == *kafka.Kafka* && $cmd == *"$KAFKA_PROPS"* ]] || return 1
  printf '%s\n' "$pid"
}

# Ready = the broker answers Metadata + ApiVersions on the bootstrap port
# (BrokerApiVersionsCommand sends both), not merely accepts TCP. The cheap
# TCP check first spares a JVM launch while the port is still closed.
kafka_probe() {
  port_open "$NODE_PORT" || return 1
  [[ -f $KAFKA_LIBS_MARKER && -f $KAFKA_PROBE_PROPS ]] || return 1
  kafka_java_tool org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "127.0.0.1:$NODE_PORT" \
    --command-config "$KAFKA_PROBE_PROPS" >/dev/null 2>&1
}

# setsid detaches the JVM from our session so it survives this script and
# the caller's terminal; the inner shell writes its own pid, which exec
# hands over unchanged to java, so the pid file is exact.
kafka_launch() {
  rm -f "$KAFKA_PID_FILE"
  log "starting Kafka $KAFKA_VERSION node $NODE on 127.0.0.1:$NODE_PORT (controller :$NODE_CONTROLLER_PORT)"
  # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID_FILE" \
    java -server -Xms256m -Xmx768m \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_LOGS" \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.xml" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >>"$KAFKA_LOGS/kafka.out" 2>&1 9>&- &
  # Wait for the pid file so that later checks see the new process.
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $KAFKA_PID_FILE ]] && return 0
    sleep 0.1
  done
  die "Kafka launcher did not write $KAFKA_PID_FILE"
}

# Start (or adopt a running broker) without waiting for readiness, so that
# PostgreSQL can come up while the JVM boots.
kafka_begin() {
  if kafka_pid >/dev/null; then
    return 0
  fi
  rm -f "$KAFKA_PID_FILE"
  require_free_port "Kafka" "$NODE_PORT"
  require_free_port "Kafka controller" "$NODE_CONTROLLER_PORT"
  kafka_ensure_libs
  kafka_write_config
  kafka_format_once
  kafka_launch
}

kafka_wait_ready() {
  local deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kafka_pid >/dev/null; then
      print_log_tail "$KAFKA_LOGS/server.log"
      print_log_tail "$KAFKA_LOGS/kafka.out"
      die "Kafka exited during startup"
    fi
    if kafka_probe; then
      log "Kafka node $NODE ready on 127.0.0.1:$NODE_PORT (pid $(kafka_pid))"
      return 0
    fi
    sleep 1
  done
  print_log_tail "$KAFKA_LOGS/server.log"
  die "Kafka not ready after ${KAFKA_READY_TIMEOUT}s (it is left running; see $KAFKA_LOGS)"
}

# TERM without waiting: stopped one after another, the last node of a cluster would wait
# for a controller quorum that has already left before it gives up.
kafka_term() {
  local pid
  if pid=$(kafka_pid); then kill -TERM "$pid" 2>/dev/null || true; fi
  return 0
}

kafka_stop() {
  local pid i
  if ! pid=$(kafka_pid); then
    rm -f "$KAFKA_PID_FILE"
    log "Kafka not running"
    return 0
  fi
  log "stopping Kafka node $NODE (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < KAFKA_STOP_TIMEOUT * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "Kafka did not stop within ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$KAFKA_PID_FILE"
}

# One line of `status`; it fails unless the process runs and answers.
status_line() {  # name, pid (empty when stopped), port, ready|not-ready
  if [[ -n $2 ]]; then
    printf '%-9s running  pid=%-7s port=%s  %s\n' "$1" "$2" "$3" "$4"
    [[ $4 == ready ]]
  else
    printf '%-9s stopped  pid=%-7s port=%s  %s\n' "$1" "-" "$3" "$4"
    return 1
  fi
}

kafka_status_line() {
  local pid ready=not-ready
  if pid=$(kafka_pid); then kafka_probe && ready=ready; else pid=""; fi
  local name=kafka
  ((KAFKA_NODES == 1)) || name=kafka-$NODE
  status_line "$name" "$pid" "$NODE_PORT" "$ready"
}

# ============================================================================
# PostgreSQL
# ============================================================================

# PostgreSQL refuses to run as root, so as root we run it as the Debian
# `postgres` user; as anyone else, as that user.
if [[ $EUID -eq 0 ]]; then PG_OS_USER=postgres; else PG_OS_USER=$(id -un); fi

# Run a command as the cluster owner. `cd /` avoids "could not change
# directory" noise when the caller's cwd (e.g. /root) is closed to postgres.
pg_as_owner() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@" 9>&-)
  else
    (cd / && "$@" 9>&-)
  fi
}

# Newest installed major version, e.g. /usr/lib/postgresql/15/bin.
pg_bin_dir() {
  local found=(/usr/lib/postgresql/*/bin/initdb)
  [[ -x ${found[0]} ]] || return 1
  dirname "$(printf '%s\n' "${found[@]}" | sort -V | tail -n 1)"
}

pg_ensure_installed() {
  if ! PG_BIN=$(pg_bin_dir); then
    apt_install postgresql
    PG_BIN=$(pg_bin_dir) || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb"
  fi
  command -v openssl >/dev/null || command -v python3 >/dev/null || apt_install openssl
}

# Unix socket paths are limited to ~107 bytes; a deeply nested checkout
# would make `<state>/postgres/run/.s.PGSQL.PORT` too long, so fall back to a
# short per-state-dir folder under /tmp.
pg_socket_dir() {
  local dir=$PG_DIR/run
  if ((${#dir} + 20 > 100)); then
    dir=/tmp/tl-pg-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12)
  fi
  printf '%s\n' "$dir"
}
PG_RUN=$(pg_socket_dir)

# Data, socket and log dirs belong to the cluster owner; the state dir and
# everything above it only need to be traversable (checked, because a
# checkout under a 0700 home would otherwise fail with an obscure error).
pg_prepare_dirs() {
  mkdir -p "$PG_DIR" "$PG_DATA" "$PG_RUN" "$PG_LOGS"
  chmod 755 "$STATE_DIR" "$PG_DIR"
  chmod 700 "$PG_DATA"
  chmod 755 "$PG_RUN" "$PG_LOGS"
  if [[ $EUID -eq 0 ]]; then
    chown "$PG_OS_USER:" "$PG_DATA" "$PG_RUN" "$PG_LOGS"
    runuser -u "$PG_OS_USER" -- test -w "$PG_DATA" \
      || die "user $PG_OS_USER cannot reach $PG_DATA: make the parent folders of $STATE_DIR world-executable (chmod o+x) or set TL_STATE_DIR elsewhere"
  fi
}

# initdb runs once. The marker is written only after success, so a crashed
# or interrupted initdb leaves no marker and its partial data dir (which can
# hold no user data yet) is wiped and redone.
pg_initdb_once() {
  [[ -f $PG_INIT_MARKER ]] && return 0
  log "initializing PostgreSQL cluster in $PG_DATA ($PG_BIN)"
  find "$PG_DATA" -mindepth 1 -delete
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$PG_LOGS/initdb.log" 2>&1 \
    || { print_log_tail "$PG_LOGS/initdb.log"; die "initdb failed"; }
  # Our settings live in an included file that is rewritten on every start.
  printf "\ninclude_if_exists = 'trial_ledger_local.conf'\n" \
    | pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
  touch "$PG_INIT_MARKER"
}

# Rewritten on every start so that TL_PG_PORT / state dir changes apply.
pg_write_config() {
  pg_as_owner tee "$PG_DATA/trial_ledger_local.conf" >/dev/null <<EOF
# Generated by deploy/local/infra.sh on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
# a stack of six service processes holds about 50 connections, and the tests run two
# stacks at once at times (a module's and a test's own): PostgreSQL's 100 is too few
max_connections = 200
EOF
}

# Postmaster pid, or failure. Like Kafka, the pid must belong to a postgres
# process serving this data dir, otherwise postmaster.pid is stale.
pg_pid() {
  local pid cmd
  [[ -f $PG_DATA/postmaster.pid ]] || return 1
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
  pid_alive "$pid" || return 1
  cmd=$(pid_cmdline "$pid")
  [[ $cmd == *postgres* && $cmd == *"$PG_DATA"* ]] || return 1
  printf '%s\n' "$pid"
}

# After a kill -9 of the postmaster its children notice and exit within
# moments, but one still attached to shared memory makes the next start fail
# ("pre-existing shared memory block is still in use"). Postgres processes
# chdir into the data dir, which identifies this cluster's processes; the
# children retitle themselves "postgres: <role>", a postmaster does not.
pg_reap_orphans() {
  local proc pid pids=() i alive
  for proc in /proc/[0-9]*; do
    [[ $(readlink "$proc/cwd" 2>/dev/null) == "$PG_DATA" ]] || continue
    [[ $(readlink "$proc/exe" 2>/dev/null) == "$PG_BIN/postgres" ]] || continue
    if [[ $(pid_cmdline "${proc#/proc/}") != "postgres: "* ]]; then
      die "a postmaster (pid ${proc#/proc/}) serves $PG_DATA but does not match its postmaster.pid; stop it first"
    fi
    pids+=("${proc#/proc/}")
  done
  ((${#pids[@]})) || return 0
  log "terminating ${#pids[@]} orphaned postgres process(es) of a crashed server"
  kill -QUIT "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

pg_launch() {
  pg_reap_orphans
  # Postgres treats its lock files as live while kill(pid, 0) succeeds, which
  # is also true for a zombie (this machine's PID 1 reaps lazily) and for a
  # recycled pid, so after a kill -9 it may refuse to start. Here we know no
  # process serves this data dir, and the socket dir is ours alone: drop them.
  rm -f "$PG_DATA/postmaster.pid" "$PG_RUN/.s.PGSQL.$PG_PORT" "$PG_RUN/.s.PGSQL.$PG_PORT.lock"
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT (socket dir $PG_RUN)"
  pg_as_owner "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG_FILE" \
    -w -t "$PG_READY_TIMEOUT" >/dev/null \
    || { print_log_tail "$PG_LOG_FILE"; die "PostgreSQL failed to start"; }
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 9>&-; }

pg_wait_ready() {
  local deadline=$((SECONDS + PG_READY_TIMEOUT))
  until pg_ready; do
    if ((SECONDS >= deadline)); then
      print_log_tail "$PG_LOG_FILE"
      die "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${PG_READY_TIMEOUT}s"
    fi
    sleep 0.5
  done
}

# Generated once per state dir, never stored in the repository.
pg_password() {
  if [[ ! -s $PG_PASSWORD_FILE ]]; then
    local pw
    if command -v openssl >/dev/null; then
      pw=$(openssl rand -hex 24)
    else
      pw=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
    fi
    (umask 077 && printf '%s\n' "$pw" >"$PG_PASSWORD_FILE.tmp")
    mv "$PG_PASSWORD_FILE.tmp" "$PG_PASSWORD_FILE"
  fi
  chmod 600 "$PG_PASSWORD_FILE"
  head -n 1 "$PG_PASSWORD_FILE"
}

validate_databases() {
  local db
  for db in $DATABASES; do
    [[ $db =~ ^[a-z_][a-z0-9_]*$ ]] \
      || die "invalid database name '$db' in TL_DATABASES (use lowercase letters, digits, _)"
  done
}

# Idempotent: role created if missing and its password (re)set from the
# password file every time, so the two can never drift apart; databases
# created only if missing. The password travels on stdin, not in argv.
pg_ensure_role_and_databases() {
  local pw
  pw=$(pg_password)
  pg_as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$PG_RUN" -p "$PG_PORT" -d postgres \
    -v role="$PG_APP_ROLE" -v dbs="$DATABASES" >/dev/null <<EOF
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
\set pw '$pw'
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', d, :'role')
  FROM unnest(regexp_split_to_array(trim(:'dbs'), '\s+')) AS d
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec
-- The projections service writes its ledger as ledger_writer: a role that may
-- insert and read but was never given UPDATE, DELETE or TRUNCATE.
SELECT 'CREATE ROLE ledger_writer NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_writer') \gexec
GRANT ledger_writer TO :"role";
EOF
}

pg_start() {
  validate_databases
  pg_ensure_installed
  pg_prepare_dirs
  pg_initdb_once
  if pg_pid >/dev/null; then
    log "PostgreSQL already running (pid $(pg_pid))"
  else
    require_free_port "PostgreSQL" "$PG_PORT"
    pg_write_config
    pg_launch
  fi
  pg_wait_ready
  pg_ensure_role_and_databases
  log "PostgreSQL ready on 127.0.0.1:$PG_PORT (pid $(pg_pid))"
}

pg_stop() {
  local pid
  if ! PG_BIN=$(pg_bin_dir) || ! pid=$(pg_pid); then
    log "PostgreSQL not running"
    return 0
  fi
  log "stopping PostgreSQL (pid $pid)"
  pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null \
    || pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 >/dev/null \
    || die "could not stop PostgreSQL (pid $pid)"
}

pg_status_line() {
  local pid ready=not-ready
  if PG_BIN=$(pg_bin_dir) && pid=$(pg_pid); then pg_ready && ready=ready; else pid=""; fi
  status_line postgres "$pid" "$PG_PORT" "$ready"
}

# ============================================================================
# env file and commands
# ============================================================================

# Written atomically with mode 0600 (it holds the password). Postgres lines
# appear once a password exists, i.e. after the first `start postgres`.
write_env_file() {
  local tmp=$ENV_FILE.tmp db pw=
  [[ -s $PG_PASSWORD_FILE ]] && pw=$(head -n 1 "$PG_PASSWORD_FILE")
  (
    umask 077
    {
      echo "# Generated by deploy/local/infra.sh; source it: . $ENV_FILE"
      # where this instance lives, so that a later infra.sh (a fault test stopping the
      # broker) acts on this one, whatever its ports
      echo "export TL_STATE_DIR=$STATE_DIR"
      echo "export TL_KAFKA_PORT=$KAFKA_PORT"
      echo "export TL_KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT"
      echo "export TL_KAFKA_NODES=$KAFKA_NODES"
      echo "export TL_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP"
      echo "export TL_TOPIC_REPLICATION=$KAFKA_REPLICATION"
      if [[ -n $pw ]]; then
        echo "export TL_PG_HOST=127.0.0.1"
        echo "export TL_PG_PORT=$PG_PORT"
        echo "export TL_PG_USER=$PG_APP_ROLE"
        echo "export TL_PG_PASSWORD=$pw"
        for db in $DATABASES; do
          echo "export TL_${db^^}_DATABASE_URL=postgresql://$PG_APP_ROLE:$pw@127.0.0.1:$PG_PORT/$db"
        done
      fi
    } >"$tmp"
  )
  mv "$tmp" "$ENV_FILE"
}

# The summary masks the password: CI keeps this output, the env file has it.
print_summary() {
  local db
  echo "Kafka bootstrap:  $KAFKA_BOOTSTRAP"
  if [[ -s $PG_PASSWORD_FILE ]]; then
    for db in $DATABASES; do
      printf 'PostgreSQL %-16s postgresql://%s:****@127.0.0.1:%s/%s\n' \
        "$db" "$PG_APP_ROLE" "$PG_PORT" "$db"
    done
  fi
  echo "Full settings (with password): . $ENV_FILE"
}

parse_component() {
  case ${1:-all} in
    kafka | postgres | all) printf '%s\n' "${1:-all}" ;;
    *) die "unknown component '$1' (expected kafka or postgres)" ;;
  esac
}

# Each node in turn (kafka_begin, kafka_wait_ready, kafka_stop, kafka_status_line):
# every node is launched before any is awaited, as a quorum needs most of its voters.
kafka_each() {
  local n rc=0
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    kafka_node "$n"
    "$@" || rc=$?
  done
  kafka_node 1
  return "$rc"
}

cmd_start() {
  local what
  what=$(parse_component "${1:-}")
  take_lock
  case $what in
    kafka) kafka_each kafka_begin && kafka_each kafka_wait_ready ;;
    postgres) pg_start ;;
    all) kafka_each kafka_begin && pg_start && kafka_each kafka_wait_ready ;;
  esac
  write_env_file
  print_summary
}

cmd_stop() {
  local what
  what=$(parse_component "${1:-}")
  take_lock
  case $what in
    kafka) kafka_each kafka_term && kafka_each kafka_stop ;;
    postgres) pg_stop ;;
    all) kafka_each kafka_term && kafka_each kafka_stop && pg_stop ;;
  esac
}

cmd_status() {
  local rc=0
  kafka_each kafka_status_line || rc=3
  pg_status_line || rc=3
  return "$rc"
}

cmd_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE does not exist; run: $0 start"
  cat "$ENV_FILE"
}

cmd_kafka_tool() {
  [[ $# -ge 1 ]] || die "usage: $0 kafka-tool CLASS [ARGS...]"
  [[ -f $KAFKA_LIBS_MARKER ]] || kafka_ensure_libs
  kafka_java_tool "$@"
}

cmd_kafka_pid() {
  [[ ${1:-} =~ ^[1-9]$ ]] && (($1 <= KAFKA_NODES)) || die "usage: $0 kafka-pid N (1..$KAFKA_NODES)"
  kafka_node "$1"
  kafka_pid || die "Kafka node $1 is not running"
}

cmd_kafka_libs() {
  kafka_ensure_libs
  printf '%s\n' "$KAFKA_LIBS"
}

# A superuser session on a database (SQL from stdin): for restore drills and for the
# tamper tests, which must prove the ledger catches what even a superuser does.
cmd_superuser_sql() {
  [[ $# -eq 1 ]] || die "usage: $0 superuser-sql DATABASE < statements.sql"
  PG_BIN=$(pg_bin_dir) && pg_pid >/dev/null \
    || die "PostgreSQL is not running; run: $0 start postgres"
  pg_as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -d "$1"
}

# The console's browser test (tests/browser) drives Debian's Chromium through Playwright
# (Playwright's own browser download is never used) and injects axe-core, pinned in
# tests/browser/package-lock.json.
BROWSER=${TL_CHROMIUM:-/usr/bin/chromium}
cmd_browser() {
  [[ -x $BROWSER ]] || apt_install chromium
  command -v npm >/dev/null || apt_install nodejs npm
  local folder=$REPO_ROOT/tests/browser
  if [[ ! -f $folder/node_modules/axe-core/axe.min.js ]]; then
    log "installing the browser test's npm packages (npm ci in $folder)"
    (cd "$folder" && npm ci --no-audit --no-fund --silent)
  fi
}

usage() {
  sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    kafka-tool) cmd_kafka_tool "$@" ;;
    kafka-libs) cmd_kafka_libs ;;
    kafka-pid) cmd_kafka_pid "$@" ;;
    browser) cmd_browser ;;
    superuser-sql) cmd_superuser_sql "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
