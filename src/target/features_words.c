/* The word features: one word, word lists, name lists and lexicons, all one engine
 * (klc_phrases) that either reports presence or aggregates values. */
#include "target/entry_file.h"
#include "target/feature.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct words_feature {
    klc_alloc_ctx ac; /* first, at a fixed address: ph points to it */
    klc_phrases ph;
    bool presence;     /* 0/1 rather than an aggregate */
    int32_t aggregate; /* KLC_AGGREGATE_* */
} words_feature;

static void words_release(void *self) {
    words_feature *wf = self;
    klc_alloc_ctx ac = wf->ac;
    klc_phrases_free(&wf->ph);
    klc_free(&ac, wf, sizeof *wf);
}

static int words_score(void *self, const klc_seq_batch *seqs, double *out) {
    words_feature *wf = self;
    KLC_TRY(klc_seq_batch_need_texts(seqs));
    for (int32_t i = 0; i < seqs->n; i++) {
        int64_t count;
        double sum;
        int st = klc_phrases_scan(&wf->ph, seqs->texts[i] ? seqs->texts[i] : "",
                                  seqs->text_lengths[i], wf->presence, &count, &sum);
        if (st) return klc_fail_context(st, "sequence %d: ", i);
        if (wf->presence)
            out[i] = count > 0 ? 1.0 : 0.0;
        else if (wf->aggregate == KLC_AGGREGATE_COUNT)
            out[i] = (double)count;
        else if (wf->aggregate == KLC_AGGREGATE_MEAN)
            out[i] = count > 0 ? sum / (double)count : 0.0;
        else
            out[i] = sum;
    }
    return KLC_OK;
}

enum { KIND_WORDS, KIND_NAMES, KIND_LEXICON };

static int words_new(const klc_feature_options *o, int kind, words_feature **out) {
    *out = NULL;
    if (kind == KIND_NAMES && (o->flags & KLC_FEATURE_CASELESS))
        return klc_fail(KLC_ERR_INVALID_ARGUMENT,
                        "a name list is always case-sensitive: KLC_FEATURE_CASELESS is refused");
    klc_alloc_ctx ac;
    klc_alloc_ctx_init(&ac, o->allocator);
    words_feature *wf = klc_alloc_zeroed(&ac, sizeof *wf);
    if (!wf) return KLC_ERR_OUT_OF_MEMORY;
    wf->ac = ac;
    wf->presence = kind != KIND_LEXICON;
    wf->aggregate = o->aggregate;
    int st = klc_phrases_init(&wf->ph, &wf->ac, (o->flags & KLC_FEATURE_CASELESS) != 0,
                              kind == KIND_NAMES);
    if (st) {
        klc_free(&ac, wf, sizeof *wf);
        return st;
    }
    *out = wf;
    return KLC_OK;
}

static int words_finish(words_feature *wf, const klc_feature_options *o, const char *kind_name,
                        const char *arg, klc_feature **out) {
    char name[512];
    if (o->name)
        snprintf(name, sizeof name, "%s", o->name);
    else if (arg)
        snprintf(name, sizeof name, "%s:%s", kind_name, arg);
    else
        snprintf(name, sizeof name, "%s", kind_name);
    return klc_feature_wrap_builtin(&wf->ac, name, 1, words_score, words_release, wf, out);
}

static int from_arrays(const char *const *words, const double *values, size_t n,
                       const klc_feature_options *opts, int kind, const char *kind_name,
                       const char *arg, klc_feature **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    KLC_CHECK_ARG(words != NULL);
    KLC_CHECK_ARG(n >= 1);
    klc_feature_options o;
    KLC_TRY(klc_feature_opts_resolve(opts, &o));
    words_feature *wf;
    KLC_TRY(words_new(&o, kind, &wf));
    wf->ph.where_word = "index";
    for (size_t k = 0; k < n; k++) {
        int st;
        if (!words[k])
            st = klc_fail(KLC_ERR_INVALID_ARGUMENT, "NULL");
        else
            st = klc_phrases_add(&wf->ph, words[k], strlen(words[k]), values ? values[k] : 1.0,
                                 (int64_t)k);
        if (st == KLC_ERR_FORMAT) st = KLC_ERR_INVALID_ARGUMENT;
        if (st) {
            words_release(wf);
            return klc_fail_context(st, "%s: entry %zu: ", kind_name, k);
        }
    }
    return words_finish(wf, &o, kind_name, arg, out);
}

static int from_file(const char *path, const klc_feature_options *opts, int kind,
                     const char *kind_name, klc_feature **out) {
    KLC_CHECK_ARG(out != NULL);
    *out = NULL;
    KLC_CHECK_ARG(path != NULL);
    klc_feature_options o;
    KLC_TRY(klc_feature_opts_resolve(opts, &o));
    words_feature *wf;
    KLC_TRY(words_new(&o, kind, &wf));
    int st = klc_entry_file_read(&wf->ph, path, kind == KIND_LEXICON, o.default_value);
    if (st) {
        words_release(wf);
        return st;
    }
    return words_finish(wf, &o, kind_name, klc_base_name(path), out);
}

int klc_feature_word(const char *word, const klc_feature_options *opts, klc_feature **out) {
    KLC_CHECK_ARG(word != NULL);
    return from_arrays(&word, NULL, 1, opts, KIND_WORDS, "word", word, out);
}

int klc_feature_word_list(const char *const *words, size_t n, const klc_feature_options *opts,
                          klc_feature **out) {
    return from_arrays(words, NULL, n, opts, KIND_WORDS, "word_list", NULL, out);
}

int klc_feature_word_list_file(const char *path, const klc_feature_options *opts,
                               klc_feature **out) {
    return from_file(path, opts, KIND_WORDS, "word_list", out);
}

int klc_feature_lexicon(const char *const *words, const double *values, size_t n,
                        const klc_feature_options *opts, klc_feature **out) {
    KLC_CHECK_ARG(values != NULL);
    for (size_t k = 0; k < n; k++)
        if (!isfinite(values[k]))
            return klc_fail(KLC_ERR_INVALID_ARGUMENT, "lexicon: values[%zu] = %g is not finite", k,
                            values[k]);
    return from_arrays(words, values, n, opts, KIND_LEXICON, "lexicon", NULL, out);
}

int klc_feature_lexicon_file(const char *path, const klc_feature_options *opts, klc_feature **out) {
    return from_file(path, opts, KIND_LEXICON, "lexicon", out);
}

int klc_feature_name_list(const char *const *names, size_t n, const klc_feature_options *opts,
                          klc_feature **out) {
    return from_arrays(names, NULL, n, opts, KIND_NAMES, "name_list", NULL, out);
}

int klc_feature_name_list_file(const char *path, const klc_feature_options *opts,
                               klc_feature **out) {
    return from_file(path, opts, KIND_NAMES, "name_list", out);
}
