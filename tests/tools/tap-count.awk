# tap-count.awk: reads one test program's TAP output and prints one line,
#   PASSED FAILED SKIPPED SEEN PLANNED PLANS UNLISTED
# for the runners (run-unit.sh, run-itest.sh) to judge. A binary with several cmocka groups
# prints several plans: PLANNED is their sum. A skip ("# SKIP" in a test line, or the old
# "ok - SKIP" form) counts as listed only when tests/skips.allow has a line
#   NAME | TEXT | REASON
# with NAME the program's file name, TEXT found in the skip line and a non-empty REASON;
# every other skip is echoed with a "# unlisted skip:" prefix and counted in UNLISTED.
# Variables: name (program file name), allow (path of the allow-list).
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
BEGIN {
    nallow = 0
    while (allow != "" && (getline line < allow) > 0) {
        if (line ~ /^[ \t]*(#|$)/)
            continue
        n = split(line, f, "|")
        if (n < 3 || trim(f[1]) == "" || trim(f[2]) == "" || trim(f[3]) == "")
            continue
        nallow++
        aname[nallow] = trim(f[1])
        atext[nallow] = trim(f[2])
    }
    passed = failed = skipped = seen = planned = plans = unlisted = 0
}
/^1\.\.[0-9]+/ { planned += substr($0, 4) + 0; plans++; next }
/^(not )?ok([ \t]|$)/ {
    seen++
    if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/ || $0 ~ /^ok - SKIP/) {
        skipped++
        ok = 0
        for (i = 1; i <= nallow; i++)
            if (aname[i] == name && index($0, atext[i]) > 0)
                ok = 1
        if (!ok) {
            unlisted++
            print "# unlisted skip: " $0 > "/dev/stderr"
        }
        next
    }
    if ($0 ~ /^not ok/)
        failed++
    else
        passed++
}
END { print passed, failed, skipped, seen, planned, plans, unlisted }
