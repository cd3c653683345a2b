/* bm_emu.h: the one public header of libbm_emu, the local AWS emulator (S3, SQS, CloudWatch and
 * STS on one port, SigV4-verified, with fault injection). main.c and the tests drive it through
 * this. */
#ifndef BM_EMU_H
#define BM_EMU_H

#include "core/bm_rt.h"

/* Start-up options; strings are borrowed for the duration of bm_emu_new (it copies them). */
struct bm_emu_opts {
    const char *listen;        /* "ADDR:PORT", port 0 = any free port; default 127.0.0.1:4566 */
    const char *data_dir;      /* state kept across restarts here; NULL = memory only */
    const char *credentials;   /* "AKID:SECRET,..." accepted besides test:test; may be NULL */
    const char *region;        /* region in ARNs, queue URLs and events; default us-east-1 */
    uint64_t seed;             /* PRNG seed for fault rates and ids (0 = from the clock) */
    long skew_seconds;         /* accepted clock skew of signed requests; default 900 */
    uint64_t max_object_bytes; /* largest S3 object body; default 256 MiB */
    uint64_t max_body_bytes;   /* largest other request body; default 2 MiB */
};

struct bm_emu;

/* Fills opts with the defaults above. */
void bm_emu_opts_init(struct bm_emu_opts *opts);

/* Creates an emulator and loads the state of opts->data_dir when set. BM_E_CONFIG with em on a
 * bad option or unreadable state, BM_E_NOMEM. *out is freed with bm_emu_free. */
bm_err bm_emu_new(const struct bm_emu_opts *opts, struct bm_emu **out, struct bm_errmsg *em);

/* Binds the listen address and starts serving on MHD's threads (one per connection, so that
 * a long-polling ReceiveMessage never holds up other requests). BM_E_IO with em when the
 * address cannot be bound. */
bm_err bm_emu_start(struct bm_emu *emu, struct bm_errmsg *em);

/* The bound TCP port (useful with port 0); 0 before bm_emu_start. */
uint16_t bm_emu_port(const struct bm_emu *emu);

/* Stops serving: wakes long polls, waits for in-flight requests and writes the state to the
 * data folder when one is set. Idempotent; call from one thread. */
bm_err bm_emu_stop(struct bm_emu *emu);

/* Releases everything; accepts NULL. Stops the emulator first if it is running. */
void bm_emu_free(struct bm_emu *emu);

#endif
