#include "keep.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

/* A 64-bit hash of the parameters, to tell whether they changed since decoding: four
 * independent multiply-xorshift lanes over 64-bit words (about a millisecond for 5 M
 * parameters; any change of any bit changes it but with probability 2^-64). */
static uint64_t params_hash(const klc_model *m) {
    const size_t bytes = m->n_params * sizeof(float), words = bytes / 8;
    const unsigned char *p = (const unsigned char *)m->params;
    uint64_t h[4] = {0x9E3779B97F4A7C15u, 0xC2B2AE3D27D4EB4Fu, 0x165667B19E3779F9u,
                     0x27D4EB2F165667C5u};
    size_t i = 0;
    for (; i + 4 <= words; i += 4)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, p + (i + (size_t)k) * 8, 8);
            h[k] = (h[k] ^ w) * 0xFF51AFD7ED558CCDu;
            h[k] ^= h[k] >> 29;
        }
    uint64_t out = bytes;
    for (; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + i * 8, 8);
        out = (out ^ w) * 0xFF51AFD7ED558CCDu;
    }
    if (bytes % 8) {
        uint64_t w = 0;
        memcpy(&w, p + words * 8, bytes % 8);
        out = (out ^ w) * 0xFF51AFD7ED558CCDu;
    }
    for (int k = 0; k < 4; k++) {
        out = (out ^ h[k]) * 0xC4CEB9FE1A85EC53u;
        out ^= out >> 33;
    }
    return out;
}

int klc_keep_begin(klc_model *m, int32_t n_seq, int32_t max_len) {
    m->kept.state = KLC_KEPT_NONE;
    const klc_activations *a = m->ws.acts;
    const int64_t S = max_len - 1, H = m->cfg.n_head;
    if (!a || !a->cap.training || S < 1 || n_seq < 1) return 0;
    if (n_seq > a->cap.n_seq || max_len > a->cap.tmax || (int64_t)n_seq * S > a->cap.rows ||
        (int64_t)n_seq * H * S * S > a->cap.att)
        return 0;
    m->kept.state = KLC_KEPT_FILLING;
    m->kept.n_seq = n_seq;
    m->kept.stride = (int32_t)S;
    m->fwd_valid = 0; /* the workspace is being overwritten */
    return 1;
}

/* One row, bypassing the caches when it can: the rows are read back only by the backward,
 * long after the cache has moved on, and streaming stores save reading each line before
 * writing it. */
static void copy_row(float *dst, const float *src, int64_t width) {
#ifdef __SSE__
    if (width % 4 == 0 && ((uintptr_t)dst & 15) == 0) {
        for (int64_t k = 0; k < width; k += 4) _mm_stream_ps(dst + k, _mm_loadu_ps(src + k));
        return;
    }
#endif
    memcpy(dst, src, sizeof(float) * (size_t)width);
}

void klc_keep_rows(float *dst, int64_t width, const float *src, const int64_t *dest, int32_t n) {
    /* Memory-bound copies to rows far apart: worth a second thread once they are long. */
#pragma omp parallel if ((int64_t)n * width >= 8192)
    {
#pragma omp for schedule(static)
        for (int32_t j = 0; j < n; j++)
            copy_row(dst + dest[j] * width, src + (int64_t)j * width, width);
#ifdef __SSE__
        _mm_sfence(); /* each thread's streaming stores are weakly ordered */
#endif
    }
}

float *klc_keep_att_row(const klc_model *m, int layer, int32_t i, int h, int32_t t) {
    const int64_t S = m->kept.stride, H = m->cfg.n_head;
    return m->ws.acts->layers[layer].att + (((int64_t)i * H + h) * S + t) * S;
}

/* Moves each sequence's rows from i*stride to its packed offset; destinations never pass
 * the sources still to be read (offset_i <= i*stride, rows_i <= stride). */
static void compact_rows(float *buf, int64_t width, const int64_t *off, const int32_t *rows,
                         int32_t n_seq, int64_t S) {
    if (!buf) return;
    for (int32_t i = 0; i < n_seq; i++)
        if (off[i] != (int64_t)i * S)
            memmove(buf + off[i] * width, buf + (int64_t)i * S * width,
                    sizeof(float) * (size_t)(rows[i] * width));
}

void klc_keep_finish(klc_model *m, const int32_t *tokens, const int32_t *lengths, int32_t n_seq,
                     int32_t max_len) {
    klc_activations *a = m->ws.acts;
    if (m->kept.state != KLC_KEPT_FILLING || n_seq != m->kept.n_seq) {
        m->kept.state = KLC_KEPT_NONE;
        return;
    }
    const int64_t S = m->kept.stride, C = m->cfg.n_embd, H = m->cfg.n_head;
    /* The packing tables of the trimmed batch (the forward fills the same ones again). */
    int64_t row = 0, att = 0;
    for (int32_t i = 0; i < n_seq; i++) {
        const int32_t rows = lengths[i] - 1;
        if (rows < 1 || rows > S) {
            m->kept.state = KLC_KEPT_NONE;
            return;
        }
        a->row_off[i] = row;
        a->att_off[i] = att;
        a->len[i] = rows;
        row += rows;
        att += H * rows * rows;
    }
    const int64_t *off = a->row_off;
    const int32_t *rows = a->len;
    compact_rows(a->encoded, C, off, rows, n_seq, S);
    compact_rows(a->lnf, C, off, rows, n_seq, S);
    compact_rows(a->lnf_mean, 1, off, rows, n_seq, S);
    compact_rows(a->lnf_rstd, 1, off, rows, n_seq, S);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        klc_layer_acts *L = &a->layers[l];
        float *const by_c[] = {L->ln1, L->atty, L->res2, L->ln2, L->res3};
        for (size_t k = 0; k < sizeof by_c / sizeof *by_c; k++)
            compact_rows(by_c[k], C, off, rows, n_seq, S);
        float *const by_1[] = {L->ln1_mean, L->ln1_rstd, L->ln2_mean, L->ln2_rstd};
        for (size_t k = 0; k < sizeof by_1 / sizeof *by_1; k++)
            compact_rows(by_1[k], 1, off, rows, n_seq, S);
        compact_rows(L->qkv, 3 * C, off, rows, n_seq, S);
        compact_rows(L->fch, 4 * C, off, rows, n_seq, S);
        if (L->fch_gelu != L->fch) compact_rows(L->fch_gelu, 4 * C, off, rows, n_seq, S);
        /* Attention: [H][S][S] per sequence to [H][T][T], T = its rows; each query row keeps
         * its first T probabilities (the rest are zeros either way). */
        for (int32_t i = 0; i < n_seq; i++) {
            const int64_t T = rows[i];
            for (int64_t h = 0; h < H; h++)
                for (int64_t t = 0; t < T; t++) {
                    float *dst = L->att + a->att_off[i] + (h * T + t) * T;
                    const float *src = L->att + (((int64_t)i * H + h) * S + t) * S;
                    if (dst != src) memmove(dst, src, sizeof(float) * (size_t)T);
                }
        }
    }
    for (int32_t i = 0; i < n_seq; i++) {
        a->kept_len[i] = lengths[i];
        memcpy(a->kept_tokens + (int64_t)i * a->cap.tmax, tokens + (int64_t)i * max_len,
               sizeof(int32_t) * (size_t)lengths[i]);
    }
    m->kept.params_hash = params_hash(m);
    m->kept.state = KLC_KEPT_READY;
}

void klc_keep_drop(klc_model *m) {
    m->kept.state = KLC_KEPT_NONE;
}

int klc_keep_matches(const klc_model *m, const klc_seqs *s) {
    const klc_activations *a = m->ws.acts;
    if (m->kept.state != KLC_KEPT_READY || !a || s->n_seq != m->kept.n_seq) return 0;
    for (int32_t i = 0; i < s->n_seq; i++) {
        const int32_t len = s->lengths[i];
        if (len != a->kept_len[i] ||
            memcmp(s->tokens + (int64_t)i * s->max_len, a->kept_tokens + (int64_t)i * a->cap.tmax,
                   sizeof(int32_t) * (size_t)len) != 0)
            return 0;
    }
    return params_hash(m) == m->kept.params_hash;
}
