#!/usr/bin/env bash
# Brings up the real Open Wearables backend on loopback, as a target for
# compatibility tests: Postgres, Redis, `owi store` (the S3-compatible store)
# with a stand-in for the SNS notification, the FastAPI app and one Celery
# worker. Then it logs in as the admin, makes an API key and writes an env
# file for the tests.
#
#   scripts/real-server.sh SRC              run the real-server test suite
#   scripts/real-server.sh SRC -- CMD...    run CMD against the server
#   scripts/real-server.sh SRC --up         stay up until Ctrl-C / SIGTERM
#
# SRC: a folder holding backend/, the backend folder itself, or a .tar.gz
# of either. CMD runs in the caller's folder with these exported:
# OWI_REAL_SERVER, OWI_REAL_API_KEY, OWI_REAL_EMAIL, OWI_REAL_PASSWORD,
# OWI_REAL_LOGS, OWI_REAL_BUCKET, OWI_REAL_S3, OWI_REAL_NOTIFICATIONS_OFF (a
# file that, while it exists, stops the SNS stand-in) (also in $state/env).
#
# Environment: OWI_REAL_STATE (state folder; default
# ${CARGO_TARGET_DIR:-target}/real-server), OWI_BIN (an owi binary: skips the
# build), OWI_REAL_REGION (default eu-central-1: SigV4 POST fields;
# us-east-1 gives SigV2), OWI_REAL_BUCKET, OWI_REAL_PYTHON (a Python 3.13).
# Installs postgresql and redis-server with apt-get when missing. The state
# folder holds the backend's venv, the databases, the store, logs/ and env.
# Helpers: scripts/real-server/notify.py (the SNS stand-in) and init.py.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
caller_dir=$PWD
t0=${EPOCHREALTIME/./}

usage() {
    echo "usage: $0 SRC [--up | -- COMMAND...]" >&2
    exit 2
}

# ---------------------------------------------------------------- helpers

secs_since() { # START (microseconds): seconds since then, to a tenth
    local now=${EPOCHREALTIME/./} ms
    ms=$(((now - $1) / 1000))
    printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}
say() { printf '==> [%s] %s\n' "$(secs_since "$t0")" "$*"; }

# fail MESSAGE [LOG]: names the failing step and shows the end of its log.
fail() {
    echo "real-server: FAILED: $1" >&2
    if [[ -s ${2:-} ]]; then
        echo "real-server: read $2; its last lines:" >&2
        tail -n 40 "$2" | sed 's/^/    /' >&2
    elif [[ -n ${2:-} ]]; then
        echo "real-server: its log, $2, is empty" >&2
    fi
    exit 1
}

# run_logged STEP LOG CMD...: runs CMD in the foreground, output to LOG.
run_logged() {
    local step=$1 log=$2
    shift 2
    "$@" >>"$log" 2>&1 || fail "$step (exit $?)" "$log"
}

# A process started with setsid leads its own session: its id is also the
# session's, which lets teardown find every process it spawned.
# (ps, not pgrep: an exited process not yet reaped must not count.)
# shellcheck disable=SC2009
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }
# shellcheck disable=SC2009
session_alive() { ps -o stat= -s "$1" 2>/dev/null | grep -qv '^Z'; }

pids=() names=() logs_of=()

started_at() { ps -o lstart= -p "$1" 2>/dev/null | tr -d ' '; }

# start NAME LOG CMD...: runs CMD in the background in its own session.
start() {
    local name=$1 log=$2
    shift 2
    setsid "$@" >>"$log" 2>&1 </dev/null &
    pids+=("$!") names+=("$name") logs_of+=("$log")
    # For the next run, should this one die without its teardown (kill -9).
    echo "$! $(started_at "$!")" >>"$state/pids"
}

# wait_for WHAT SECONDS LOG PID CHECK...: polls CHECK until it succeeds, and
# fails naming WHAT and LOG when PID exits or the deadline passes.
wait_for() {
    local what=$1 timeout=$2 log=$3 pid=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [[ -n $pid ]] && ! alive "$pid"; then
            fail "$what: the process exited before it was ready" "$log"
        fi
        ((SECONDS < deadline)) || fail "$what: not ready after ${timeout}s" "$log"
        sleep 0.2
    done
}

# shellcheck disable=SC2317 # called through wait_for
log_has() { grep -q -- "$2" "$1"; }
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

free_ports() { # COUNT: distinct free loopback ports, one per line
    "$py" - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# http CURL-ARGS...: prints the body of a 2xx answer, else fails loudly.
http() {
    local out status
    out=$(curl -sS --max-time 30 -w '\n%{http_code}' "$@") || return 1
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    [[ $status == 2?? ]] || { echo "HTTP $status: $out" >&2; return 1; }
    printf '%s' "$out"
}

json_field() { "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# ---------------------------------------------------------------- teardown

envfile='' cmd_pid='' pg_started='' pgbin='' pgdata='' logs=''

stop_session() { # PID NAME
    local pid=$1 name=$2 deadline=$((SECONDS + 20))
    kill -TERM -- "-$pid" 2>/dev/null || true
    while session_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if session_alive "$pid"; then
        echo "real-server: $name ignored SIGTERM for 20s; killing it" >&2
        pkill -KILL -s "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # called by the trap
teardown() {
    local status=$? t i
    trap '' INT TERM # a second Ctrl-C must not leave half the stack behind
    t=${EPOCHREALTIME/./}
    [[ -n $envfile ]] && rm -f "$envfile"
    if [[ -n $cmd_pid ]] && alive "$cmd_pid"; then
        kill -TERM "$cmd_pid" 2>/dev/null || true
        wait "$cmd_pid" 2>/dev/null || true
    fi
    if ((${#pids[@]})) || [[ -n $pg_started ]]; then
        say "stopping the server"
        # Newest first: the worker and the app before what they use.
        for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
            stop_session "${pids[i]}" "${names[i]}"
        done
        if [[ -n $pg_started ]]; then
            as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w -t 30 stop >>"$logs/postgres-ctl.log" 2>&1 ||
                echo "real-server: pg_ctl stop failed; see $logs/postgres-ctl.log" >&2
        fi
        rm -f "$state/pids"
        echo "real-server: stopped in $(secs_since "$t")"
    fi
    exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- arguments

[[ $# -ge 1 && $1 != -* ]] || usage
src=$(realpath -e -- "$1") || fail "no such source: $1"
shift
mode=run
cmd=(cargo test --locked -p owi-cli --test cli real_server -- --ignored --test-threads 1 --nocapture)
cmd_dir=$repo
if [[ $# -eq 1 && $1 == --up ]]; then
    mode=up
elif [[ $# -ge 2 && $1 == -- ]]; then
    shift
    cmd=("$@") cmd_dir=$caller_dir
elif [[ $# -ne 0 ]]; then
    usage
fi

# Debug info makes target/ three times larger and builds no faster (as in test.sh).
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"
target=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")
state=$(realpath -m "${OWI_REAL_STATE:-$target/real-server}")
logs=$state/logs
envfile=$state/env
mkdir -p "$state"
rm -rf "$logs" "$envfile"
mkdir -p "$logs"
say "state: $state"

# Leftovers of a run killed without its teardown: the same process (id and
# start time) still running.
if [[ -f $state/pids ]]; then
    while read -r pid when; do
        if [[ -n $when && $(started_at "$pid") == "$when" ]]; then
            echo "real-server: stopping process $pid, left over from an earlier run" >&2
            stop_session "$pid" "process $pid"
        fi
    done <"$state/pids"
    rm -f "$state/pids"
fi

# ---------------------------------------------------------------- packages

# shellcheck disable=SC2317 # called through run_logged
as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
pg_bin_dir() { find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname; }

missing=()
[[ -n $(pg_bin_dir) ]] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt-get)"
    run_logged "apt-get update" "$logs/apt.log" as_root apt-get update -q
    run_logged "apt-get install ${missing[*]}" "$logs/apt.log" \
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
pgbin=$(pg_bin_dir)

# Postgres refuses to run as root: run it as the postgres user.
if ((EUID == 0)); then
    id postgres >/dev/null 2>&1 || fail "no postgres user: is the postgresql package installed?"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

# ---------------------------------------------------------------- sources

find_backend() {
    local d
    for d in "$1" "$1/backend" "$1"/*/backend; do
        if [[ -f $d/alembic.ini && -f $d/uv.lock && -d $d/app ]]; then
            echo "$d"
            return
        fi
    done
    return 1
}

if [[ -f $src ]]; then
    [[ $src == *.tar.gz || $src == *.tgz ]] || fail "$src: expected a folder or a .tar.gz"
    # Re-extract only when the archive changed.
    stamp=$(sha256sum "$src" | cut -d' ' -f1)
    if [[ $(cat "$state/src.stamp" 2>/dev/null) != "$stamp" ]]; then
        say "extracting $src"
        rm -rf "$state/src" "$state/src.stamp"
        mkdir -p "$state/src"
        tar -xzf "$src" -C "$state/src" || fail "extracting $src"
        echo "$stamp" >"$state/src.stamp"
    fi
    src=$state/src
fi
backend=$(find_backend "$src") || fail "no Open Wearables backend (alembic.ini, uv.lock, app/) in $src"
say "backend: $backend"
if [[ -e $backend/config/.env ]]; then
    echo "real-server: warning: $backend/config/.env exists; settings not set here will come from it" >&2
fi

# ---------------------------------------------------------------- owi

if [[ -n ${OWI_BIN:-} ]]; then
    owi=$(realpath -e -- "$OWI_BIN") || fail "OWI_BIN=$OWI_BIN: no such file"
else
    say "building owi (cargo build -p owi-cli; may wait for the cargo lock)"
    (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --locked -p owi-cli) >>"$logs/build.log" 2>&1 ||
        fail "building owi" "$logs/build.log"
    owi=$target/debug/owi
fi
[[ -x $owi ]] || fail "$owi is not executable"

# ---------------------------------------------------------------- python

find_python() {
    local c
    for c in "${OWI_REAL_PYTHON:-}" "$(command -v python3.13 || true)" \
        "${PYENV_ROOT:-${HOME:-/root}/.pyenv}"/versions/3.13*/bin/python /root/.pyenv/versions/3.13*/bin/python; do
        if [[ -n $c && -x $c ]] && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            echo "$c"
            return
        fi
    done
    return 1
}
py=$(find_python) || fail "no Python 3.13 (the backend requires it): install one (e.g. pyenv install 3.13) or set OWI_REAL_PYTHON"

venv=$state/venv
# The lock file and the interpreter decide the venv's contents.
stamp=$({ sha256sum <"$backend/uv.lock"; "$py" -VV; } | sha256sum | cut -d' ' -f1)
if [[ -x $venv/bin/python && $(cat "$venv/.owi-stamp" 2>/dev/null) == "$stamp" ]]; then
    say "python: reusing $venv"
else
    if command -v uv >/dev/null; then
        uv=(uv)
    elif [[ -x $state/uv/bin/uv ]]; then
        uv=("$state/uv/bin/uv")
    elif "$py" -m uv --version >/dev/null 2>&1; then
        uv=("$py" -m uv)
    else
        say "installing uv (pip, into $state/uv)"
        run_logged "making a venv for uv" "$logs/uv.log" "$py" -m venv "$state/uv"
        run_logged "pip install uv" "$logs/uv.log" "$state/uv/bin/pip" install --quiet uv
        uv=("$state/uv/bin/uv")
    fi
    say "python: uv sync into $venv"
    rm -f "$venv/.owi-stamp"
    (cd "$backend" && UV_PROJECT_ENVIRONMENT=$venv "${uv[@]}" sync --frozen --no-install-project --python "$py") \
        >>"$logs/uv.log" 2>&1 || fail "uv sync (the backend's dependencies)" "$logs/uv.log"
    echo "$stamp" >"$venv/.owi-stamp"
fi

# ---------------------------------------------------------------- settings

t_services=${EPOCHREALTIME/./}
mapfile -t ports < <(free_ports 4)
((${#ports[@]} == 4)) || fail "finding free loopback ports"
pg_port=${ports[0]} redis_port=${ports[1]} s3_port=${ports[2]} api_port=${ports[3]}
api=http://127.0.0.1:$api_port
region=${OWI_REAL_REGION:-eu-central-1}
bucket=${OWI_REAL_BUCKET:-owi-real}
email=admin@example.com
password=$(random_hex 12)
aws_key=OWI$(random_hex 8)
aws_secret=$(random_hex 20)
db_password=$(random_hex 12)

# The backend's settings (app/config.py), given to its processes only: the
# command run at the end sees just the env file's variables.
svc_env=(
    PYTHONPATH="$backend" PYTHONUNBUFFERED=1
    # "production" only quietens the access log here; keep every request in api.log.
    ENVIRONMENT=production ACCESS_LOG_LEVEL=all LOG_ERROR_RESPONSE_BODY=true
    API_BASE_URL="$api" API_PORT="$api_port"
    SECRET_KEY="$(random_hex 32)"
    DB_HOST=127.0.0.1 DB_PORT="$pg_port" DB_NAME=ow DB_USER=ow DB_PASSWORD="$db_password"
    REDIS_HOST=127.0.0.1 REDIS_PORT="$redis_port" REDIS_DB=0
    SENTRY_ENABLED=false OUTGOING_WEBHOOKS_ENABLED=false RAW_PAYLOAD_STORAGE=disabled
    ADMIN_EMAIL="$email" ADMIN_PASSWORD="$password"
    CORS_ORIGINS='["http://localhost"]'
    AWS_BUCKET_NAME="$bucket" AWS_REGION="$region"
    AWS_ACCESS_KEY_ID="$aws_key" AWS_SECRET_ACCESS_KEY="$aws_secret"
    # boto3 takes the endpoint from here (the code sets none).
    AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3_port" AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
    AWS_SNS_TOPIC_ARN="arn:aws:sns:$region:000000000000:owi-real"
    OWI_NOTIFICATIONS_OFF="$state/notifications-off"
    # Nothing of the caller's AWS set-up, and no probing of an instance metadata service.
    AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true
)
# Prefix of the backend's commands. It drops settings the caller's
# environment may hold (MASTER_KEY would make the backend decrypt secrets).
with_env=(env -u MASTER_KEY -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_DEFAULT_REGION "${svc_env[@]}")

# ---------------------------------------------------------------- postgres

say "postgres on 127.0.0.1:$pg_port"
pg=$state/pg
pgdata=$pg/data
# A unix socket's path has at most 107 bytes.
((${#pg} < 80)) || fail "the state folder's path is too long for postgres' socket: set OWI_REAL_STATE"
# A postgres left running by a run killed without its teardown.
if [[ -f $pgdata/postmaster.pid ]]; then
    as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >>"$logs/postgres-ctl.log" 2>&1 || true
fi
# A fresh cluster each run: quicker than dropping a database, and clean.
rm -rf "$pg"
mkdir -p "$pgdata" "$pg/run"
chmod 755 "$state" # the postgres user must be able to enter it
: >"$logs/postgres.log"
if ((EUID == 0)); then
    chown -R postgres: "$pg" "$logs/postgres.log"
    as_pg test -x "$pg" ||
        fail "the postgres user cannot reach $state: choose a state folder it can enter (OWI_REAL_STATE)"
fi
run_logged "initdb" "$logs/postgres-ctl.log" \
    as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8
cat >>"$pgdata/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg/run'
# A throw-away test database: durability buys nothing here.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
pg_started=1
run_logged "starting postgres" "$logs/postgres.log" \
    as_pg "$pgbin/pg_ctl" -D "$pgdata" -l "$logs/postgres.log" -w -t 60 start
# (A postgresql package just installed may run Debian's own cluster on 5432:
# not ours, and in no one's way.)
run_logged "creating the database" "$logs/postgres-ctl.log" \
    as_pg "$pgbin/psql" -h "$pg/run" -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE ow LOGIN PASSWORD '$db_password'" -c "CREATE DATABASE ow OWNER ow"

# ---------------------------------------------------------------- redis

say "redis on 127.0.0.1:$redis_port"
rm -rf "$state/redis"
mkdir -p "$state/redis"
start redis "$logs/redis.log" redis-server --bind 127.0.0.1 --port "$redis_port" \
    --dir "$state/redis" --save '' --appendonly no --daemonize no
wait_for "redis" 30 "$logs/redis.log" "${pids[-1]}" log_has "$logs/redis.log" "Ready to accept connections"

# ---------------------------------------------------------------- store + notifier

say "store on 127.0.0.1:$s3_port (bucket $bucket) and the SNS stand-in"
rm -rf "$state/s3"
mkdir -p "$state/s3"
# The store prints one JSON line per completed upload; the notifier turns
# each into the Celery task SNS would have triggered. The store's stdout is
# also kept in its log.
# shellcheck disable=SC2016 # expanded by that bash
start store "$logs/store.log" "${with_env[@]}" bash -c \
    'set -o pipefail; "$1" store --dir "$2" --addr "$3" --bucket "$4" | tee -a "$5" | "$6" "$7" >>"$8" 2>&1' \
    _ "$owi" "$state/s3" "127.0.0.1:$s3_port" "$bucket" "$logs/store.log" \
    "$venv/bin/python" "$repo/scripts/real-server/notify.py" "$logs/notifier.log"
# While this file exists the notifier hands nothing over: a deployment whose
# bucket notifications are not set up, for the tests of that case.
rm -f "$state/notifications-off"
wait_for "owi store" 30 "$logs/store.log" "${pids[-1]}" log_has "$logs/store.log" "serving an S3-compatible store on"
s3=$(sed -n 's/^serving an S3-compatible store on //p' "$logs/store.log" | head -n 1)
store_pid=${pids[-1]}

# ---------------------------------------------------------------- backend

cd "$backend"
# Importing the app takes seconds: start the API and the worker now, to load
# while the migrations run. Neither touches the database before a request or
# a task comes, and none can come before the env file is written.
say "api on $api and a celery worker"
start worker "$logs/worker.log" "${with_env[@]}" "$venv/bin/celery" -A app.main:celery_app worker \
    --pool=threads -Q default,sdk_sync,garmin_sync,webhook_sync --loglevel=info \
    --hostname "owi-real@%h" --without-mingle --without-gossip
worker_pid=${pids[-1]}
start api "$logs/api.log" "${with_env[@]}" "$venv/bin/fastapi" run app/main.py --host 127.0.0.1 --port "$api_port"
api_pid=${pids[-1]}

say "migrations and seed data"
# alembic upgrade head, then upstream's init scripts (those that need no Svix
# and are no one-off data fixes), in one process.
if ! "${with_env[@]}" "$venv/bin/python" "$repo/scripts/real-server/init.py" \
    scripts/init_provider_settings.py scripts/init_device_priorities.py scripts/init/seed_admin.py \
    scripts/init/seed_series_types.py scripts/init/seed_archival_settings.py >>"$logs/init.log" 2>&1; then
    fail "migrations and seed data: $(grep '^== ' "$logs/init.log" | tail -n 1 | cut -c4-)" "$logs/init.log"
fi

say "waiting for the api, the worker and the notifier"
# GET / is the app's only health route ("Server is running!").
wait_for "the api" 90 "$logs/api.log" "$api_pid" curl -fsS --max-time 2 "$api/"
wait_for "the celery worker" 90 "$logs/worker.log" "$worker_pid" log_has "$logs/worker.log" "@.* ready\."
wait_for "the notifier" 60 "$logs/notifier.log" "$store_pid" log_has "$logs/notifier.log" "(INFO) ready"

say "admin login and an API key"
token=$(http --data-urlencode "username=$email" --data-urlencode "password=$password" \
    "$api/api/v1/auth/login" 2>>"$logs/api-client.log" | json_field access_token) ||
    fail "admin login (POST /api/v1/auth/login)" "$logs/api-client.log"
api_key=$(http -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name": "owi real-server tests"}' "$api/api/v1/developer/api-keys" 2>>"$logs/api-client.log" |
    json_field id) || fail "creating an API key (POST /api/v1/developer/api-keys)" "$logs/api-client.log"

{
    printf 'export OWI_REAL_SERVER=%q\n' "$api"
    printf 'export OWI_REAL_API_KEY=%q\n' "$api_key"
    printf 'export OWI_REAL_EMAIL=%q\n' "$email"
    printf 'export OWI_REAL_PASSWORD=%q\n' "$password"
    printf 'export OWI_REAL_LOGS=%q\n' "$logs"
    printf 'export OWI_REAL_BUCKET=%q\n' "$bucket"
    printf 'export OWI_REAL_S3=%q\n' "$s3"
    printf 'export OWI_REAL_NOTIFICATIONS_OFF=%q\n' "$state/notifications-off"
} >"$envfile.tmp"
mv "$envfile.tmp" "$envfile"
echo "real-server: up in $(secs_since "$t0") (services: $(secs_since "$t_services")); env: $envfile"

# ---------------------------------------------------------------- run or stay up

if [[ $mode == up ]]; then
    echo "real-server: up (pid $$) until Ctrl-C or SIGTERM; for a shell: source $envfile"
    # Returns when a service exits (or a signal arrives, which the traps handle).
    wait -n "${pids[@]}" || true
    for i in "${!pids[@]}"; do
        alive "${pids[i]}" || fail "${names[i]} exited unexpectedly" "${logs_of[i]}"
    done
    exit 1
fi

# shellcheck source=/dev/null
source "$envfile"
cd "$cmd_dir"
say "running: ${cmd[*]}"
# In the background so that SIGTERM reaches the trap at once; the caller's
# stdin is handed on explicitly.
"${cmd[@]}" <&0 &
cmd_pid=$!
status=0
wait "$cmd_pid" || status=$?
cmd_pid=
echo "real-server: the command exited with status $status"
exit "$status"
