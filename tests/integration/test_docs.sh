#!/bin/bash
# The documents say what the code does: every variable `bmas --help` lists (the configuration
# table, core/config.c) is in README.md and docs/configuration.md; every error code of core's
# table (BM_ERR_MAP) is in README.md and openapi.yaml; every flag `bmas-emulator --help` names
# is in emulator/README.md. And the documents are self-contained: every file or folder that
# README.md, docs/*.md and emulator/README.md name exists in the repository, and neither they
# nor the code's comments point outside it (no ../ paths, no documents that are not here).
# docs/MIGRATING.md names every item of the replaced Lambda's guides (tests/data/guide-items.txt)
# and docs/iam-policy.json grants every AWS action the code calls.
set -u
. "$(dirname "$0")/../tools/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)

vars=$("$BINDIR/bmas" --help 2>&1 | awk '/^  [A-Z][A-Z0-9_]+ / { print $1 }')
expect_eq "bmas --help lists the configuration table" "$([ "$(echo "$vars" | wc -l)" -gt 30 ] && echo yes)" yes
for doc in README.md docs/configuration.md; do
    missing=$(for v in $vars; do grep -qw -- "$v" "$top/$doc" || echo "$v"; done)
    expect_eq "every variable is in $doc" "$missing" ""
done

codes=$(grep -o '"BMAS-0[0-9][0-9]"' "$top/core/bm_rt.h" | tr -d '"' | sort -u)
expect_eq "the error table has BMAS-001..010 and ours" "$(echo "$codes" | head -1)" BMAS-001
for doc in README.md openapi.yaml; do
    missing=$(for c in $codes; do grep -q -- "$c" "$top/$doc" || echo "$c"; done)
    expect_eq "every error code is in $doc" "$missing" ""
done

flags=$("$BINDIR/bmas-emulator" --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sort -u)
missing=$(for f in $flags; do grep -q -- "$f" "$top/emulator/README.md" || echo "$f"; done)
expect_eq "every bmas-emulator flag is in emulator/README.md" "$missing" ""

# docs/MIGRATING.md answers every item of the replaced Lambda's guides: each name of
# tests/data/guide-items.txt (extracted from the guides when it was written) appears in it.
items=$(grep -v '^#' "$top/tests/data/guide-items.txt" | sed '/^$/d')
expect_eq "guide-items.txt has the guides' variables and BMAS-001..010" \
    "$(echo "$items" | grep -c '^var ') $(echo "$items" | grep -c '^code BMAS-0')" "10 10"
missing=$(echo "$items" | while read -r kind name; do
    grep -qF -- "$name" "$top/docs/MIGRATING.md" || echo "$kind $name"
done)
expect_eq "docs/MIGRATING.md names every item of the guides" "$missing" ""
expect_eq "README.md links docs/MIGRATING.md" "$(grep -c '](docs/MIGRATING.md)' "$top/README.md")" 1

# docs/iam-policy.json: an IAM policy (JSON, Version 2012-10-17, only Allow statements with an
# Action and a Resource, no wildcard action) that grants every AWS API action the code calls.
# The calls are found in the code (S3 operation names in core/s3.c, SQS targets, STS and
# CloudWatch Query actions); each maps to the IAM action that authorises it, and an operation
# the map does not know fails the check until it is added here and to the policy.
pol="$top/docs/iam-policy.json"
expect_eq "iam-policy.json is an IAM policy document" "$(jq -r '.Version' "$pol" 2>&1)" 2012-10-17
expect_eq "every statement: Allow, actions, resources, no wildcard action" \
    "$(jq -r '[.Statement[] | select(.Effect != "Allow" or .Action == null or .Resource == null
        or ([.Action] | flatten | any(test("\\*"))))] | length' "$pol")" 0
expect_eq "least privilege: namespace, prefix and ViaService conditions" \
    "$(jq -c '[(.Statement[] | select([.Action] | flatten | index("cloudwatch:PutMetricData"))
        | .Condition.StringEquals["cloudwatch:namespace"] != null),
      (.Statement[] | select([.Action] | flatten | index("s3:ListBucket")) | .Condition.StringLike["s3:prefix"] != null),
      (.Statement[] | select([.Action] | flatten | index("kms:Decrypt")) | .Condition.StringLike["kms:ViaService"] != null),
      (.Statement[] | select([.Action] | flatten | index("s3:GetObject")) | [.Resource] | flatten | all(endswith("/*") and (. != "*")))]' "$pol")" \
    "[true,true,true,true]"
granted=$(jq -r '.Statement[].Action | if type == "array" then .[] else . end' "$pol")
calls=$(cd "$top" && {
    grep -ohE '"(Get|Head|List|Put|Delete|Copy|Create)[A-Za-z0-9]*(Object|Bucket|Objects)[A-Za-z0-9]*( \(version\))?"' core/s3.c | tr -d '"' | sed 's/^/s3 /'
    grep -ohE 'sqs_call\([^,]+, *"[A-Za-z]+"' core/*.c | sed -E 's/.*"([A-Za-z]+)"/sqs \1/'
    grep -ohE '\{"Action", *"[A-Za-z]+"\}' core/*.c | sed -E 's/.*"([A-Za-z]+)"\}/sts \1/'
    grep -ohE 'Action=[A-Za-z]+' core/cw*.c | sed 's/Action=/cloudwatch /'
} | sort -u)
expect_eq "the code's AWS calls were found" \
    "$(echo "$calls" | grep -cE '^(s3 GetObject|s3 ListObjectsV2|sqs ReceiveMessage|sts AssumeRole|cloudwatch PutMetricData)$')" 5
need=$(echo "$calls" | while read -r svc op; do
    case "$svc $op" in
    "s3 GetObject") echo s3:GetObject ;;
    "s3 GetObject (version)") echo s3:GetObjectVersion ;;
    "s3 HeadObject") echo s3:GetObject ;;
    "s3 ListObjectsV2" | "s3 HeadBucket") echo s3:ListBucket ;;
    "s3 GetBucketLocation") echo s3:GetBucketLocation ;;
    "sqs ReceiveMessage") echo sqs:ReceiveMessage ;;
    "sqs DeleteMessage" | "sqs DeleteMessageBatch") echo sqs:DeleteMessage ;;
    "sqs ChangeMessageVisibility" | "sqs ChangeMessageVisibilityBatch") echo sqs:ChangeMessageVisibility ;;
    "sqs GetQueueAttributes") echo sqs:GetQueueAttributes ;;
    "sts AssumeRole") echo sts:AssumeRole ;;
    "sts AssumeRoleWithWebIdentity") echo sts:AssumeRoleWithWebIdentity ;;
    "cloudwatch PutMetricData") echo cloudwatch:PutMetricData ;;
    *) echo "UNMAPPED:$svc:$op" ;;
    esac
done | sort -u)
uncovered=$(for a in $need; do grep -qxF -- "$a" <<<"$granted" || echo "$a"; done)
expect_eq "iam-policy.json grants every action bmas calls ($(echo $need))" "$uncovered" ""

# Paths named by the documents. A name with a folder must exist from the top (a module name in
# a diagram may leave out its .c); a bare file name must be some file of the repository.
# Outputs of the build (bin/, build/) and placeholders next to <...> are not files to check.
docs=(README.md docs/*.md emulator/README.md)
expect_eq "docs/ has the project's documents" \
    "$(cd "$top" && ls docs/architecture.md docs/configuration.md docs/formats.md docs/style.md docs/testing.md docs/MIGRATING.md docs/iam-policy.json 2>&1 | wc -l)" 7
known=$(cd "$top" && find . -path ./build -prune -o -path ./.git -prune -o -name node_modules -prune \
    -o -type f -print | sed 's|.*/||' | sort -u)
bad=$(cd "$top" && for doc in "${docs[@]}"; do
    perl -ne 'while (/(?<![\w\/.:>~-])((?:\.\.\/)*(?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(?:md|c|h|sh|js|json|jsonl|txt|yaml|yml|mk|py|awk|allow)|(?:\.\.\/)+[A-Za-z0-9_.\/-]+|(?:tests|core|server|storage|emulator|docs|\.ci)\/[A-Za-z0-9_.\/-]*)(?![\w<*])/g) { print "$1\n" }' "$doc" |
        sort -u | while read -r p; do
            case "$p" in bin/* | build/* | Node.js | lower_snake.c | x.jsonl | expected.json) continue ;; esac
            if [[ "$p" == ../* ]]; then
                echo "$doc: $p (outside the repository)"
            elif [[ "$p" == */* ]]; then
                [ -e "$p" ] || [ -e "$p.c" ] || echo "$doc: $p"
            else
                grep -qxF "$p" <<<"$known" || echo "$doc: $p"
            fi
        done
done)
expect_eq "every path README.md and docs/ name is in the repository" "$bad" ""
outside=$(cd "$top" && grep -nE '(\.\./)+shared|shared/(docs|vectors|samples)|\b(FORMATS|STYLE|DESIGN|CONTRACT|TESTING)\.md' \
    "${docs[@]}" $(git ls-files '*.c' '*.h' 2>/dev/null) 2>/dev/null)
expect_eq "README.md, docs/ and code comments name no document outside the repository" "$outside" ""
tap_done
