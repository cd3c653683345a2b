# tap.sh: tiny assertion helpers for the integration scripts (sourced). Each check prints
# "ok - name" or "not ok - name" with what differed, and failures make the script exit 1.
# tap_done prints the TAP plan (the runner compares it with the checks it saw).
TAP_FAILED=0
TAP_N=0
ok() { TAP_N=$((TAP_N + 1)); echo "ok - $1"; }
not_ok() { TAP_N=$((TAP_N + 1)); echo "not ok - $1"; TAP_FAILED=1; }
# skip NAME REASON: a skipped check (the runner fails it unless tests/skips.allow lists it)
skip() { TAP_N=$((TAP_N + 1)); echo "ok - $1 # SKIP $2"; }
# expect_eq NAME GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   got:  $2"; echo "#   want: $3"; fi
}
# expect_contains NAME HAYSTACK NEEDLE
expect_contains() {
    case "$2" in
    *"$3"*) ok "$1" ;;
    *) not_ok "$1"; echo "#   \"$3\" not in: $(printf '%s' "$2" | head -c 600)" ;;
    esac
}
tap_done() { echo "1..$TAP_N"; exit $TAP_FAILED; }
