#!/bin/bash
# As the official apache/kafka image: every KAFKA_* variable (but the JVM options) is a
# server.properties key (KAFKA_NODE_ID -> node.id; __ is _, ___ is -), the storage is
# formatted once with CLUSTER_ID, then the broker runs in the foreground, logging to stdout.
set -euo pipefail

CONFIG=/opt/kafka/config/server.properties
JVM_OPTIONS='^KAFKA_(HEAP|JVM_PERFORMANCE|GC_LOG|LOG4J|JMX)_OPTS=|^KAFKA_OPTS='

env | grep '^KAFKA_' | grep -Ev "$JVM_OPTIONS" | while IFS='=' read -r name value; do
  key=$(printf '%s' "${name#KAFKA_}" | tr '[:upper:]' '[:lower:]' \
    | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
  printf '%s=%s\n' "$key" "$value"
done >"$CONFIG"
grep -q '^process.roles=' "$CONFIG" || { echo "KAFKA_PROCESS_ROLES is not set" >&2; exit 2; }
log_dirs=$(sed -n 's/^log.dirs=//p' "$CONFIG")
[[ -n $log_dirs ]] || { echo "KAFKA_LOG_DIRS is not set" >&2; exit 2; }

if [[ ! -f ${log_dirs%%,*}/meta.properties ]]; then
  : "${CLUSTER_ID:?CLUSTER_ID is not set: it formats the storage once}"
  KAFKA_HEAP_OPTS=-Xmx256m /opt/kafka/bin/kafka-storage.sh format --ignore-formatted \
    -t "$CLUSTER_ID" -c "$CONFIG"
fi
# shellcheck disable=SC2086 # a list of JVM options
exec java -server ${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g} -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.xml -cp '/opt/kafka/libs/*' \
  kafka.Kafka "$CONFIG"
