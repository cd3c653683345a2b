#!/bin/bash
# docker-compose.yml with server/compose/postgres.yml (a PostgreSQL store, two bmas replicas).
# On paper (no Docker engine here): the merged file passes the Compose schema (docker-compose
# config), the default stack without it is unchanged, the postgres image is pinned exactly (the
# major version of the server this test runs), the two replicas differ only in instance id and
# host port, every queue consumer is on the database, and every variable is one bmas knows. In
# practice, against a real PostgreSQL server (tests/tools/pg-lib.sh; no server is a failure,
# never a skip) with the role and database the postgres service creates, and bmas-emulator: the
# setup and feeder script (server/compose/aws.sh) and two bmas in consumer mode, each on its
# replica's merged environment (endpoint, queue and database host pointed here). Both answer
# the generator's totals in /aggregates, counted once (and once more after every object is
# delivered to both again), exactly one publishes, and CloudWatch gets the metrics once.
set -u
. tests/tools/svc-lib.sh
. tests/tools/pg-lib.sh
itest_setup
OV=server/compose/postgres.yml

# The merged configuration as JSON (docker-compose resolves the merge and ${...} itself, and
# fails on anything the Compose schema refuses).
config() { # FILE... [-- VAR=value...]: docker-compose config of the files, as JSON
    local files=() vars=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do files+=(-f "$1"); shift; done
    [ $# -gt 0 ] && shift && vars=("$@")
    local yaml
    yaml=$(env -u POSTGRES_PASSWORD "${vars[@]}" docker-compose "${files[@]}" config 2>>"$W/config.err") || return 1
    python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' <<<"$yaml"
}
if ! command -v docker-compose >/dev/null 2>&1; then
    t_fail "docker-compose installed (tests/tools/deps.sh installs it)"
    t_done
    exit 1
fi
C=$(config docker-compose.yml "$OV")
t_eq "docker-compose.yml with $OV passes the Compose schema (docker-compose config)" "0" "$?"
[ -s "$W/config.err" ] && sed 's/^/#   /' "$W/config.err"
t_eq "the merged services" "bmas bmas-2 feeder localstack postgres setup" \
    "$(jq -r '.services | keys | join(" ")' <<<"$C")"
t_eq "without it, the default stack is unchanged: one bmas, on an SQLite file" \
    "bmas feeder localstack setup|/data/bmas.db" \
    "$(config docker-compose.yml | jq -r '"\(.services | keys | join(" "))|\(.services.bmas.environment.BMAS_DB)"')"

# The database service.
pg() { jq -r ".services.postgres$1" <<<"$C"; }
image=$(pg .image)
t_ok "postgres pinned to an exact version ($image)" \
    grep -qE '^postgres:[0-9]+\.[0-9]+(-[a-z0-9.]+)?$' <<<"$image"
major=$(pg_bindir | sed -n 's|^/usr/lib/postgresql/\([0-9]*\)/bin$|\1|p')
t_eq "its major version is the server's this test runs against" "${major:-none}" \
    "$(sed -n 's/^postgres:\([0-9]*\)\..*/\1/p' <<<"$image")"
pg_user=$(pg .environment.POSTGRES_USER) pg_pass=$(pg .environment.POSTGRES_PASSWORD)
pg_db=$(pg .environment.POSTGRES_DB)
t_eq "its health check is pg_isready on the user and database" \
    "CMD pg_isready -U $pg_user -d $pg_db" "$(pg '.healthcheck.test | join(" ")')"
t_eq "its data on a named volume" "bmas-pg:/var/lib/postgresql/data:rw true" \
    "$(pg '.volumes[0]') $(jq '.volumes | has("bmas-pg")' <<<"$C")"
t_eq "no host port for it (reachable inside the compose network only)" "null" "$(pg .ports)"
t_eq "the password defaults to bmas" "bmas" "$pg_pass"
C2=$(config docker-compose.yml "$OV" -- POSTGRES_PASSWORD=Xy7pw9)
t_eq "POSTGRES_PASSWORD from the shell reaches the server and both replicas' URLs" "Xy7pw9 2" \
    "$(jq -r '.services.postgres.environment.POSTGRES_PASSWORD' <<<"$C2") $(jq \
        '[.services["bmas", "bmas-2"].environment.BMAS_DB | select(contains(":Xy7pw9@"))] | length' <<<"$C2")"

# The two replicas: one definition but for the instance id and the host port (bmas also keeps
# docker-compose.yml's /data volume, which a PostgreSQL store leaves unused).
svc() { jq -c --arg s "$1" ".services[\$s]$2" <<<"$C"; }
t_eq "bmas and bmas-2 differ only in BMAS_INSTANCE_ID, the host port and bmas's /data" \
    "$(svc bmas-2 '| del(.environment.BMAS_INSTANCE_ID, .ports)')" \
    "$(svc bmas '| del(.environment.BMAS_INSTANCE_ID, .ports, .volumes)')"
t_eq "bmas's volume is the default stack's /data" '["bmas-data:/data:rw"]' "$(svc bmas .volumes)"
id1=$(svc bmas .environment.BMAS_INSTANCE_ID | jq -r .) id2=$(svc bmas-2 .environment.BMAS_INSTANCE_ID | jq -r .)
t_ok "distinct instance ids ($id1, $id2)" test -n "$id1" -a -n "$id2" -a "$id1" != "$id2"
t_eq "host ports 8080 and 8081, both to the container's 8080" \
    '["127.0.0.1:8080:8080/tcp"] ["127.0.0.1:8081:8080/tcp"]' "$(svc bmas .ports) $(svc bmas-2 .ports)"
t_eq "both on the postgres service's database" \
    "postgresql://$pg_user:$pg_pass@postgres:5432/$pg_db postgresql://$pg_user:$pg_pass@postgres:5432/$pg_db" \
    "$(jq -r '[.services["bmas", "bmas-2"].environment.BMAS_DB] | join(" ")' <<<"$C")"
t_eq "both wait for it to be healthy, and for setup" \
    '{"postgres":{"condition":"service_healthy"},"setup":{"condition":"service_completed_successfully"}}' \
    "$(svc bmas-2 '.depends_on | to_entries | sort_by(.key) | from_entries')"
t_eq "every service that consumes the queue is on the database (none on SQLite)" "bmas bmas-2" \
    "$(jq -r '[.services | to_entries[] | select(.value.environment.BMAS_SQS_QUEUE_URL?)
        | select(.value.environment.BMAS_DB | startswith("postgresql://")) | .key] | join(" ")' <<<"$C")"
help=$("$BINDIR/bmas" --help)
names=$(svc bmas-2 '.environment | keys[]' | jq -r .)
unknown=""
for name in $names; do
    case "$help" in *"$name"*) ;; *) unknown="$unknown $name" ;; esac
done
t_eq "bmas knows every variable of the replicas ($(wc -w <<<"$names"))" "" "$unknown"

# In practice: the server, with the role and database the postgres service's image creates
# (POSTGRES_USER is a superuser owning POSTGRES_DB).
if ! pg_start; then
    t_fail "PostgreSQL server started (tests/tools/deps.sh installs postgresql)"
    t_done
    exit 1
fi
OTHER_PID=
ITEST_ATEXIT='[ -n "$OTHER_PID" ] && kill -KILL "$OTHER_PID" 2>/dev/null; pg_stop'
sql() { psql "$PG_URL" -v ON_ERROR_STOP=1 -qAt -c "$1" >>"$W/psql.log" 2>&1; }
t_ok "role $pg_user created as the image does" sql "CREATE ROLE \"$pg_user\" LOGIN SUPERUSER PASSWORD '$pg_pass'"
[ "$pg_db" = bmas ] || sql "CREATE DATABASE \"$pg_db\" OWNER \"$pg_user\""
# The replicas' URL with the service's host and port pointed here (user, password and database
# as written).
db_url=$(svc bmas .environment.BMAS_DB | jq -r . | sed "s|@postgres:5432/|@127.0.0.1:$PG_PORT/|")
t_ok "the URL names the postgres service's host and port" grep -q "@127.0.0.1:$PG_PORT/" <<<"$db_url"

compose_env() { # SERVICE: its merged environment as NAME=value lines, pointed here
    local ep
    ep=$(svc "$1" .environment.AWS_ENDPOINT_URL | jq -r .)
    svc "$1" '.environment | to_entries[] | "\(.key)=\(.value)"' | jq -r . |
        while IFS= read -r line; do
            case "$line" in
            BMAS_DB=* | BMAS_LISTEN=*) continue ;; # bmas_start's --db and --listen
            AWS_ENDPOINT_URL=*) line="AWS_ENDPOINT_URL=$EMU_URL" ;;
            BMAS_SQS_QUEUE_URL=*) line="BMAS_SQS_QUEUE_URL=$EMU_URL${line#BMAS_SQS_QUEUE_URL="$ep"}" ;;
            BMAS_PRICES=*) line="BMAS_PRICES=$PWD/docs/prices.csv" ;; # the image's copy of it
            esac
            printf '%s\n' "$line"
        done
}
mapfile -t setup_env < <(compose_env setup)
# Only the service's own environment (env -i); what the script says goes to a log, not TAP.
run_setup() { env -i PATH="$PATH" "${setup_env[@]}" sh server/compose/aws.sh setup >>"$W/setup.log" 2>&1; }
t_ok "setup creates the bucket, the queues and the notification" run_setup

BMAS_DB=$db_url
BMAS_ENV=$(compose_env bmas | paste -sd' ')
bmas_start || exit 1
A_PID=$BMAS_PID A_URL=$BMAS_URL A_LOG=$BMAS_LOG
OTHER_PID=$A_PID
BMAS_ENV=$(compose_env bmas-2 | paste -sd' ')
bmas_start || exit 1
B_PID=$BMAS_PID B_URL=$BMAS_URL B_LOG=$BMAS_LOG
t_eq "the replicas' queue is the emulator's" "1 1" \
    "$(grep -c "^BMAS_SQS_QUEUE_URL=$EMU_URL/" <(compose_env bmas)) $(grep -c "^BMAS_SQS_QUEUE_URL=$EMU_URL/" <(compose_env bmas-2))"
status_of() { curl -m 30 -sS "$1/status"; }
holder_known() { [ "$(status_of "$1" | jq -r '.instance.publisher_holder // ""')" != "" ]; }
both_know() { holder_known "$A_URL" && holder_known "$B_URL"; }
t_ok "both replicas name a publisher" wait_for 60 both_know

# Three objects a second apart (the compose file's 20 s is the default, overridden here).
mapfile -t feed_env < <(compose_env feeder)
feed3() {
    env -i PATH="$BINDIR:$PATH" "${feed_env[@]}" FEED_EVERY=1 FEED_COUNT=3 \
        FEED_TOTALS="$W/totals.jsonl" sh server/compose/aws.sh feed >>"$W/feed.log" 2>&1
}
t_ok "the feeder uploads three objects" feed3
t_eq "three objects, the generator's totals of each" "3" "$(wc -l <"$W/totals.jsonl")"
want=$(jq -s -c '{invocations: (map(.invocations) | add), input_tokens: (map(.input_tokens) | add),
    output_tokens: (map(.output_tokens) | add), cache_read_input_tokens: (map(.cache_read_input_tokens) | add),
    cache_write_input_tokens: (map(.cache_write_input_tokens) | add)}' "$W/totals.jsonl")
totals() { # URL: /aggregates' totals over all time (the database is this test's own)
    curl -m 30 -sS "$1/aggregates?group_by=" |
        jq -c '.totals | {invocations, input_tokens, output_tokens, cache_read_input_tokens, cache_write_input_tokens}'
}
counted() { [ "$(totals "$A_URL")" = "$want" ]; }
t_ok "the replicas consumed the queue" wait_for 60 counted
t_eq "$id1's /aggregates equals the generator's totals" "$want" "$(totals "$A_URL")"
t_eq "$id2's too" "$want" "$(totals "$B_URL")"
by_type() { curl -m 30 -sS "$1/aggregates?group_by=profile_type" | jq -cS .rows; }
t_eq "both answer the same rows by profile type" "$(by_type "$A_URL")" "$(by_type "$B_URL")"
t_eq "per profile type, the generator's" \
    "$(jq -s -r '[.[].by_profile_type | to_entries[]] | group_by(.key)
        | map("\(.[0].key) \(map(.value.invocations) | add) \(map(.value.input_tokens) | add)") | .[]' "$W/totals.jsonl")" \
    "$(by_type "$A_URL" | jq -r '.[] | "\(.profile_type) \(.invocations) \(.input_tokens)"' | sort)"

# Every object delivered again, to both replicas: the shared store counts each once.
codes=""
while IFS= read -r key; do
    etag=$(aws_q s3api head-object --bucket bedrock-logs --key "$key" | jq -r .ETag | tr -d '"')
    ev=$(jq -c --arg k "$(form_key "$key")" --arg e "$etag" '.Records[0].s3.bucket.name = "bedrock-logs"
        | .Records[0].s3.object.key = $k | .Records[0].s3.object.eTag = $e' "$BM_TEST_DATA/s3-event.json")
    for u in "$A_URL" "$B_URL"; do
        codes="$codes $(curl -m 60 -sS -o /dev/null -w '%{http_code}' --data "$ev" "$u/events")"
    done
done < <(jq -r .key "$W/totals.jsonl")
t_eq "every object redelivered to both replicas: 200" " 200 200 200 200 200 200" "$codes"
t_eq "counted once: $id1" "$want" "$(totals "$A_URL")"
t_eq "counted once: $id2" "$want" "$(totals "$B_URL")"
committed() { grep -h '"event":"object_processed"' "$@" | jq -r .key; }
t_eq "between them the replicas committed each object once (object_processed lines)" \
    "$(jq -r .key "$W/totals.jsonl" | sort)" "$(committed "$A_LOG" "$B_LOG" | sort)"
echo "# $id1 committed $(committed "$A_LOG" | wc -l) of them, $id2 $(committed "$B_LOG" | wc -l)"

# One publisher, named by both.
st_a=$(status_of "$A_URL") st_b=$(status_of "$B_URL")
t_eq "instance ids and store" "[\"$id1\",\"postgresql\",\"$id2\",\"postgresql\"]" \
    "$(jq -cs '[.[0].instance.id, .[0].instance.store, .[1].instance.id, .[1].instance.store]' <<<"$st_a $st_b")"
t_eq "exactly one replica publishes" '[false,true]' "$(jq -cs '[.[].instance.publisher] | sort' <<<"$st_a $st_b")"
pub_id=$(jq -rs '[.[] | select(.instance.publisher) | .instance.id][0] // "none"' <<<"$st_a $st_b")
t_eq "both name it as the holder" "[\"$pub_id\"]" "$(jq -cs '[.[].instance.publisher_holder] | unique' <<<"$st_a $st_b")"
if [ "$pub_id" = "$id1" ]; then
    pub_url=$A_URL sb_url=$B_URL sb_log=$B_LOG
else
    pub_url=$B_URL sb_url=$A_URL sb_log=$A_LOG
fi
t_eq "the stand-by logged publisher_standby naming $pub_id" "$pub_id" \
    "$(grep '"event":"publisher_standby"' "$sb_log" | head -1 | jq -r .holder)"

# CloudWatch: the compose file flushes every 60 s; /flush does it now, on the publisher.
BMAS_URL=$pub_url call flush POST /flush
t_eq "the publisher's flush answered 200" "200" "$STATUS"
cw_sum() { # METRIC: its Sum over the four profile types, from the emulator's CloudWatch
    local ty s=0 v
    for ty in OnDemand CrossRegion GlobalCrossRegion Application; do
        v=$(cw_stat "$1" Sum InferenceProfileType=$ty)
        s=$((s + ${v%.*}))
    done
    echo "$s"
}
t_eq "CloudWatch's InvocationCount adds up to the generator's invocations" \
    "$(jq -r .invocations <<<"$want")" "$(cw_sum InvocationCount)"
t_eq "and InputTokens to its input tokens" "$(jq -r .input_tokens <<<"$want")" "$(cw_sum InputTokens)"
t_eq "the stand-by published nothing" 0 "$(grep -c '"event":"published"' "$sb_log")"
BMAS_URL=$sb_url call flush POST /flush
t_eq "a flush on the stand-by finds nothing left to send" '{"published":0,"requests":0}' \
    "$(jq -c '{published,requests}' <<<"$BODY")"
t_eq "CloudWatch unchanged: each datum once" "$(jq -r .invocations <<<"$want")" "$(cw_sum InvocationCount)"

BMAS_PID=$B_PID BMAS_LOG=$B_LOG
srv_stop bmas "$id2"
BMAS_PID=$A_PID BMAS_LOG=$A_LOG OTHER_PID=
srv_stop bmas "$id1"
srv_stop emu
t_done
