/* The regular-expression feature: PCRE2 with Unicode semantics, JIT when available. */
#include "target/feature.h"
#include "target/pcre_ctx.h"

#include <stdio.h>
#include <string.h>

typedef struct regex_feature {
    klc_alloc_ctx ac; /* at a fixed address: gctx allocates through it */
    pcre2_general_context *gctx;
    pcre2_code *code;
    pcre2_match_data *md;
} regex_feature;

static void regex_release(void *self) {
    regex_feature *rf = self;
    klc_alloc_ctx ac = rf->ac;
    pcre2_match_data_free(rf->md);
    pcre2_code_free(rf->code);
    pcre2_general_context_free(rf->gctx);
    klc_free(&ac, rf, sizeof *rf);
}

static int regex_score(void *self, const klc_seq_batch *seqs, double *out) {
    regex_feature *rf = self;
    KLC_TRY(klc_seq_batch_need_texts(seqs));
    for (int32_t i = 0; i < seqs->n; i++) {
        const char *t = seqs->texts[i] ? seqs->texts[i] : "";
        int rc = pcre2_match(rf->code, (PCRE2_SPTR)t, seqs->text_lengths[i], 0, 0, rf->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) {
            out[i] = 0.0;
        } else if (rc >= 0) {
            out[i] = 1.0;
        } else {
            char what[64];
            snprintf(what, sizeof what, "sequence %d: match failed", i);
            return klc_pcre_fail(KLC_ERR_UNSUPPORTED, rc, what);
        }
    }
    return KLC_OK;
}

int klc_feature_regex(const char *pattern, const klc_feature_options *opts, klc_feature **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    KLC_CHECK_ARG(pattern != NULL);
    klc_feature_options o;
    KLC_TRY(klc_feature_opts_resolve(opts, &o));
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, o.allocator);
    regex_feature *rf = klc_alloc_zeroed(&ac, sizeof *rf);
    if (!rf) return KLC_ERR_OUT_OF_MEMORY;
    rf->ac = ac;
    rf->gctx = klc_pcre_context(&rf->ac);
    pcre2_compile_context *cc = rf->gctx ? pcre2_compile_context_create(rf->gctx) : NULL;
    if (!cc) {
        regex_release(rf);
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating a PCRE2 context");
    }
    uint32_t flags = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
    if (o.flags & KLC_FEATURE_CASELESS) flags |= PCRE2_CASELESS;
    int err;
    PCRE2_SIZE off;
    rf->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, flags, &err, &off, cc);
    pcre2_compile_context_free(cc);
    if (!rf->code) {
        regex_release(rf);
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(err, msg, sizeof msg) < 0) msg[0] = '\0';
        return klc_fail(KLC_ERR_INVALID_ARGUMENT, "regex '%s': %s at offset %zu", pattern,
                        (const char *)msg, (size_t)off);
    }
    (void)pcre2_jit_compile(rf->code, PCRE2_JIT_COMPLETE);
    rf->md = pcre2_match_data_create_from_pattern(rf->code, rf->gctx);
    if (!rf->md) {
        regex_release(rf);
        return klc_fail(KLC_ERR_OUT_OF_MEMORY, "out of memory creating PCRE2 match data");
    }
    char name[512];
    if (o.name)
        snprintf(name, sizeof name, "%s", o.name);
    else
        snprintf(name, sizeof name, "regex:%s", pattern);
    return klc_feature_wrap_builtin(&rf->ac, name, 1, regex_score, regex_release, rf, out);
}
