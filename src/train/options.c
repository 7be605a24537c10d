/* The trainer's options: defaults, and the checks that need no handle. */
#include "trainer.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

int klc_trainer_options_init(klc_trainer_options *opts, uint32_t version) {
    if (!opts) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_trainer_options_init: NULL opts");
    if (version < 1 || version > KLC_TRAINER_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_UNSUPPORTED,
                        "klc_trainer_options_init: version %u (this library knows 1..%d)", version,
                        KLC_TRAINER_OPTIONS_VERSION);
    /* A caller compiled against an older version has a shorter struct: write only its
     * fields. */
    memset(opts, 0, tr_options_size(version));
    opts->version = version;
    opts->batch_size = 64;
    opts->eos_id = 50256;
    opts->bos_id = 50256;
    opts->temperature = 1;
    opts->top_p = 1;
    opts->proposal = KLC_PROPOSAL_ON_POLICY;
    opts->z_period = 10;
    opts->eval_samples = 64;
    if (version >= 2) {
        opts->diversity_samples = 500;
        opts->diversity_top_p = 0.9;
        opts->grad_variance_samples = 32;
    }
    return KLC_OK;
}

size_t tr_options_size(uint32_t version) {
    if (version >= 3) return sizeof(klc_trainer_options);
    return version == 2 ? offsetof(klc_trainer_options, contexts)
                        : offsetof(klc_trainer_options, diversity_period);
}
