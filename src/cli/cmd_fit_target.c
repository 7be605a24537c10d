/* klc fit-target CONFIG: fits lambda of the configuration's moment constraints on samples
 * of the base model and reports how well the target is met. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "cli/train_config.h"

static const char usage[] =
    "usage: klc fit-target CONFIG [-o key.path=value]...\n"
    "\n"
    "Samples target.fit.samples texts from the configuration's base model, scores the\n"
    "target's features on them and fits lambda so that the target's moments meet their\n"
    "wanted means (klc_target_fit). Prints lambda, the moments reached against the\n"
    "targets, the residuals, the iterations and the effective sample size. An infeasible\n"
    "target (a mean outside what the samples reach) fails with exit status 1.\n"
    "\n"
    "  -o, --override K=V   set a key of the configuration (repeatable)\n"
    "  -h, --help           this help\n";

int klc_cmd_fit_target(int argc, char **argv) {
    cli_args a;
    int rc0 = cli_parse("fit-target", usage, argc, argv, &a, NULL, NULL);
    if (rc0 >= 0) return rc0;
    if (!a.config) return cli_usage_error("fit-target", usage, "missing CONFIG%s", "");
    cfg *c = cli_load_config("fit-target", &a);
    if (!c) return 2;
    train_settings s;
    if (train_settings_read(c, &s)) {
        fprintf(stderr, "klc fit-target: %s\n", cfg_error(c));
        cfg_free(c);
        return 2;
    }
    if (s.fit_samples == 0) {
        fprintf(stderr, "klc fit-target: target.fit.samples is 0: nothing to fit on\n");
        cfg_free(c);
        return 2;
    }
    if (s.n_moments == 0) {
        fprintf(stderr,
                "klc fit-target: %s has no moment constraints (target.moments): there "
                "is no lambda to fit\n",
                a.config);
        cfg_free(c);
        return 2;
    }
    engine e;
    int rc = 1;
    if (engine_load(&e, &s, NULL)) goto done;
    int32_t nl = klc_target_num_lambda(e.target);
    double residual[2 * MAX_TERMS], lambda[2 * MAX_TERMS], mu_bar[2 * MAX_TERMS];
    klc_fit_report r = {.version = KLC_FIT_REPORT_VERSION, .residual = residual};
    int st = engine_fit(&e, &s, &r);
    if (st != KLC_OK) {
        if (r.infeasible)
            fprintf(stderr,
                    "klc fit-target: the target is infeasible on %d samples of the base "
                    "model: %s\n",
                    s.fit_samples, klc_last_error());
        else
            engine_report_error("fit-target", "fit", st);
        goto done;
    }
    klc_target_get_lambda(e.target, lambda, (size_t)nl);
    klc_target_get_mu_bar(e.target, mu_bar, (size_t)nl);
    printf("fitted on %lld samples of the base model in %d iterations (%s)\n", (long long)r.n_used,
           r.iterations, r.converged ? "converged" : "not converged");
    printf("%-32s %12s %12s %12s %12s\n", "feature", "lambda", "target", "reached", "residual");
    int32_t nt = klc_target_num_terms(e.target);
    for (int32_t t = 0; t < nt; t++) {
        klc_term_info ti = {.version = KLC_TERM_INFO_VERSION};
        klc_target_term_info(e.target, t, &ti);
        if (ti.kind != KLC_TERM_MOMENT) continue;
        for (int32_t k = 0; k < ti.dim; k++) {
            int32_t j = ti.lambda_offset + k;
            printf("%-32s %12.5g %12.5g %12.5g %12.3g\n", ti.name, lambda[j], mu_bar[j],
                   mu_bar[j] - residual[j], residual[j]);
        }
    }
    printf("residual norm %.3g, effective sample size %.1f, largest weight share %.3g\n",
           r.residual_norm, r.ess, r.max_weight_share);
    rc = 0;
done:
    engine_free(&e);
    cfg_free(c);
    return rc;
}
