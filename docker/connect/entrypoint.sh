#!/bin/sh
# Entry point of the Kafka Connect 3.9 + Debezium 3.1.1 image (Dockerfile.connect).
# Writes the distributed-worker properties from the environment, then execs ConnectDistributed.
#
#   BOOTSTRAP_SERVERS               required, e.g. kafka:9092
#   GROUP_ID                        connect cluster id                       (cdc-connect)
#   CONFIG_STORAGE_TOPIC            internal config topic                    (connect-configs)
#   OFFSET_STORAGE_TOPIC            internal offsets topic                   (connect-offsets)
#   STATUS_STORAGE_TOPIC            internal status topic                    (connect-status)
#   STORAGE_REPLICATION_FACTOR      of the three internal topics; -1 = broker default   (3)
#   CONFIG_STORAGE_REPLICATION_FACTOR / OFFSET_STORAGE_REPLICATION_FACTOR /
#   STATUS_STORAGE_REPLICATION_FACTOR   one of them alone             (STORAGE_REPLICATION_FACTOR)
#                                   3 survives the loss of a broker; a single-broker cluster
#                                   (compose, a laptop) needs 1, or the worker cannot start
#   REST_PORT                       REST listener port                       (8083)
#   REST_ADVERTISED_HOST_NAME       address other workers use to reach this one  (hostname -i)
#   KEY_CONVERTER / VALUE_CONVERTER                   (org.apache.kafka.connect.json.JsonConverter)
#   KEY_CONVERTER_SCHEMAS_ENABLE / VALUE_CONVERTER_SCHEMAS_ENABLE                        (true)
#   OFFSET_FLUSH_INTERVAL_MS                                                  (60000)
#   CONNECT_<NAME>                  any other worker property: CONNECT_VALUE_CONVERTER_SCHEMA_REGISTRY_URL
#                                   becomes value.converter.schema.registry.url (lower case, _ -> .)
#   PLUGIN_PATH                     connector plugins, one directory per plugin      (/opt/connect/plugins)
#   HEAP_OPTS                       (-Xms256m -Xmx512m)
#   JAVA_OPTS                       extra JVM options
#   CONNECT_WORKER_PROPERTIES       where the file is written      (/tmp/connect-distributed.properties)
#
# If the first argument is not an option, it is run instead (e.g. `sh` for debugging).
set -eu

case "${1:-}" in
  ''|-*) ;;
  *) exec "$@" ;;
esac

: "${BOOTSTRAP_SERVERS:?set BOOTSTRAP_SERVERS to the Kafka bootstrap servers, e.g. kafka:9092}"
: "${GROUP_ID:=cdc-connect}"
: "${CONFIG_STORAGE_TOPIC:=connect-configs}"
: "${OFFSET_STORAGE_TOPIC:=connect-offsets}"
: "${STATUS_STORAGE_TOPIC:=connect-status}"
: "${STORAGE_REPLICATION_FACTOR:=3}"
: "${CONFIG_STORAGE_REPLICATION_FACTOR:=$STORAGE_REPLICATION_FACTOR}"
: "${OFFSET_STORAGE_REPLICATION_FACTOR:=$STORAGE_REPLICATION_FACTOR}"
: "${STATUS_STORAGE_REPLICATION_FACTOR:=$STORAGE_REPLICATION_FACTOR}"
: "${PLUGIN_PATH:=/opt/connect/plugins}"
: "${REST_PORT:=8083}"
: "${KEY_CONVERTER:=org.apache.kafka.connect.json.JsonConverter}"
: "${VALUE_CONVERTER:=org.apache.kafka.connect.json.JsonConverter}"
: "${KEY_CONVERTER_SCHEMAS_ENABLE:=true}"
: "${VALUE_CONVERTER_SCHEMAS_ENABLE:=true}"
: "${OFFSET_FLUSH_INTERVAL_MS:=60000}"
: "${HEAP_OPTS:=-Xms256m -Xmx512m}"
: "${JAVA_OPTS:=}"
: "${CONNECT_WORKER_PROPERTIES:=/tmp/connect-distributed.properties}"
if [ -z "${REST_ADVERTISED_HOST_NAME:-}" ]; then
  REST_ADVERTISED_HOST_NAME="$(hostname -i 2>/dev/null | awk '{print $1}')"
  [ -n "$REST_ADVERTISED_HOST_NAME" ] || REST_ADVERTISED_HOST_NAME="$(hostname)"
fi

umask 077
{
  echo "bootstrap.servers=${BOOTSTRAP_SERVERS}"
  echo "group.id=${GROUP_ID}"
  echo "config.storage.topic=${CONFIG_STORAGE_TOPIC}"
  echo "offset.storage.topic=${OFFSET_STORAGE_TOPIC}"
  echo "status.storage.topic=${STATUS_STORAGE_TOPIC}"
  echo "config.storage.replication.factor=${CONFIG_STORAGE_REPLICATION_FACTOR}"
  echo "offset.storage.replication.factor=${OFFSET_STORAGE_REPLICATION_FACTOR}"
  echo "status.storage.replication.factor=${STATUS_STORAGE_REPLICATION_FACTOR}"
  echo "key.converter=${KEY_CONVERTER}"
  echo "value.converter=${VALUE_CONVERTER}"
  echo "key.converter.schemas.enable=${KEY_CONVERTER_SCHEMAS_ENABLE}"
  echo "value.converter.schemas.enable=${VALUE_CONVERTER_SCHEMAS_ENABLE}"
  echo "offset.flush.interval.ms=${OFFSET_FLUSH_INTERVAL_MS}"
  echo "listeners=http://0.0.0.0:${REST_PORT}"
  echo "rest.advertised.host.name=${REST_ADVERTISED_HOST_NAME}"
  echo "rest.advertised.port=${REST_PORT}"
  # Debezium and the converters are on the classpath; connectors added later go into
  # PLUGIN_PATH, one directory (or uber jar) per plugin, each in a class loader of its own.
  echo "plugin.path=${PLUGIN_PATH}"
  # Plugins are found with ServiceLoader only: required with these jars (see INFRA.md), and the
  # default scan is much slower. A plugin without META-INF/services manifests is not found.
  echo "plugin.discovery=service_load"
  # CONNECT_FOO_BAR=x -> foo.bar=x; later lines win, so these can override the ones above.
  env | awk -F= '/^CONNECT_[A-Z0-9_]+=/ && $1 != "CONNECT_WORKER_PROPERTIES" {
    name = tolower(substr($1, 9)); gsub("_", ".", name)
    print name "=" substr($0, length($1) + 2)
  }'
} > "$CONNECT_WORKER_PROPERTIES"

echo "connect-entrypoint: worker properties in $CONNECT_WORKER_PROPERTIES (group ${GROUP_ID}, REST :${REST_PORT})" >&2

# HEAP_OPTS and JAVA_OPTS are deliberately split into words.
# shellcheck disable=SC2086
exec java ${HEAP_OPTS} ${JAVA_OPTS} \
  -Dlog4j2.configurationFile=file:/opt/connect/config/log4j2.properties \
  -cp '/opt/connect/libs/*' \
  org.apache.kafka.connect.cli.ConnectDistributed "$CONNECT_WORKER_PROPERTIES" "$@"
