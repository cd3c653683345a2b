# json-cli.sh: finds the pip AWS CLI v1 (JSON 1.0 for SQS and CloudWatch) next to Debian's
# /usr/bin/aws; sourced by itest-lib.sh, and once by run-itest.sh, which exports the answer
# (ITEST_JSON_CLI, ITEST_HAVE_JSON_CLI) so each script does not find it again (a pyenv shim
# and a CLI start cost about a second of CPU per script). Sets JSON_CLI and HAVE_JSON_CLI.
if [ -n "${ITEST_HAVE_JSON_CLI:-}" ]; then
    JSON_CLI=${ITEST_JSON_CLI:-}
    HAVE_JSON_CLI=$ITEST_HAVE_JSON_CLI
else
    HAVE_JSON_CLI=0
    JSON_CLI=$(command -v aws 2>/dev/null || true)
    # A pyenv shim re-resolves the program on every call (a quarter second each): resolve it once.
    case "$JSON_CLI" in
    */.pyenv/shims/*) JSON_CLI=$(pyenv which aws 2>/dev/null || echo "$JSON_CLI") ;;
    esac
    if [ -n "$JSON_CLI" ] && [ "$(readlink -f "$JSON_CLI")" != "$(readlink -f /usr/bin/aws)" ]; then
        # Its version from its own Python (importing awscli alone), else from the CLI itself.
        _jc_py=$(head -1 "$JSON_CLI" 2>/dev/null | sed -n 's/^#! *\(\/[^ ]*python[0-9.]*\)$/\1/p')
        if [ -n "$_jc_py" ] && [ -x "$_jc_py" ]; then
            _jc_v=$("$_jc_py" -c 'import awscli, sys; sys.stdout.write("aws-cli/" + awscli.__version__)' 2>/dev/null)
        else
            _jc_v=$("$JSON_CLI" --version 2>&1)
        fi
        case "$_jc_v" in aws-cli/1.*) HAVE_JSON_CLI=1 ;; esac
        unset _jc_py _jc_v
    fi
fi
