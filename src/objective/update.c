/* klc_objective_update: all of one step's updates from one batch, whether the objective
 * makes one (the gradient-estimator core, then the optimizer) or runs its own loop (PPO). */
#include "objective.h"
#include "ppo.h"

#include <string.h>

int klc_update_options_init(klc_update_options *opts, uint32_t version) {
    if (!opts) return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_update_options_init: NULL");
    if (version < 1 || version > KLC_UPDATE_OPTIONS_VERSION)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_update_options_init: version %u is not supported (this library "
                        "knows versions 1..%d)",
                        version, KLC_UPDATE_OPTIONS_VERSION);
    memset(opts, 0, sizeof *opts);
    opts->version = version;
    return KLC_OK;
}

int klc_objective_update(klc_objective *obj, klc_model *model, klc_optimizer *opt,
                         const klc_step_view *step, const klc_seqs *seqs,
                         const klc_update_options *opts, klc_metrics *metrics) {
    if (!obj || !model || !opt || !step || !seqs)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_update: NULL objective, model, optimizer, step or seqs");
    klc_update_options uo;
    klc_update_options_init(&uo, KLC_UPDATE_OPTIONS_VERSION);
    if (opts) {
        if (opts->version < 1 || opts->version > KLC_UPDATE_OPTIONS_VERSION)
            return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                            "klc_objective_update: options version %u is not supported (fill "
                            "them with klc_update_options_init)",
                            opts->version);
        uo = *opts;
    }
    if (uo.micro_batch < 0)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "klc_objective_update: micro_batch = %d < 0",
                        uo.micro_batch);
    if (!seqs->tokens || !seqs->lengths)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_update: seqs has NULL tokens or lengths");
    if (step->n_seq != seqs->n_seq || step->max_len != seqs->max_len)
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "klc_objective_update: the step view has %d sequences of max_len %d but "
                        "seqs has %d of %d",
                        step->n_seq, step->max_len, seqs->n_seq, seqs->max_len);
    if (obj->builtin_kind == KLC_OBJECTIVE_PPO)
        return klc_ppo_update(obj, model, opt, step, seqs, &uo, metrics);
    klc_accumulate_options ao;
    klc_accumulate_options_init(&ao, KLC_ACCUMULATE_OPTIONS_VERSION);
    ao.micro_batch = uo.micro_batch;
    KLC_TRY(klc_model_zero_grads(model));
    KLC_TRY(klc_objective_accumulate(obj, model, step, seqs, &ao));
    return klc_optimizer_step_model(opt, model, uo.report);
}
