/* bench_blas: what this machine's OpenBLAS delivers for the matrix products of a GPT-2
 * training step and of decoding, in every storage layout, plus memory bandwidth and the
 * weight-streaming bound of batch-1 decode. The model picks its layouts from these figures
 * and "forward+backward at 70% of the sgemm rate" is judged against them
 * (bench/RESULTS-blas.md).
 *
 * The machine is shared and noisy, so every measurement is repeated in rounds: one round
 * runs every case once with each thread count, and the report gives medians over rounds.
 * Interleaving at this grain means a burst of load from someone else's compile spreads over
 * all cases instead of wiping out one of them. */

#include "core/internal.h"

#include <cblas.h>
#include <omp.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS    64
#define MAX_THREADS 2

typedef struct {
    const char *name;
    int n_layer, C, V, n_head, B, T;
} Shape;

static const Shape SHAPES[] = {
    {"gpt2-small", 12, 768, 50257, 12, 8, 256},
    {"klc-small", 4, 256, 8192, 4, 8, 256},
};
#define N_SHAPES  ((int)(sizeof SHAPES / sizeof SHAPES[0]))
#define HEAD_DIM  64
#define M_TRAIN   2048
#define M_DECODE  64
#define N_LINEAR  4
#define STREAM_N  ((size_t)1 << 28) /* floats: 1 GiB per array, well past the 300 MiB L3 */
#define SWEEP_MAX 64                /* largest batch of the decode weight sweeps */

/* The four weight matrices of a block as (in K, out N) multiples of C. */
static const struct {
    const char *name;
    int kmul, nmul;
} LINEAR[N_LINEAR] = {{"qkv", 1, 3}, {"attn_proj", 1, 1}, {"fc", 1, 4}, {"mlp_proj", 4, 1}};

enum { K_GEMM, K_GEMV, K_ATTN, K_SWEEP, K_STREAM };
enum { ATTN_S, ATTN_O, ATTN_DP, ATTN_DV, ATTN_DQ, ATTN_DK, N_ATTN };
static const char *ATTN_NAME[N_ATTN] = {"S=QK^T",   "O=PV",   "dP=dOV^T",
                                        "dV=P^TdO", "dQ=dSK", "dK=dS^TQ"};
enum { STREAM_COPY, STREAM_TRIAD, STREAM_READ };
static const char *STREAM_NAME[] = {"copy", "triad", "read"};

typedef struct {
    int kind;
    int shape; /* index into SHAPES, -1 for none */
    const char *group;
    char product[24];
    char layout[12];
    char storage[12]; /* the weight storage this layout serves with token-major activations */
    char variant[12];
    int M;
    CBLAS_TRANSPOSE ta, tb;
    int m, n, k, lda, ldb, ldc;
    float beta;
    int op; /* attention product, stream kernel, or sweep storage */
    double scale;
    double flops, bytes; /* per call */
    int thread_mask;     /* bit t-1: run with t threads */
    int inner;           /* calls per sample, so that a sample lasts long enough to time */
    double est_s;        /* warm-up estimate of one sample, all thread counts */
    double samples[MAX_THREADS][MAX_REPS];
    int nsamples[MAX_THREADS];
} Case;

/* Attention buffers for one shape: the fused qkv layout [B*T, 3C] the model keeps, and a
 * head-major packed copy [B, H, T, 64] to see what the strided layout costs. */
typedef struct {
    float *qkv, *dqkv, *o, *dout;
    float *pk, *dpk, *pko, *pkdo;
    float *p, *ds;
} AttnBufs;

/* One full set of a shape's decode weights, so a sweep reads what one token really reads. */
typedef struct {
    float *w;
    size_t layer_floats, head_floats;
    float *x, *y;
} SweepBufs;

static struct {
    int quick, json, reps, reps_given, full_vocab, all_layouts, threads[MAX_THREADS], n_threads;
    const char *only_shape, *sections;
    double min_sample, budget;
} opt;

static Case *cases;
static int n_cases, cap_cases;
static float *g_a, *g_b, *g_c;
static size_t need_a, need_b, need_c;
static float *g_x, *g_y;
static size_t need_xy;
static float *s_a, *s_b, *s_c;
static size_t ring_off;
static AttnBufs attn_bufs[N_SHAPES];
static SweepBufs sweep_bufs[N_SHAPES];
static volatile float sink;
static FILE *human;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *msg) {
    fprintf(stderr, "bench_blas: %s\n", msg);
    exit(1);
}

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) die("out of memory");
    return p;
}

/* Values of order 0.01 keep repeated accumulation (beta = 1) far from overflow and away
 * from denormals, either of which would distort the timings. */
static void fill(float *p, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1u;
#pragma omp parallel for schedule(static) firstprivate(s)
    for (size_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)i * 2246822519u ^ s;
        h ^= h >> 15;
        h *= 2654435761u;
        h ^= h >> 13;
        p[i] = ((float)(h & 0xffff) / 65536.0f - 0.5f) * 0.02f;
    }
}

static int section_on(const char *name) {
    if (!opt.sections) return 1;
    const char *p = strstr(opt.sections, name);
    size_t n = strlen(name);
    return p && (p == opt.sections || p[-1] == ',') && (p[n] == 0 || p[n] == ',');
}

static Case *add_case(int kind, int shape, const char *group, const char *product) {
    if (n_cases == cap_cases) {
        cap_cases = cap_cases ? 2 * cap_cases : 256;
        cases = realloc(cases, (size_t)cap_cases * sizeof *cases);
        if (!cases) die("out of memory");
    }
    Case *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->shape = shape;
    c->group = group;
    snprintf(c->product, sizeof c->product, "%s", product);
    c->scale = 1.0;
    c->thread_mask = 3;
    c->inner = 1;
    return c;
}

static void max_size(size_t *need, size_t n) {
    if (n > *need) *need = n;
}

static const char *tr_name(CBLAS_TRANSPOSE t) {
    return t == CblasNoTrans ? "N" : "T";
}

/* One row-major C[m,n] = op(A)[m,k] op(B)[k,n] problem with leading dimensions as if each
 * operand were stored densely in the orientation the layout implies. */
static Case *add_gemm(int shape, const char *group, int M, const char *product, int m, int n, int k,
                      CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, float beta, const char *storage,
                      double scale) {
    Case *c = add_case(K_GEMM, shape, group, product);
    c->M = M;
    c->m = m, c->n = n, c->k = k;
    c->ta = ta, c->tb = tb;
    c->lda = ta == CblasNoTrans ? k : m;
    c->ldb = tb == CblasNoTrans ? n : k;
    c->ldc = n;
    c->beta = beta;
    c->scale = scale;
    snprintf(c->layout, sizeof c->layout, "%s%s", tr_name(ta), tr_name(tb));
    snprintf(c->storage, sizeof c->storage, "%s", storage ? storage : "");
    c->flops = 2.0 * m * n * k;
    c->bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n);
    max_size(&need_a, (size_t)m * k);
    max_size(&need_b, (size_t)k * n);
    max_size(&need_c, (size_t)m * n);
    return c;
}

static const CBLAS_TRANSPOSE TR[2] = {CblasNoTrans, CblasTrans};

/* All four layouts of one product; `tags` names the weight storage served by NN, NT, TN, TT
 * when activations are token-major ([tokens, features]), NULL where none is. */
static void add_gemm4(int shape, const char *group, int M, const char *product, int m, int n, int k,
                      float beta, const char *const tags[4], double scale) {
    for (int i = 0; i < 4; i++)
        add_gemm(shape, group, M, product, m, n, k, TR[i >> 1], TR[i & 1], beta, tags[i], scale);
}

static void build_gemm_cases(int s) {
    const Shape *sh = &SHAPES[s];
    const int C = sh->C;
    static const char *const KN = "W[K,N]", *const NK = "W[N,K]";
    if (section_on("train")) {
        const int M = M_TRAIN;
        char name[24];
        for (int l = 0; l < N_LINEAR; l++) {
            const int K = LINEAR[l].kmul * C, N = LINEAR[l].nmul * C;
            /* Y = X W; dX = dY W^T; dW += X^T dY (or dY^T X when W is stored [N,K]). */
            snprintf(name, sizeof name, "fwd_%s", LINEAR[l].name);
            add_gemm4(s, "train", M, name, M, N, K, 0.0f, (const char *const[]){KN, NK, 0, 0}, 1.0);
            snprintf(name, sizeof name, "dX_%s", LINEAR[l].name);
            add_gemm4(s, "train", M, name, M, K, N, 0.0f, (const char *const[]){NK, KN, 0, 0}, 1.0);
            snprintf(name, sizeof name, "dW_%s[K,N]", LINEAR[l].name);
            add_gemm4(s, "train", M, name, K, N, M, 1.0f, (const char *const[]){0, 0, KN, 0}, 1.0);
            snprintf(name, sizeof name, "dW_%s[N,K]", LINEAR[l].name);
            add_gemm4(s, "train", M, name, N, K, M, 1.0f, (const char *const[]){0, 0, NK, 0}, 1.0);
        }
        /* The tied head keeps wte [V,C]; [C,V] would need an untied or transposed copy.
         * GPT-2 small's full vocabulary would make each product 160 GFLOP, so by default a
         * slice of it is timed: past a few thousand columns OpenBLAS's blocking, and so the
         * rate, no longer depends on the vocabulary size. */
        const int Vs = opt.full_vocab || sh->V <= 8192 ? sh->V : (opt.quick ? 4096 : 8192);
        const double sc = (double)sh->V / Vs;
        static const char *const VC = "wte[V,C]", *const CV = "wte[C,V]";
        add_gemm4(s, "train", M, "logits", M, Vs, C, 0.0f, (const char *const[]){CV, VC, 0, 0}, sc);
        add_gemm4(s, "train", M, "dH", M, C, Vs, 0.0f, (const char *const[]){VC, CV, 0, 0}, sc);
        add_gemm4(s, "train", M, "dwte[V,C]", Vs, C, M, 1.0f, (const char *const[]){0, 0, VC, 0},
                  sc);
        add_gemm4(s, "train", M, "dwte[C,V]", C, Vs, M, 1.0f, (const char *const[]){0, 0, CV, 0},
                  sc);
    }
    if (section_on("decode")) {
        const int M = M_DECODE;
        char name[24];
        for (int l = 0; l < N_LINEAR; l++) {
            const int K = LINEAR[l].kmul * C, N = LINEAR[l].nmul * C;
            snprintf(name, sizeof name, "fwd_%s", LINEAR[l].name);
            add_gemm4(s, "decode64", M, name, M, N, K, 0.0f, (const char *const[]){KN, NK, 0, 0},
                      1.0);
        }
        add_gemm4(s, "decode64", M, "logits", M, sh->V, C, 0.0f,
                  (const char *const[]){"wte[C,V]", "wte[V,C]", 0, 0}, 1.0);
    }
}

/* Batch-1 decode: y = x W as sgemv, from a hot matrix and from one streamed out of a 1 GiB
 * ring (what a model larger than the cache sees), and as an sgemm with one row. */
static void build_gemv_cases(int s) {
    if (!section_on("gemv")) return;
    const Shape *sh = &SHAPES[s];
    const int C = sh->C;
    for (int l = 0; l <= N_LINEAR; l++) {
        const int head = l == N_LINEAR;
        const int K = head ? C : LINEAR[l].kmul * C, N = head ? sh->V : LINEAR[l].nmul * C;
        char name[24];
        snprintf(name, sizeof name, "%s%s", head ? "" : "fwd_", head ? "logits" : LINEAR[l].name);
        const char *kn = head ? "wte[C,V]" : "W[K,N]", *nk = head ? "wte[V,C]" : "W[N,K]";
        for (int v = 0; v < 2; v++) {
            for (int t = 0; t < 2; t++) {
                Case *c = add_case(K_GEMV, s, "decode1", name);
                c->M = 1;
                c->k = K, c->n = N, c->m = 1;
                /* Row-major sgemv: W [K,N] needs Trans (y = W^T x), W [N,K] NoTrans. */
                c->ta = t ? CblasTrans : CblasNoTrans;
                snprintf(c->layout, sizeof c->layout, "%s", t ? "T" : "N");
                snprintf(c->storage, sizeof c->storage, "%s", t ? kn : nk);
                snprintf(c->variant, sizeof c->variant, "%s", v ? "stream" : "hot");
                c->flops = 2.0 * K * N;
                c->bytes = 4.0 * K * N;
                max_size(&need_b, (size_t)K * N);
            }
        }
        add_gemm(s, "decode1", 1, name, 1, N, K, CblasNoTrans, CblasNoTrans, 0.0f, kn, 1.0);
        add_gemm(s, "decode1", 1, name, 1, N, K, CblasNoTrans, CblasTrans, 0.0f, nk, 1.0);
        max_size(&need_xy, (size_t)(K > N ? K : N));
    }
}

static void build_attn_cases(int s) {
    if (!section_on("attn")) return;
    const Shape *sh = &SHAPES[s];
    const size_t BT = (size_t)sh->B * sh->T, C = (size_t)sh->C;
    const size_t BHTT = (size_t)sh->B * sh->n_head * sh->T * sh->T;
    AttnBufs *ab = &attn_bufs[s];
    ab->qkv = alloc_floats(BT * 3 * C), ab->dqkv = alloc_floats(BT * 3 * C);
    ab->o = alloc_floats(BT * C), ab->dout = alloc_floats(BT * C);
    ab->pk = alloc_floats(BT * 3 * C), ab->dpk = alloc_floats(BT * 3 * C);
    ab->pko = alloc_floats(BT * C), ab->pkdo = alloc_floats(BT * C);
    ab->p = alloc_floats(BHTT), ab->ds = alloc_floats(BHTT);
    fill(ab->qkv, BT * 3 * C, 11), fill(ab->dqkv, BT * 3 * C, 12);
    fill(ab->o, BT * C, 13), fill(ab->dout, BT * C, 14);
    fill(ab->pk, BT * 3 * C, 15), fill(ab->dpk, BT * 3 * C, 16);
    fill(ab->pko, BT * C, 17), fill(ab->pkdo, BT * C, 18);
    fill(ab->p, BHTT, 19), fill(ab->ds, BHTT, 20);
    for (int op = 0; op < N_ATTN; op++) {
        for (int packed = 0; packed < 2; packed++) {
            for (int par = 0; par < 2; par++) {
                Case *c = add_case(K_ATTN, s, "attn", ATTN_NAME[op]);
                c->op = op;
                c->M = sh->B * sh->T;
                c->m = sh->T;
                c->n = op == ATTN_S || op == ATTN_DP ? sh->T : HEAD_DIM;
                c->k = op == ATTN_S || op == ATTN_DP ? HEAD_DIM : sh->T;
                snprintf(c->layout, sizeof c->layout, "%s", packed ? "packed" : "strided");
                snprintf(c->variant, sizeof c->variant, "%s", par ? "omp" : "blas");
                /* With one thread the two ways of threading are the same program. */
                c->thread_mask = par ? 2 : 3;
                c->flops = 2.0 * c->m * c->n * c->k * sh->B * sh->n_head;
            }
        }
    }
}

static void build_sweep_cases(int s) {
    if (!section_on("sweep")) return;
    const Shape *sh = &SHAPES[s];
    const size_t C = (size_t)sh->C;
    SweepBufs *sb = &sweep_bufs[s];
    sb->layer_floats = 12 * C * C;
    sb->head_floats = (size_t)sh->V * C;
    const size_t total = sb->layer_floats * (size_t)sh->n_layer + sb->head_floats;
    sb->w = alloc_floats(total);
    fill(sb->w, total, 30 + (uint32_t)s);
    sb->x = alloc_floats((size_t)SWEEP_MAX * 4 * C);
    sb->y = alloc_floats((size_t)SWEEP_MAX * (sh->V > (int)(4 * C) ? (size_t)sh->V : 4 * C));
    fill(sb->x, (size_t)SWEEP_MAX * 4 * C, 31);
    static const int batches[] = {1, 1, 32, 64};
    for (int b = 0; b < 4; b++) {
        for (int st = 0; st < 2; st++) {
            Case *c = add_case(K_SWEEP, s, "sweep", "decode_step");
            c->M = batches[b];
            c->op = st;
            snprintf(c->variant, sizeof c->variant, "%s", b == 0 ? "sgemv" : "sgemm");
            snprintf(c->storage, sizeof c->storage, "%s", st ? "W[K,N]" : "W[N,K]");
            c->flops = 2.0 * (double)total * batches[b];
            c->bytes = 4.0 * (double)total;
        }
    }
}

static void build_stream_cases(void) {
    if (!section_on("stream")) return;
    for (int k = 0; k < 3; k++) {
        Case *c = add_case(K_STREAM, -1, "stream", STREAM_NAME[k]);
        c->op = k;
        c->bytes = (k == STREAM_TRIAD ? 3.0 : k == STREAM_COPY ? 2.0 : 1.0) * 4.0 * STREAM_N;
    }
}

static void run_attn(const Case *c, int threads) {
    const Shape *sh = &SHAPES[c->shape];
    const AttnBufs *ab = &attn_bufs[c->shape];
    const int T = sh->T, H = sh->n_head, C = sh->C, hd = HEAD_DIM, BH = sh->B * sh->n_head;
    const int packed = c->layout[0] == 'p';
    const int par = c->variant[0] == 'o';
    /* Strided: heads are column slices of the fused [B*T, 3C] buffer; packed: each head's
     * q, k, v are contiguous [T, 64] blocks. */
    const int ldq = packed ? hd : 3 * C, ldo = packed ? hd : C;
#pragma omp parallel for schedule(static) num_threads(threads) if (par)
    for (int bh = 0; bh < BH; bh++) {
        const int b = bh / H, h = bh % H;
        const size_t qoff = packed ? (size_t)bh * T * hd : (size_t)b * T * 3 * C + (size_t)h * hd;
        const size_t kvstride = packed ? (size_t)BH * T * hd : (size_t)C;
        const size_t ooff = packed ? (size_t)bh * T * hd : (size_t)b * T * C + (size_t)h * hd;
        const float *q = (packed ? ab->pk : ab->qkv) + qoff;
        const float *k = q + kvstride, *v = q + 2 * kvstride;
        float *dq = (packed ? ab->dpk : ab->dqkv) + qoff;
        float *dk = dq + kvstride, *dv = dq + 2 * kvstride;
        float *o = (packed ? ab->pko : ab->o) + ooff;
        const float *dout = (packed ? ab->pkdo : ab->dout) + ooff;
        float *p = ab->p + (size_t)bh * T * T, *ds = ab->ds + (size_t)bh * T * T;
        switch (c->op) {
        case ATTN_S:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 0.125f, q, ldq, k, ldq,
                        0.0f, p, T);
            break;
        case ATTN_O:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, v, ldq,
                        0.0f, o, ldo);
            break;
        case ATTN_DP:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dout, ldo, v, ldq,
                        0.0f, ds, T);
            break;
        case ATTN_DV:
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, dout, ldo,
                        0.0f, dv, ldq);
            break;
        case ATTN_DQ:
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 0.125f, ds, T, k, ldq,
                        0.0f, dq, ldq);
            break;
        default:
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 0.125f, ds, T, q, ldq,
                        0.0f, dk, ldq);
            break;
        }
    }
}

static void run_sweep(const Case *c) {
    const Shape *sh = &SHAPES[c->shape];
    const SweepBufs *sb = &sweep_bufs[c->shape];
    const int C = sh->C, M = c->M, kn = c->op;
    const int gemv = c->variant[4] == 'v';
    const float *w = sb->w;
    for (int l = 0; l < sh->n_layer; l++) {
        for (int i = 0; i < N_LINEAR; i++) {
            const int K = LINEAR[i].kmul * C, N = LINEAR[i].nmul * C;
            if (gemv)
                cblas_sgemv(CblasRowMajor, kn ? CblasTrans : CblasNoTrans, kn ? K : N, kn ? N : K,
                            1.0f, w, kn ? N : K, sb->x, 1, 0.0f, sb->y, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, kn ? CblasNoTrans : CblasTrans, M, N, K,
                            1.0f, sb->x, K, w, kn ? N : K, 0.0f, sb->y, N);
            w += (size_t)K * N;
        }
    }
    /* The tied head is wte [V, C] whatever the blocks' storage. */
    if (gemv)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, sh->V, C, 1.0f, w, C, sb->x, 1, 0.0f, sb->y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, sh->V, C, 1.0f, sb->x, C, w, C,
                    0.0f, sb->y, sh->V);
}

/* The kernels run at full vector width (KLC_HOT) and prefetch 2 KiB ahead: a plain SSE2
 * loop leaves a core's read bandwidth well below what OpenBLAS's sgemv reaches on the same
 * memory, which would make the decode bound pessimistic. Partial sums are independent so that
 * the adds' latency does not bound the read. */
#define PREFETCH_AHEAD 512

KLC_HOT static float read_chunk(const float *restrict a, size_t n) {
    float part[32] = {0};
    for (size_t i = 0; i < n; i += 32) {
        __builtin_prefetch(a + i + PREFETCH_AHEAD);
        for (int j = 0; j < 32; j++) part[j] += a[i + j];
    }
    float s = 0.0f;
    for (int j = 0; j < 32; j++) s += part[j];
    return s;
}

KLC_HOT static void copy_chunk(float *restrict d, const float *restrict a, size_t n) {
    for (size_t i = 0; i < n; i += 32) {
        __builtin_prefetch(a + i + PREFETCH_AHEAD);
        for (int j = 0; j < 32; j++) d[i + j] = a[i + j];
    }
}

KLC_HOT static void triad_chunk(float *restrict d, const float *restrict b, const float *restrict c,
                                size_t n) {
    for (size_t i = 0; i < n; i += 32) {
        __builtin_prefetch(b + i + PREFETCH_AHEAD);
        __builtin_prefetch(c + i + PREFETCH_AHEAD);
        for (int j = 0; j < 32; j++) d[i + j] = b[i + j] + 3.0f * c[i + j];
    }
}

static void run_stream(const Case *c, int threads) {
    float total = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        /* Contiguous 32-float-aligned slices, one per thread. */
        const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        const size_t per = (STREAM_N / nt + 31) & ~(size_t)31;
        const size_t lo = id * per, hi = lo + per < STREAM_N ? lo + per : STREAM_N;
        if (lo < hi) {
            if (c->op == STREAM_COPY)
                copy_chunk(s_c + lo, s_a + lo, hi - lo);
            else if (c->op == STREAM_TRIAD)
                triad_chunk(s_a + lo, s_b + lo, s_c + lo, hi - lo);
            else
                total += read_chunk(s_a + lo, hi - lo);
        }
    }
    sink = total;
}

static void run_once(const Case *c, int threads) {
    switch (c->kind) {
    case K_GEMM:
        cblas_sgemm(CblasRowMajor, c->ta, c->tb, c->m, c->n, c->k, 1.0f, g_a, c->lda, g_b, c->ldb,
                    c->beta, g_c, c->ldc);
        break;
    case K_GEMV: {
        const float *w = g_b;
        if (c->variant[0] == 's') {
            /* Each call reads a matrix no cache has seen for a gigabyte. */
            const size_t sz = ((size_t)c->k * c->n + 15) & ~(size_t)15;
            if (ring_off + sz > STREAM_N) ring_off = 0;
            w = s_a + ring_off;
            ring_off += sz;
        }
        if (c->ta == CblasTrans)
            cblas_sgemv(CblasRowMajor, CblasTrans, c->k, c->n, 1.0f, w, c->n, g_x, 1, 0.0f, g_y, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasNoTrans, c->n, c->k, 1.0f, w, c->k, g_x, 1, 0.0f, g_y,
                        1);
        break;
    }
    case K_ATTN:
        run_attn(c, threads);
        break;
    case K_SWEEP:
        run_sweep(c);
        break;
    default:
        run_stream(c, threads);
        break;
    }
}

static void set_threads(int t) {
    /* OpenBLAS's OpenMP build follows omp's count; setting both keeps them from
     * disagreeing. */
    omp_set_num_threads(t);
    openblas_set_num_threads(t);
}

static double time_case(const Case *c, int threads) {
    set_threads(threads);
    double t0 = now();
    for (int i = 0; i < c->inner; i++) run_once(c, threads);
    return (now() - t0) / c->inner;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double med, min, max;
    int n;
} Stat;

static Stat stat_of(const Case *c, int ti) {
    Stat s = {NAN, NAN, NAN, c->nsamples[ti]};
    if (!s.n) return s;
    double v[MAX_REPS];
    memcpy(v, c->samples[ti], (size_t)s.n * sizeof(double));
    qsort(v, (size_t)s.n, sizeof(double), cmp_double);
    s.min = v[0], s.max = v[s.n - 1];
    s.med = s.n % 2 ? v[s.n / 2] : 0.5 * (v[s.n / 2 - 1] + v[s.n / 2]);
    return s;
}

static int thread_index(int t) {
    for (int i = 0; i < opt.n_threads; i++)
        if (opt.threads[i] == t) return i;
    return -1;
}

static int runs_with(const Case *c, int t) {
    return (c->thread_mask >> (t - 1)) & 1;
}

/* A training-product layout that no weight storage serves with token-major activations. */
static int is_exotic(const Case *c) {
    return c->kind == K_GEMM && !strcmp(c->group, "train") && !c->storage[0];
}

static double median_s(const Case *c, int t) {
    int ti = thread_index(t);
    if (ti < 0 || !runs_with(c, t)) return NAN;
    return stat_of(c, ti).med;
}

static Case *find(int shape, const char *group, const char *product, const char *layout,
                  const char *variant) {
    for (int i = 0; i < n_cases; i++) {
        Case *c = &cases[i];
        if (c->shape == shape && !strcmp(c->group, group) && !strcmp(c->product, product) &&
            (!layout || !strcmp(c->layout, layout)) && (!variant || !strcmp(c->variant, variant)))
            return c;
    }
    return NULL;
}

/* ---- output ---------------------------------------------------------------------------- */

/* A rate cell: "-" where the case did not run. */
static void cell(int width, double v) {
    if (isfinite(v))
        fprintf(human, " %*.1f", width, v);
    else
        fprintf(human, " %*s", width, "-");
}

static void print_gemm_table(int s, const char *group, int M) {
    int any = 0;
    for (int i = 0; i < n_cases && !any; i++)
        any = cases[i].kind == K_GEMM && cases[i].shape == s && !strcmp(cases[i].group, group);
    if (!any) return;
    fprintf(human,
            "\n%s, M=%d: GFLOP/s per layout (median), token-major storage each layout serves "
            "in brackets\n",
            SHAPES[s].name, M);
    fprintf(human, "%-20s %6s %6s %6s", "product", "m", "n", "k");
    for (int ti = 0; ti < opt.n_threads; ti++)
        fprintf(human, " | t=%d %6s %6s %6s %6s", opt.threads[ti], "NN", "NT", "TN", "TT");
    fprintf(human, " | serves\n");
    for (int i = 0; i < n_cases; i++) {
        Case *c = &cases[i];
        if (c->kind != K_GEMM || c->shape != s || strcmp(c->group, group) ||
            strcmp(c->layout, "NN"))
            continue;
        fprintf(human, "%-20s %6d %6d %6d", c->product, c->m, c->n, c->k);
        for (int ti = 0; ti < opt.n_threads; ti++) {
            fprintf(human, " |    ");
            for (int j = 0; j < 4; j++) cell(6, c[j].flops / stat_of(&c[j], ti).med * 1e-9);
        }
        fprintf(human, " |");
        for (int j = 0; j < 4; j++)
            if (c[j].storage[0]) fprintf(human, " %s=%s", c[j].layout, c[j].storage);
        fprintf(human, "\n");
    }
}

static void json_common(FILE *f, const Case *c, int t, const Stat *st) {
    fprintf(f,
            "{\"bench\":\"klc_blas\",\"kind\":\"%s\",\"group\":\"%s\",\"shape\":\"%s\","
            "\"product\":\"%s\",\"threads\":%d,\"samples\":%d,\"median_s\":%.6g,\"min_s\":%.6g,"
            "\"max_s\":%.6g",
            c->kind == K_GEMM    ? "gemm"
            : c->kind == K_GEMV  ? "gemv"
            : c->kind == K_ATTN  ? "attn"
            : c->kind == K_SWEEP ? "sweep"
                                 : "stream",
            c->group, c->shape >= 0 ? SHAPES[c->shape].name : "", c->product, t, st->n, st->med,
            st->min, st->max);
}

static void print_json(void) {
    for (int i = 0; i < n_cases; i++) {
        const Case *c = &cases[i];
        for (int ti = 0; ti < opt.n_threads; ti++) {
            const int t = opt.threads[ti];
            if (!runs_with(c, t) || !c->nsamples[ti]) continue;
            Stat st = stat_of(c, ti);
            json_common(stdout, c, t, &st);
            switch (c->kind) {
            case K_GEMM:
                printf(",\"M\":%d,\"layout\":\"%s\",\"storage\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,"
                       "\"scale\":%.6g,\"gflops\":%.4g}\n",
                       c->M, c->layout, c->storage, c->m, c->n, c->k, c->scale,
                       c->flops / st.med * 1e-9);
                break;
            case K_GEMV:
                printf(",\"M\":1,\"layout\":\"%s\",\"storage\":\"%s\",\"cache\":\"%s\",\"k\":%d,"
                       "\"n\":%d,\"gbps\":%.4g,\"gflops\":%.4g}\n",
                       c->layout, c->storage, c->variant, c->k, c->n, c->bytes / st.med * 1e-9,
                       c->flops / st.med * 1e-9);
                break;
            case K_ATTN:
                printf(",\"M\":%d,\"layout\":\"%s\",\"parallel\":\"%s\",\"m\":%d,\"n\":%d,"
                       "\"k\":%d,\"calls\":%d,\"gflops\":%.4g}\n",
                       c->M, c->layout, c->variant, c->m, c->n, c->k,
                       SHAPES[c->shape].B * SHAPES[c->shape].n_head, c->flops / st.med * 1e-9);
                break;
            case K_SWEEP:
                printf(",\"M\":%d,\"routine\":\"%s\",\"storage\":\"%s\",\"weight_bytes\":%.0f,"
                       "\"tokens_per_s\":%.4g,\"gbps\":%.4g,\"gflops\":%.4g}\n",
                       c->M, c->variant, c->storage, c->bytes, c->M / st.med,
                       c->bytes / st.med * 1e-9, c->flops / st.med * 1e-9);
                break;
            default:
                printf(",\"array_bytes\":%zu,\"bytes\":%.0f,\"gbps\":%.4g}\n",
                       STREAM_N * sizeof(float), c->bytes, c->bytes / st.med * 1e-9);
                break;
            }
        }
    }
}

/* Time of one weight-storage choice for a product triple, or NAN if any is missing. */
static double triple_s(int s, int t, const char *const prod[3], const char *const lay[3]) {
    double sum = 0.0;
    for (int i = 0; i < 3; i++) {
        Case *c = find(s, "train", prod[i], lay[i], NULL);
        if (!c) return NAN;
        sum += median_s(c, t) * c->scale;
    }
    return sum;
}

static double best_any_s(int s, int t, const char *prod) {
    double best = INFINITY;
    for (int i = 0; i < n_cases; i++) {
        Case *c = &cases[i];
        if (c->kind == K_GEMM && c->shape == s && !strcmp(c->group, "train") &&
            !strcmp(c->product, prod)) {
            double v = median_s(c, t) * c->scale;
            if (v < best) best = v;
        }
    }
    return best;
}

static double flops_of(int s, const char *prod) {
    Case *c = find(s, "train", prod, "NN", NULL);
    return c ? c->flops * c->scale : NAN;
}

/* Best attention time per layer (all six products) for t threads. */
static double attn_layer_s(int s, int t, const char **how) {
    double best = INFINITY;
    static const char *const lays[2] = {"strided", "packed"}, *const vars[2] = {"blas", "omp"};
    static char buf[32];
    for (int li = 0; li < 2; li++) {
        for (int vi = 0; vi < 2; vi++) {
            double sum = 0.0;
            for (int op = 0; op < N_ATTN; op++) {
                Case *c = find(s, "attn", ATTN_NAME[op], lays[li], vars[vi]);
                sum += c ? median_s(c, t) : NAN;
            }
            if (sum < best) {
                best = sum;
                snprintf(buf, sizeof buf, "%s/%s", lays[li], vars[vi]);
                *how = buf;
            }
        }
    }
    return best;
}

static void print_train_summary(int s) {
    const Shape *sh = &SHAPES[s];
    if (!find(s, "train", "logits", "NN", NULL)) return;
    fprintf(human, "\n%s training step, per weight storage (ms for fwd + dX + dW, median):\n",
            sh->name);
    fprintf(human, "%-12s", "matrix");
    for (int ti = 0; ti < opt.n_threads; ti++)
        fprintf(human, " | t=%d %9s %9s %9s %7s", opt.threads[ti], "[K,N]", "[N,K]", "any", "best");
    fprintf(human, "\n");
    for (int l = 0; l <= N_LINEAR; l++) {
        const int head = l == N_LINEAR;
        char p[3][24], pn[24];
        if (head) {
            snprintf(p[0], 24, "logits");
            snprintf(p[1], 24, "dH");
            snprintf(p[2], 24, "dwte[C,V]");
            snprintf(pn, 24, "dwte[V,C]");
        } else {
            snprintf(p[0], 24, "fwd_%s", LINEAR[l].name);
            snprintf(p[1], 24, "dX_%s", LINEAR[l].name);
            snprintf(p[2], 24, "dW_%s[K,N]", LINEAR[l].name);
            snprintf(pn, 24, "dW_%s[N,K]", LINEAR[l].name);
        }
        const char *const a[3] = {p[0], p[1], p[2]}, *const b[3] = {p[0], p[1], pn};
        /* [K,N]: NN, NT, TN; [N,K]: NT, NN, TN (the head: [C,V] and [V,C] likewise). */
        const char *const la[3] = {"NN", "NT", "TN"}, *const lb[3] = {"NT", "NN", "TN"};
        fprintf(human, "%-12s", head ? "lm_head" : LINEAR[l].name);
        for (int ti = 0; ti < opt.n_threads; ti++) {
            const int t = opt.threads[ti];
            double x = triple_s(s, t, a, la), y = triple_s(s, t, b, lb);
            double any = best_any_s(s, t, p[0]) + best_any_s(s, t, p[1]) +
                         fmin(best_any_s(s, t, p[2]), best_any_s(s, t, pn));
            const char *best = head ? (x < y ? "[C,V]" : "[V,C]") : (x < y ? "[K,N]" : "[N,K]");
            fprintf(human, " |     %9.2f %9.2f %9.2f %7s", 1e3 * x, 1e3 * y, 1e3 * any, best);
        }
        fprintf(human, "\n");
    }
    if (find(s, "train", "logits", "NN", NULL)->scale != 1.0)
        fprintf(human, "(lm_head times are scaled from a %d-column vocabulary slice to V=%d)\n",
                find(s, "train", "logits", "NN", NULL)->n, sh->V);

    /* The whole step: every layer's four matrices with the better of the two realizable
     * storages, the tied head as it is ([V,C]), and attention as its best variant. */
    fprintf(human, "\n%s whole training step at M=%d (matmul FLOPs only):\n", sh->name, M_TRAIN);
    for (int ti = 0; ti < opt.n_threads; ti++) {
        const int t = opt.threads[ti];
        double fl_lin = 0, s_kn = 0, s_nk = 0, s_best = 0;
        for (int l = 0; l < N_LINEAR; l++) {
            char p[4][24];
            snprintf(p[0], 24, "fwd_%s", LINEAR[l].name);
            snprintf(p[1], 24, "dX_%s", LINEAR[l].name);
            snprintf(p[2], 24, "dW_%s[K,N]", LINEAR[l].name);
            snprintf(p[3], 24, "dW_%s[N,K]", LINEAR[l].name);
            const char *const a[3] = {p[0], p[1], p[2]}, *const b[3] = {p[0], p[1], p[3]};
            const char *const la[3] = {"NN", "NT", "TN"}, *const lb[3] = {"NT", "NN", "TN"};
            double x = triple_s(s, t, a, la), y = triple_s(s, t, b, lb);
            s_kn += x, s_nk += y, s_best += fmin(x, y);
            fl_lin += flops_of(s, p[0]) + flops_of(s, p[1]) + flops_of(s, p[2]);
        }
        const char *const hp[3] = {"logits", "dH", "dwte[V,C]"};
        const char *const hl[3] = {"NT", "NN", "TN"};
        double s_head = triple_s(s, t, hp, hl);
        double fl_head = flops_of(s, "logits") + flops_of(s, "dH") + flops_of(s, "dwte[V,C]");
        const char *how = "-";
        double s_attn = attn_layer_s(s, t, &how);
        double fl_attn = 12.0 * sh->B * sh->n_head * (double)sh->T * sh->T * HEAD_DIM;
        const int L = sh->n_layer;
        double fl = L * fl_lin + fl_head + L * fl_attn;
        double tm = L * s_best + s_head + L * s_attn;
        double tm_kn = L * s_kn + s_head + L * s_attn;
        double tm_nk = L * s_nk + s_head + L * s_attn;
        fprintf(human,
                "  t=%d: %.1f GFLOP in %.3f s = %.1f GFLOP/s (blocks %.1f, head %.1f, attention "
                "%.1f [%s]); all W[K,N] %.1f, all W[N,K] %.1f GFLOP/s\n",
                t, fl * 1e-9, tm, fl / tm * 1e-9, L * fl_lin / (L * s_best) * 1e-9,
                fl_head / s_head * 1e-9, fl_attn / s_attn * 1e-9, how, fl / tm_kn * 1e-9,
                fl / tm_nk * 1e-9);
        if (opt.json)
            printf("{\"bench\":\"klc_blas\",\"kind\":\"train_step\",\"shape\":\"%s\",\"M\":%d,"
                   "\"threads\":%d,\"flops\":%.6g,\"seconds\":%.6g,\"gflops\":%.4g,"
                   "\"gflops_blocks\":%.4g,\"gflops_head\":%.4g,\"gflops_attn\":%.4g,"
                   "\"attn_variant\":\"%s\",\"gflops_all_kn\":%.4g,\"gflops_all_nk\":%.4g}\n",
                   sh->name, M_TRAIN, t, fl, tm, fl / tm * 1e-9, L * fl_lin / (L * s_best) * 1e-9,
                   fl_head / s_head * 1e-9, fl_attn / s_attn * 1e-9, how, fl / tm_kn * 1e-9,
                   fl / tm_nk * 1e-9);
    }
}

static void print_attn_table(int s) {
    if (!find(s, "attn", ATTN_NAME[0], NULL, NULL)) return;
    const Shape *sh = &SHAPES[s];
    fprintf(human,
            "\n%s attention, %d x %d (batch, head) products of T=%d, head_dim=%d: GFLOP/s "
            "(median)\n",
            sh->name, sh->B, sh->n_head, sh->T, HEAD_DIM);
    fprintf(human, "%-10s", "product");
    for (int ti = 0; ti < opt.n_threads; ti++)
        fprintf(human, " | t=%d %8s %8s %8s %8s", opt.threads[ti], "strided", "packed", "str/omp",
                "pk/omp");
    fprintf(human, "\n");
    for (int op = 0; op < N_ATTN; op++) {
        fprintf(human, "%-10s", ATTN_NAME[op]);
        for (int ti = 0; ti < opt.n_threads; ti++) {
            const int t = opt.threads[ti];
            fprintf(human, " |    ");
            static const char *const l[4] = {"strided", "packed", "strided", "packed"};
            static const char *const v[4] = {"blas", "blas", "omp", "omp"};
            for (int j = 0; j < 4; j++) {
                Case *c = find(s, "attn", ATTN_NAME[op], l[j], v[j]);
                cell(8, c->flops / median_s(c, t) * 1e-9);
            }
        }
        fprintf(human, "\n");
    }
    fprintf(human, "(omp: one OpenMP thread per (batch, head), single-threaded sgemm inside)\n");
}

static void print_gemv_table(int s) {
    if (!find(s, "decode1", "logits", "N", "hot")) return;
    const Shape *sh = &SHAPES[s];
    fprintf(human,
            "\n%s, M=1 (batch-1 decode): sgemv GB/s of weights (hot = same matrix each call, "
            "stream = from a 1 GiB ring), sgemm with M=1 in GFLOP/s\n",
            sh->name);
    fprintf(human, "%-12s %6s %6s", "product", "k", "n");
    for (int ti = 0; ti < opt.n_threads; ti++)
        fprintf(human, " | t=%d %7s %7s %7s %7s %7s %7s", opt.threads[ti], "N/hot", "T/hot",
                "N/strm", "T/strm", "gemmNT", "gemmNN");
    fprintf(human, "\n");
    for (int l = 0; l <= N_LINEAR; l++) {
        char name[24];
        snprintf(name, sizeof name, "%s%s", l == N_LINEAR ? "" : "fwd_",
                 l == N_LINEAR ? "logits" : LINEAR[l].name);
        Case *nh = find(s, "decode1", name, "N", "hot");
        fprintf(human, "%-12s %6d %6d", name, nh->k, nh->n);
        for (int ti = 0; ti < opt.n_threads; ti++) {
            const int t = opt.threads[ti];
            static const char *const lv[4][2] = {
                {"N", "hot"}, {"T", "hot"}, {"N", "stream"}, {"T", "stream"}};
            fprintf(human, " |    ");
            for (int j = 0; j < 4; j++) {
                Case *c = find(s, "decode1", name, lv[j][0], lv[j][1]);
                cell(7, c->bytes / median_s(c, t) * 1e-9);
            }
            Case *g1 = find(s, "decode1", name, "NT", NULL),
                 *g2 = find(s, "decode1", name, "NN", NULL);
            fprintf(human, " %7.1f %7.1f", g1->flops / median_s(g1, t) * 1e-9,
                    g2->flops / median_s(g2, t) * 1e-9);
        }
        fprintf(human, "\n");
    }
    fprintf(human, "(sgemv N serves W[N,K] / wte[V,C]; T serves W[K,N] / wte[C,V])\n");
}

static double bytes_per_token(const Shape *sh) {
    /* Every parameter a decode step reads once: per block 12C^2 weights + 13C biases and
     * layer-norm parameters, then ln_f and the tied head; wpe contributes one row. */
    const double C = sh->C;
    return 4.0 * (sh->n_layer * (12 * C * C + 13 * C) + 2 * C + (double)sh->V * C + C);
}

static void print_sweep_and_bounds(void) {
    Case *rd = NULL;
    for (int i = 0; i < n_cases; i++)
        if (cases[i].kind == K_STREAM && cases[i].op == STREAM_READ) rd = &cases[i];
    int any_stream = 0;
    for (int i = 0; i < n_cases; i++) any_stream |= cases[i].kind == K_STREAM;
    if (any_stream) {
        fprintf(human,
                "\nmemory bandwidth, %zu MiB arrays (STREAM counting, no write-allocate): GB/s\n",
                STREAM_N * sizeof(float) >> 20);
        for (int i = 0; i < n_cases; i++) {
            Case *c = &cases[i];
            if (c->kind != K_STREAM) continue;
            fprintf(human, "%-8s", c->product);
            for (int ti = 0; ti < opt.n_threads; ti++) {
                Stat st = stat_of(c, ti);
                fprintf(human, " | t=%d %6.1f (min %.1f, max %.1f)", opt.threads[ti],
                        c->bytes / st.med * 1e-9, c->bytes / st.max * 1e-9,
                        c->bytes / st.min * 1e-9);
            }
            fprintf(human, "\n");
        }
    }
    for (int s = 0; s < N_SHAPES; s++) {
        const Shape *sh = &SHAPES[s];
        const double bpt = bytes_per_token(sh);
        Case *sw = find(s, "sweep", "decode_step", NULL, NULL);
        if (!sw && !rd) continue;
        fprintf(human, "\n%s decode: %.1f MB of parameters read per step\n", sh->name, bpt * 1e-6);
        for (int ti = 0; ti < opt.n_threads; ti++) {
            const int t = opt.threads[ti];
            if (rd) {
                double bw = rd->bytes / median_s(rd, t);
                fprintf(human, "  t=%d: bound at %.1f GB/s (read) = %.0f tokens/s at batch 1\n", t,
                        bw * 1e-9, bw / bpt);
                if (opt.json)
                    printf("{\"bench\":\"klc_blas\",\"kind\":\"decode_bound\",\"shape\":\"%s\","
                           "\"threads\":%d,\"bytes_per_token\":%.0f,\"bandwidth_gbps\":%.4g,"
                           "\"tokens_per_s\":%.4g}\n",
                           sh->name, t, bpt, bw * 1e-9, bw / bpt);
            }
            for (int i = 0; i < n_cases; i++) {
                Case *c = &cases[i];
                if (c->kind != K_SWEEP || c->shape != s) continue;
                double m = median_s(c, t);
                fprintf(human,
                        "  t=%d: measured weight sweep, %s batch %2d, blocks %s: %8.1f tokens/s "
                        "(%.1f GB/s, %.1f GFLOP/s)\n",
                        t, c->variant, c->M, c->storage, c->M / m, c->bytes / m * 1e-9,
                        c->flops / m * 1e-9);
            }
        }
    }
}

static void print_noise(void) {
    /* Spread = slowest / fastest sample of one case; its distribution says how much to trust
     * a single figure. */
    for (int ti = 0; ti < opt.n_threads; ti++) {
        double r[4096];
        int n = 0;
        for (int i = 0; i < n_cases && n < 4096; i++) {
            if (!runs_with(&cases[i], opt.threads[ti])) continue;
            Stat st = stat_of(&cases[i], ti);
            if (st.n > 1) r[n++] = st.max / st.min;
        }
        if (!n) continue;
        qsort(r, (size_t)n, sizeof(double), cmp_double);
        fprintf(human,
                "noise, t=%d: max/min sample ratio per case: median %.2f, 90th pct %.2f, worst "
                "%.2f (%d cases)\n",
                opt.threads[ti], r[n / 2], r[(n * 9) / 10], r[n - 1], n);
    }
}

static void print_machine(void) {
    char model[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) snprintf(model, sizeof model, "%s", p + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        }
        fclose(f);
    }
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    fprintf(human,
            "cpu: %s, %ld online cpus; OpenBLAS: %s; core %s; OPENBLAS_CORETYPE=%s "
            "OPENBLAS_L2_SIZE=%s\n",
            model, sysconf(_SC_NPROCESSORS_ONLN), openblas_get_config(), openblas_get_corename(),
            ct ? ct : "(unset)", l2 ? l2 : "(unset)");
    if (opt.json)
        printf("{\"bench\":\"klc_blas\",\"kind\":\"machine\",\"cpu\":\"%s\",\"cpus\":%ld,"
               "\"openblas_config\":\"%s\",\"openblas_core\":\"%s\",\"openblas_coretype_env\":"
               "\"%s\",\"openblas_l2_size_env\":\"%s\",\"reps\":%d,\"quick\":%d}\n",
               model, sysconf(_SC_NPROCESSORS_ONLN), openblas_get_config(), openblas_get_corename(),
               ct ? ct : "", l2 ? l2 : "", opt.reps, opt.quick);
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_blas [--quick] [--json] [--reps N] [--threads 1,2] [--shape NAME]\n"
            "                  [--sections train,decode,gemv,attn,sweep,stream] [--full-vocab]\n"
            "                  [--all-layouts] [--budget SECONDS]\n"
            "  --json   one JSON object per measurement on stdout; the tables go to stderr\n"
            "  --quick  fewer repetitions and shorter samples (about 30 s)\n"
            "  --reps N exactly N rounds (default: up to 7, or 3 in quick mode, within a time "
            "budget)\n");
    exit(2);
}

int main(int argc, char **argv) {
    opt.reps = 0;
    opt.n_threads = 2, opt.threads[0] = 1, opt.threads[1] = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick"))
            opt.quick = 1;
        else if (!strcmp(a, "--json"))
            opt.json = 1;
        else if (!strcmp(a, "--all-layouts"))
            opt.all_layouts = 1;
        else if (!strcmp(a, "--full-vocab"))
            opt.full_vocab = 1;
        else if (!strcmp(a, "--budget") && i + 1 < argc)
            opt.budget = atof(argv[++i]);
        else if (!strcmp(a, "--reps") && i + 1 < argc)
            opt.reps = atoi(argv[++i]), opt.reps_given = 1;
        else if (!strcmp(a, "--shape") && i + 1 < argc)
            opt.only_shape = argv[++i];
        else if (!strcmp(a, "--sections") && i + 1 < argc)
            opt.sections = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) {
            const char *p = argv[++i];
            opt.n_threads = 0;
            while (*p && opt.n_threads < MAX_THREADS) {
                int t = atoi(p);
                if (t < 1 || t > MAX_THREADS) usage();
                opt.threads[opt.n_threads++] = t;
                p = strchr(p, ',');
                if (!p) break;
                p++;
            }
            if (!opt.n_threads) usage();
        } else
            usage();
    }
    if (opt.reps <= 0) opt.reps = opt.quick ? 3 : 7;
    if (opt.reps > MAX_REPS) opt.reps = MAX_REPS;
    opt.min_sample = opt.quick ? 0.01 : 0.03;
    if (opt.budget <= 0) opt.budget = opt.quick ? 25.0 : 160.0;
    human = opt.json ? stderr : stdout;
    const double t_start = now();

    print_machine();
    for (int s = 0; s < N_SHAPES; s++) {
        if (opt.only_shape && strcmp(opt.only_shape, SHAPES[s].name)) continue;
        build_gemm_cases(s);
        build_gemv_cases(s);
        build_attn_cases(s);
        build_sweep_cases(s);
    }
    build_stream_cases();
    int need_ring = 0;
    for (int i = 0; i < n_cases; i++)
        need_ring |= cases[i].kind == K_STREAM || cases[i].kind == K_GEMV;
    if (need_ring) {
        s_a = alloc_floats(STREAM_N), s_b = alloc_floats(STREAM_N), s_c = alloc_floats(STREAM_N);
        fill(s_a, STREAM_N, 1), fill(s_b, STREAM_N, 2), fill(s_c, STREAM_N, 3);
    }
    g_a = alloc_floats(need_a), g_b = alloc_floats(need_b), g_c = alloc_floats(need_c);
    fill(g_a, need_a, 4), fill(g_b, need_b, 5), fill(g_c, need_c, 6);
    g_x = alloc_floats(need_xy + 16), g_y = alloc_floats(need_xy + 16);
    fill(g_x, need_xy + 16, 7);

    /* Warm-up, and the number of calls per sample so that tiny products are timed over at
     * least min_sample seconds. The layouts no token-major model can use come last: if the
     * budget cannot hold three rounds with them (a slow BLAS core, a busy machine), they are
     * left out rather than the rounds that make the medians. */
    double round_s = 0.0, exotic_s = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n_cases; i++) {
            Case *c = &cases[i];
            if (is_exotic(c) != pass || !c->thread_mask) continue;
            double longest = 0.0, sum = 0.0;
            for (int ti = 0; ti < opt.n_threads; ti++) {
                if (!runs_with(c, opt.threads[ti])) continue;
                double t1 = time_case(c, opt.threads[ti]);
                if (t1 > longest) longest = t1;
                sum += t1;
            }
            int inner = (int)ceil(opt.min_sample / fmax(longest, 1e-7));
            c->inner = inner < 1 ? 1 : inner > 100000 ? 100000 : inner;
            c->est_s = sum * c->inner;
            round_s += c->est_s;
        }
        if (pass == 1) break;
        for (int i = 0; i < n_cases; i++) {
            Case *c = &cases[i];
            if (!is_exotic(c)) continue;
            Case *sib = find(c->shape, c->group, c->product, NULL, NULL);
            while (is_exotic(sib)) sib++;
            exotic_s += sib->est_s;
        }
        double left = opt.budget - (now() - t_start);
        if (!opt.all_layouts && !opt.reps_given && exotic_s > 0 &&
            exotic_s + 3 * (round_s + exotic_s) > left) {
            fprintf(human,
                    "budget: leaving out the training layouts no token-major storage uses "
                    "(about %.0f s a round); --all-layouts keeps them\n",
                    exotic_s);
            for (int i = 0; i < n_cases; i++)
                if (is_exotic(&cases[i])) cases[i].thread_mask = 0;
        }
    }
    /* A slower BLAS core (see RESULTS-blas.md on OPENBLAS_CORETYPE) or a busy machine must
     * not stretch the default run past its budget: fewer rounds then, but never under 3. */
    if (!opt.reps_given) {
        double fit = floor((opt.budget - (now() - t_start)) / fmax(round_s, 1e-3));
        if (fit < opt.reps) opt.reps = fit < 3 ? 3 : (int)fit;
    }
    fprintf(human, "%d cases, %d rounds of about %.1f s, warm-up took %.1f s\n", n_cases, opt.reps,
            round_s, now() - t_start);

    int rounds = 0;
    const double rounds_start = now();
    for (int r = 0; r < opt.reps; r++) {
        const double r0 = now();
        /* Load from other users can make rounds slower than the warm-up promised: past three
         * rounds, stop when another would overrun the budget. */
        if (r >= 3 && !opt.reps_given && r0 - t_start + (r0 - rounds_start) / r > opt.budget) break;
        rounds++;
        for (int i = 0; i < n_cases; i++) {
            Case *c = &cases[i];
            for (int j = 0; j < opt.n_threads; j++) {
                /* Alternate which thread count goes first so neither always follows the
                 * other's cache state. */
                const int ti = (r + i) % 2 ? opt.n_threads - 1 - j : j;
                if (!runs_with(c, opt.threads[ti])) continue;
                c->samples[ti][c->nsamples[ti]++] = time_case(c, opt.threads[ti]);
            }
        }
    }

    for (int s = 0; s < N_SHAPES; s++) {
        print_gemm_table(s, "train", M_TRAIN);
        print_train_summary(s);
        print_attn_table(s);
        print_gemm_table(s, "decode64", M_DECODE);
        print_gemv_table(s);
    }
    print_sweep_and_bounds();
    print_noise();
    if (opt.json) print_json();
    fprintf(human, "%d rounds, total %.1f s\n", rounds, now() - t_start);
    return 0;
}
