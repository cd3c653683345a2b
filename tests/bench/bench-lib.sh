# bench-lib.sh: what the storage benchmarks' drivers share (sourced from the repository's top).
#
#   bench_build NAME    builds tests/bench/NAME.c against the release storage and core
#                       libraries into build/bench/NAME when it is missing or older than its
#                       sources, and prints that path

bench_build() {
    local name=$1 bin=build/bench/$1
    mkdir -p build/bench
    make -s --no-print-directory build/rel/libbm_storage.a build/rel/libbm_core.a >&2
    if [ ! -x "$bin" ] || [ "tests/bench/$name.c" -nt "$bin" ] || [ tests/bench/bench_tu.h -nt "$bin" ] ||
       [ build/rel/libbm_storage.a -nt "$bin" ] || [ build/rel/libbm_core.a -nt "$bin" ]; then
        ${CC:-cc} -O2 -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I. \
            -o "$bin" "tests/bench/$name.c" build/rel/libbm_storage.a build/rel/libbm_core.a \
            $(pkg-config --libs sqlite3 libcjson zlib libcrypto libpq) -lm -pthread >&2 || return 1
    fi
    echo "$bin"
}
