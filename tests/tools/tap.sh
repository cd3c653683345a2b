# tap.sh: tiny assertion helpers for the integration scripts (sourced). Each check prints
# "ok - name" or "not ok - name" with what differed, and failures make the script exit 1.
TAP_FAILED=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; TAP_FAILED=1; }
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
tap_done() { exit $TAP_FAILED; }
