# lint-tap.awk: finds `t_ok "name" [ A ] && [ B ]` (and ||, ;) in test scripts: the shell runs
# the part after && outside t_ok, so it is never asserted. Compound checks use t_all. Prints
# FILE:LINE: TEXT for each finding. Quoted strings are dropped before looking, so `eval '… && …'`
# stays allowed.
# The characters of t outside quotes and $(...), with quoting rules close enough to the shell's
# for these scripts: '…' is literal, "…" may hold $(…), which may hold quotes of its own.
function toplevel(t,    out, i, c, n, st, depth) {
    out = ""
    n = length(t)
    depth = 0     # $( ) nesting
    st = ""       # stack of quote states, one char per level: q (double) or blank
    for (i = 1; i <= n; i++) {
        c = substr(t, i, 1)
        if (c == "\\") { i++; continue }
        if (c == "'" && substr(st, length(st)) != "q") {
            i = index(substr(t, i + 1), "'") + i
            continue
        }
        if (c == "$" && substr(t, i + 1, 1) == "(") { depth++; st = st " "; i++; continue }
        if (c == ")" && depth > 0 && substr(st, length(st)) != "q") {
            depth--; st = substr(st, 1, length(st) - 1); continue
        }
        if (c == "\"") {
            if (substr(st, length(st)) == "q") st = substr(st, 1, length(st) - 1)
            else st = st "q"
            continue
        }
        if (st == "" && depth == 0)
            out = out c
    }
    return out
}
{
    line = $0
    if (cont == "")
        start = FNR
    if (line ~ /\\$/) {
        cont = cont substr(line, 1, length(line) - 1) " "
        next
    }
    text = cont line
    cont = ""
    if (text !~ /^[ \t]*(t_ok|t_eq|t_all|t_range)[ \t]/)
        next
    s = toplevel(text)
    if (s ~ /(&&|\|\||;|[^>]\|[^|])/)
        printf "%s:%d: %s\n", FILENAME, start, text
}
