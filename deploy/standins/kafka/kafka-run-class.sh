#!/bin/bash
# kafka-run-class.sh CLASS [ARGS]: a Kafka class on the broker's classpath, with
# KAFKA_HEAP_OPTS as the official scripts honour it (the compose health check sets it).
# shellcheck disable=SC2086 # the options are a list of words, as in Kafka's own script
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.xml -cp '/opt/kafka/libs/*' "$@"
