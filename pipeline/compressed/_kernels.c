/*
 * Fused per-pixel kernels of the extract_mv stage (CPython extension, no numpy headers needed).
 *
 * The numpy/OpenCV functions in motion.py, residual.py and encoding.py are the definitions; these kernels
 * compute the same values bit for bit (tests compare both paths on every frame of real decodes) in one pass
 * over the frame instead of about twenty single-purpose OpenCV passes.
 *
 *   subpel_phases(src, H, W, C, s, dst)
 *       dst[s*y+fy, s*x+fx, c] = bilinear(src, x + fx/s, y + fy/s) with edge replication and rounding half
 *       up: the sub-pel phase image of residual.SubpelReference, (s*H, s*W, C) uint8.
 *
 *   cell_grid(table, n, gh, gw, cell, s, grid) -> status
 *       The (n, 8) int32 vector table (motion.COLUMNS) onto (gh, gw, 2) int16 cells of cell x cell pixels, in
 *       1/s pixel: motion.block_grid, on a fixed cell size.
 *
 *   p_frame(img, prev, H, W, grid, gh, gw, g, s, acc_prev, acc_out, phases, lut, lut_off, enc_mul, enc_shift,
 *           mv_out, mv_acc_out, res_out, res_acc_out)
 *       One P-frame. grid: (gh, gw, 2) int16 [dx, dy] in 1/s pixel per g x g cell (motion.block_grid).
 *       - mv_out (2, gh, gw)     = lut[sat_u8(grid + lut_off)]: encoding.encode_mv_units of the grid
 *       - res_out (H, W, 3)      = clip(img - bilinear(prev, p + grid(p)/s) + 128): residual.compensate_cells
 *                                  + encoding.encode_residual_of
 *       - acc_out (H, W, 2) int16 = grid(p) + acc_prev[clamp(p + ((grid(p) + s/2) >> log2 s))], saturated:
 *                                  motion.accumulate_cells (acc_prev None: the expanded grid itself)
 *       - mv_acc_out (2, H, W)   = lut[sat_u8(acc + lut_off)]: encoding.encode_mv_units (the SIMD path computes
 *                                  the table as sign(c) * ((|c| * enc_mul) >> enc_shift) + 128 on
 *                                  c = clip(acc, -lut_off, lut_off); enc_mul 0 means the table only)
 *       - res_acc_out (H, W, 3)  = clip(img - phases[clamp(s*p + acc)] + 128) (phases: the GOP I-frame's
 *                                  subpel_phases); for the first P-frame of a GOP (acc_prev None) the
 *                                  reference is the previous frame, i.e. a copy of res_out.
 *
 * Arithmetic right shifts of negative ints are floor divisions (gcc, clang and MSVC all shift arithmetically).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
static inline uint8_t sat_u8(int v) { return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v)); }
static inline int16_t sat_i16(int v) { return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }

static int log2_of(int s) { int k = 0; while ((1 << k) < s) k++; return k; }

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define HAVE_SSE2 1
#else
#define HAVE_SSE2 0
#endif

/* ---------------------------------------------------------------- subpel_phases */

#if HAVE_SSE2
/* (a + b + c + d + 2) >> 2 per byte: the diagonal half-pel rule */
static inline __m128i avg4_epu8(__m128i a, __m128i b, __m128i c, __m128i d)
{
    const __m128i z = _mm_setzero_si128(), two = _mm_set1_epi16(2);
    __m128i lo = _mm_add_epi16(_mm_add_epi16(_mm_unpacklo_epi8(a, z), _mm_unpacklo_epi8(b, z)),
                               _mm_add_epi16(_mm_unpacklo_epi8(c, z), _mm_unpacklo_epi8(d, z)));
    __m128i hi = _mm_add_epi16(_mm_add_epi16(_mm_unpackhi_epi8(a, z), _mm_unpackhi_epi8(b, z)),
                               _mm_add_epi16(_mm_unpackhi_epi8(c, z), _mm_unpackhi_epi8(d, z)));
    lo = _mm_srli_epi16(_mm_add_epi16(lo, two), 2);
    hi = _mm_srli_epi16(_mm_add_epi16(hi, two), 2);
    return _mm_packus_epi16(lo, hi);
}

/* Half-pel phases (s == 2) of RGB rows r0, r1 (n = W * 3 bytes): h = avg(a, b), v = avg(a, c),
   d = (a + b + c + d + 2) >> 2, where b, d are the right neighbours (the last pixel is its own). */
static void half_pel_rows(const uint8_t *r0, const uint8_t *r1, int W, uint8_t *h, uint8_t *v, uint8_t *d)
{
    const int n = (W - 1) * 3;               /* bytes that have a right neighbour */
    int i = 0;
    if (n >= 16) {
        for (;; i += 16) {
            if (i > n - 16) i = n - 16;
            const __m128i a = _mm_loadu_si128((const __m128i *)(r0 + i)), b = _mm_loadu_si128((const __m128i *)(r0 + i + 3));
            const __m128i c = _mm_loadu_si128((const __m128i *)(r1 + i)), e = _mm_loadu_si128((const __m128i *)(r1 + i + 3));
            _mm_storeu_si128((__m128i *)(h + i), _mm_avg_epu8(a, b));
            _mm_storeu_si128((__m128i *)(v + i), _mm_avg_epu8(a, c));
            _mm_storeu_si128((__m128i *)(d + i), avg4_epu8(a, b, c, e));
            if (i == n - 16) break;
        }
        i = n;
    }
    for (; i < n; i++) {
        h[i] = (uint8_t)((r0[i] + r0[i + 3] + 1) >> 1);
        v[i] = (uint8_t)((r0[i] + r1[i] + 1) >> 1);
        d[i] = (uint8_t)((r0[i] + r0[i + 3] + r1[i] + r1[i + 3] + 2) >> 2);
    }
    for (; i < W * 3; i++) {                 /* the last pixel: its right neighbour is itself */
        h[i] = r0[i];
        v[i] = d[i] = (uint8_t)((r0[i] + r1[i] + 1) >> 1);
    }
}

/* dst (2W x 3 bytes) = [p0[0], q0[0], p0[1], q0[1], ...] in 3-byte pixels (4-byte copies, in order, except
   for the last pixel so nothing is written past the row) */
static void interleave_pixels(const uint8_t *p, const uint8_t *q, int W, uint8_t *dst)
{
    for (int x = 0; x < W - 1; x++) {
        memcpy(dst + 6 * x, p + 3 * x, 4);
        memcpy(dst + 6 * x + 3, q + 3 * x, 4);
    }
    memcpy(dst + 6 * (W - 1), p + 3 * (W - 1), 3);
    memcpy(dst + 6 * (W - 1) + 3, q + 3 * (W - 1), 3);
}
#endif

static void phases_impl(const uint8_t *src, int H, int W, int C, int s, uint8_t *dst)
{
    const int sh2 = 2 * log2_of(s), rnd = (s * s) / 2;
    const size_t drow = (size_t)s * W * C;
#if HAVE_SSE2
    uint8_t *tmp = (s == 2 && C == 3 && W >= 2) ? malloc((size_t)3 * (W * 3 + 16)) : NULL;
#endif
    for (int y = 0; y < H; y++) {
        const uint8_t *r0 = src + (size_t)y * W * C;
        const uint8_t *r1 = src + (size_t)(y + 1 < H ? y + 1 : H - 1) * W * C;
#if HAVE_SSE2
        if (tmp != NULL) {                  /* MPEG-4 half-pel: a, (a+b+1)>>1, (a+c+1)>>1, (a+b+c+d+2)>>2 */
            uint8_t *h = tmp, *v = tmp + W * 3 + 16, *d = v + W * 3 + 16;
            half_pel_rows(r0, r1, W, h, v, d);
            interleave_pixels(r0, h, W, dst + 2 * (size_t)y * drow);
            interleave_pixels(v, d, W, dst + (2 * (size_t)y + 1) * drow);
            continue;
        }
#endif
        for (int fy = 0; fy < s; fy++) {
            uint8_t *d = dst + ((size_t)s * y + fy) * drow;
            for (int x = 0; x < W; x++) {
                const int x1 = x + 1 < W ? x + 1 : W - 1;
                for (int fx = 0; fx < s; fx++) {
                    const int wa = (s - fx) * (s - fy), wb = fx * (s - fy), wc = (s - fx) * fy, wd = fx * fy;
                    for (int c = 0; c < C; c++) {
                        const int t = wa * r0[x * C + c] + wb * r0[x1 * C + c] + wc * r1[x * C + c]
                                      + wd * r1[x1 * C + c] + rnd;
                        d[((size_t)s * x + fx) * C + c] = (uint8_t)(t >> sh2);
                    }
                }
            }
        }
    }
#if HAVE_SSE2
    free(tmp);
#endif
}

/* ---------------------------------------------------------------- residual encoding of one run of bytes */

/* out[i] = clip(cur[i] - pred[i] + 128, 0, 255) for i < n */
static void encode_residual_run(const uint8_t *cur, const uint8_t *pred, int n, uint8_t *out)
{
    int i = 0;
#if HAVE_SSE2
    if (n >= 16) {
        /* (cur ^ 0x80) and (pred ^ 0x80) are cur - 128 and pred - 128 as int8; their saturating difference is
           clip(cur - pred, -128, 127), and ^ 0x80 adds 128 back. The last chunk overlaps the one before. */
        const __m128i k = _mm_set1_epi8((char)0x80);
        for (;; i += 16) {
            if (i > n - 16) i = n - 16;
            const __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(cur + i)), k);
            const __m128i p = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(pred + i)), k);
            _mm_storeu_si128((__m128i *)(out + i), _mm_xor_si128(_mm_subs_epi8(c, p), k));
            if (i == n - 16) return;
        }
    }
#endif
    for (; i < n; i++) out[i] = sat_u8((int)cur[i] - pred[i] + 128);
}

/* ---------------------------------------------------------------- p_frame, non-accumulated residual */

#if HAVE_SSE2
/* 16 predicted bytes at offset i of a half-pel case (s == 2): a, avg(a, b), avg(a, c) or (a+b+c+d+2)>>2 */
static inline __m128i half_pel16(const uint8_t *a, const uint8_t *c, int fx, int fy)
{
    const __m128i va = _mm_loadu_si128((const __m128i *)a);
    if (!fx && !fy) return va;
    if (!fy) return _mm_avg_epu8(va, _mm_loadu_si128((const __m128i *)(a + 3)));
    const __m128i vc = _mm_loadu_si128((const __m128i *)c);
    if (!fx) return _mm_avg_epu8(va, vc);
    return avg4_epu8(va, _mm_loadu_si128((const __m128i *)(a + 3)), vc, _mm_loadu_si128((const __m128i *)(c + 3)));
}
#endif

/* Columns [*lo, *hi) of [xa, xb) whose samples x + d .. x + d + extra all lie in [0, W - 1] (none: lo == hi). */
static inline void inside_columns(int xa, int xb, int d, int extra, int W, int *lo, int *hi)
{
    int a = -d > xa ? -d : xa, b = W - extra - d < xb ? W - extra - d : xb;
    if (b < a) b = a;
    *lo = a; *hi = b;
}

/* Pixels [xa, xb) of row y, predicted from prev at (x + wx + fx/s, y0/y1): every tap clamped. */
static void residual_clamped(const uint8_t *cur, const uint8_t *r0, const uint8_t *r1, int W, int xa, int xb,
                             int wx, const int w4[4], int s, uint8_t *out)
{
    const int sh2 = 2 * log2_of(s), rnd = (s * s) / 2;
    for (int x = xa; x < xb; x++) {
        const int x0 = clampi(x + wx, 0, W - 1) * 3, x1 = clampi(x + wx + 1, 0, W - 1) * 3;
        for (int ch = 0; ch < 3; ch++) {
            const int p = (w4[0] * r0[x0 + ch] + w4[1] * r0[x1 + ch] + w4[2] * r1[x0 + ch] + w4[3] * r1[x1 + ch]
                           + rnd) >> sh2;
            out[3 * x + ch] = sat_u8((int)cur[3 * x + ch] - p + 128);
        }
    }
}

/* The residual of the cells [xa, xb) x [ya, yb) that share one vector, predicted from prev at
   (x + wx + fx/s, y + wy + fy/s). The columns whose taps need no clamping go 16 bytes at a time. */
static void residual_cells(const uint8_t *img, const uint8_t *prev, int H, int W, int ya, int yb, int xa, int xb,
                           int wx, int wy, int fx, int fy, int s, uint8_t *res)
{
    const int w4[4] = {(s - fx) * (s - fy), fx * (s - fy), (s - fx) * fy, fx * fy};
    int lo = xa, hi = xa;
#if HAVE_SSE2
    if (s == 2) {
        inside_columns(xa, xb, wx, fx ? 1 : 0, W, &lo, &hi);
        if ((hi - lo) * 3 < 16) lo = hi = xa;
    }
#endif
    for (int y = ya; y < yb; y++) {
        const int y0 = clampi(y + wy, 0, H - 1), y1 = clampi(y + wy + 1, 0, H - 1);
        const uint8_t *cur = img + (size_t)y * W * 3, *r0 = prev + (size_t)y0 * W * 3, *r1 = prev + (size_t)y1 * W * 3;
        uint8_t *out = res + (size_t)y * W * 3;
        residual_clamped(cur, r0, r1, W, xa, lo, wx, w4, s, out);
#if HAVE_SSE2
        if (hi > lo) {
            const int n = (hi - lo) * 3;
            const uint8_t *a = r0 + (size_t)(lo + wx) * 3, *c = r1 + (size_t)(lo + wx) * 3, *q0 = cur + (size_t)lo * 3;
            uint8_t *o = out + (size_t)lo * 3;
            const __m128i k = _mm_set1_epi8((char)0x80);
            for (int i = 0;; i += 16) {              /* the last chunk overlaps the one before */
                if (i > n - 16) i = n - 16;
                const __m128i p = _mm_xor_si128(half_pel16(a + i, c + i, fx, fy), k);
                const __m128i q = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(q0 + i)), k);
                _mm_storeu_si128((__m128i *)(o + i), _mm_xor_si128(_mm_subs_epi8(q, p), k));
                if (i == n - 16) break;
            }
        }
#endif
        residual_clamped(cur, r0, r1, W, hi > lo ? hi : lo, xb, wx, w4, s, out);
    }
}

/* ---------------------------------------------------------------- p_frame, accumulated mode */

typedef struct {
    const uint8_t *img, *phases, *lut;
    const int16_t *acc_prev;        /* NULL for the GOP's first P-frame */
    int16_t *acc;
    uint8_t *qx, *qy, *res_acc;
    uint8_t *pred;                  /* g rows x W x 3 (+1) bytes: the accumulated prediction of a band of cells */
    int32_t *offs;                  /* g rows x W: byte offsets of those predictions in the phase image */
    int H, W, s, lut_off, band_y;   /* band_y: the first row of the band being computed */
    int enc_mul, enc_shift;         /* |lut[c + off] - 128| == (|c| * enc_mul) >> enc_shift; enc_mul 0: none */
} AccCtx;

/* One pixel, scalar: acc = sat(u + acc_prev[sample]), its encodings, and the accumulated residual. */
static inline void acc_pixel(const AccCtx *k, const int16_t *row, int x, int y, int ox, int ux, int uy)
{
    const size_t p = (size_t)y * k->W + x;
    const int xs = clampi(x + ox, 0, k->W - 1) * 2;
    const int ax = sat_i16(ux + row[xs]), ay = sat_i16(uy + row[xs + 1]);
    k->acc[2 * p] = (int16_t)ax;
    k->acc[2 * p + 1] = (int16_t)ay;
    k->qx[p] = k->lut[sat_u8(ax + k->lut_off)];
    k->qy[p] = k->lut[sat_u8(ay + k->lut_off)];
    const int sw = k->s * k->W;
    const int px = clampi(k->s * x + ax, 0, sw - 1), py = clampi(k->s * y + ay, 0, k->s * k->H - 1);
    k->offs[(size_t)(y - k->band_y) * k->W + x] = (int32_t)(((size_t)py * sw + px) * 3);
}

#if HAVE_SSE2
/* CoViAR's uint8 encoding of 8 int16 vector components (units), as the 256-entry table gives it */
static inline __m128i encode8(__m128i v, const AccCtx *k)
{
    const __m128i lim = _mm_set1_epi16((short)k->lut_off);
    const __m128i c = _mm_min_epi16(_mm_max_epi16(v, _mm_sub_epi16(_mm_setzero_si128(), lim)), lim);
    const __m128i sign = _mm_srai_epi16(c, 15);
    const __m128i mag = _mm_sub_epi16(_mm_xor_si128(c, sign), sign);
    const __m128i t = _mm_srli_epi16(_mm_mullo_epi16(mag, _mm_set1_epi16((short)k->enc_mul)), k->enc_shift);
    const __m128i q = _mm_add_epi16(_mm_sub_epi16(_mm_xor_si128(t, sign), sign), _mm_set1_epi16(128));
    return _mm_packus_epi16(q, q);
}

/* Pixels x0..x0+7 of row y, all sampling acc_prev inside the row (no column clamping). */
static inline void acc_chunk8(const AccCtx *k, const int16_t *row, int x0, int y, int ox, __m128i u)
{
    const size_t p = (size_t)y * k->W + x0;
    const int16_t *src = row + (size_t)(x0 + ox) * 2;
    const __m128i a0 = _mm_adds_epi16(_mm_loadu_si128((const __m128i *)src), u);
    const __m128i a1 = _mm_adds_epi16(_mm_loadu_si128((const __m128i *)(src + 8)), u);
    _mm_storeu_si128((__m128i *)(k->acc + 2 * p), a0);
    _mm_storeu_si128((__m128i *)(k->acc + 2 * p + 8), a1);
    /* [dx, dy] pairs -> 8 dx and 8 dy, encoded */
    const __m128i dx = _mm_packs_epi32(_mm_srai_epi32(_mm_slli_epi32(a0, 16), 16), _mm_srai_epi32(_mm_slli_epi32(a1, 16), 16));
    const __m128i dy = _mm_packs_epi32(_mm_srai_epi32(a0, 16), _mm_srai_epi32(a1, 16));
    _mm_storel_epi64((__m128i *)(k->qx + p), encode8(dx, k));
    _mm_storel_epi64((__m128i *)(k->qy + p), encode8(dy, k));
    /* sample positions s*p + acc, clamped; byte offsets (py * sW + px) * 3 by one multiply-add of int16 pairs */
    const int s = k->s, sw = s * k->W;
    const __m128i b0 = _mm_setr_epi16((short)(s * x0), (short)(s * y), (short)(s * (x0 + 1)), (short)(s * y),
                                      (short)(s * (x0 + 2)), (short)(s * y), (short)(s * (x0 + 3)), (short)(s * y));
    const __m128i b1 = _mm_add_epi16(b0, _mm_setr_epi16((short)(4 * s), 0, (short)(4 * s), 0, (short)(4 * s), 0,
                                                        (short)(4 * s), 0));
    const __m128i hi = _mm_setr_epi16((short)(sw - 1), (short)(s * k->H - 1), (short)(sw - 1), (short)(s * k->H - 1),
                                      (short)(sw - 1), (short)(s * k->H - 1), (short)(sw - 1), (short)(s * k->H - 1));
    const __m128i z = _mm_setzero_si128(), w = _mm_setr_epi16(3, (short)(3 * sw), 3, (short)(3 * sw), 3,
                                                               (short)(3 * sw), 3, (short)(3 * sw));
    const __m128i o0 = _mm_madd_epi16(_mm_min_epi16(_mm_max_epi16(_mm_adds_epi16(a0, b0), z), hi), w);
    const __m128i o1 = _mm_madd_epi16(_mm_min_epi16(_mm_max_epi16(_mm_adds_epi16(a1, b1), z), hi), w);
    /* the gathers run later, for the whole band in one tight loop (more loads in flight) */
    int32_t *off = k->offs + (size_t)(y - k->band_y) * k->W + x0;
    _mm_storeu_si128((__m128i *)off, o0);
    _mm_storeu_si128((__m128i *)(off + 4), o1);
}
#endif

/* Accumulation, its encodings and the accumulated prediction for the cells [xa, xb) x [ya, yb) that share one
   vector (ux, uy); the columns that sample acc_prev without clamping go 8 pixels at a time. */
static void accumulate_cells(const AccCtx *k, int ya, int yb, int xa, int xb, int ux, int uy)
{
    const int n = xb - xa, W = k->W;
    if (k->acc_prev == NULL) {              /* first P-frame of the GOP: the cells' own vector */
        const uint8_t ex = k->lut[sat_u8(ux + k->lut_off)], ey = k->lut[sat_u8(uy + k->lut_off)];
        const int32_t pair = (int32_t)((uint32_t)(uint16_t)ux | ((uint32_t)(uint16_t)uy << 16));
        for (int y = ya; y < yb; y++) {
            const size_t base = (size_t)y * W + xa;
            int16_t *o = k->acc + base * 2;
            for (int i = 0; i < n; i++) memcpy(o + 2 * i, &pair, 4);
            memset(k->qx + base, ex, (size_t)n);
            memset(k->qy + base, ey, (size_t)n);
        }
        return;
    }
    const int sh = log2_of(k->s);
    const int ox = (ux + k->s / 2) >> sh, oy = (uy + k->s / 2) >> sh;   /* nearest pixel, halves up */
    int lo = xa, hi = xa;
#if HAVE_SSE2
    if (k->enc_mul > 0) {
        inside_columns(xa, xb, ox, 0, W, &lo, &hi);
        if (hi - lo < 8) lo = hi = xa;
    }
    const __m128i u = _mm_setr_epi16((short)ux, (short)uy, (short)ux, (short)uy, (short)ux, (short)uy,
                                     (short)ux, (short)uy);
#endif
    for (int y = ya; y < yb; y++) {
        const int16_t *row = k->acc_prev + (size_t)clampi(y + oy, 0, k->H - 1) * W * 2;
        for (int x = xa; x < lo; x++) acc_pixel(k, row, x, y, ox, ux, uy);
#if HAVE_SSE2
        if (hi > lo) {                      /* 8 pixels at a time; the last chunk overlaps the one before */
            for (int x = lo;; x += 8) {
                if (x > hi - 8) x = hi - 8;
                acc_chunk8(k, row, x, y, ox, u);
                if (x == hi - 8) break;
            }
        }
#endif
        for (int x = hi > lo ? hi : lo; x < xb; x++) acc_pixel(k, row, x, y, ox, ux, uy);
    }
}

/* pred[i] = phases[offs[i]] (3 bytes) for the n pixels of a band. 4-byte copies in order, each 4th byte
   overwritten by the next pixel (the buffer has spare bytes after the last); only a copy from the phase
   image's very last pixel takes 3 bytes (nothing to read beyond it). */
static void gather_band(const AccCtx *k, int n)
{
    const int32_t last = (int32_t)((size_t)k->s * k->H * k->s * k->W * 3 - 3);
    const int32_t *offs = k->offs;
    uint8_t *pred = k->pred;
    for (int i = 0; i < n; i++) {
        if (offs[i] < last) memcpy(pred + 3 * i, k->phases + offs[i], 4);
        else memcpy(pred + 3 * i, k->phases + offs[i], 3);
    }
}

/* mv_out (2, gh, gw) = lut[sat_u8(grid + lut_off)] */
static void encode_grid(const int16_t *grid, int gh, int gw, const uint8_t *lut, int lut_off, uint8_t *mv)
{
    const size_t cells = (size_t)gh * gw;
    for (size_t i = 0; i < cells; i++) {
        mv[i] = lut[sat_u8(grid[2 * i] + lut_off)];
        mv[cells + i] = lut[sat_u8(grid[2 * i + 1] + lut_off)];
    }
}

static void p_frame_impl(const uint8_t *img, const uint8_t *prev, int H, int W, const int16_t *grid, int gh,
                         int gw, int g, int s, AccCtx *k, uint8_t *res)
{
    const int sh = log2_of(s);
    for (int cy = 0; cy < gh && cy * g < H; cy++) {
        const int ya = cy * g, yb = ya + g < H ? ya + g : H;
        k->band_y = ya;
        const int16_t *cells = grid + (size_t)cy * gw * 2;
        const int ncx = gw < (W + g - 1) / g ? gw : (W + g - 1) / g;   /* cells that hold pixels */
        for (int c0 = 0, c1; c0 < ncx; c0 = c1) {                  /* runs of cells with the same vector */
            const int ux = cells[2 * c0], uy = cells[2 * c0 + 1];
            for (c1 = c0 + 1; c1 < ncx && cells[2 * c1] == ux && cells[2 * c1 + 1] == uy; c1++) {}
            const int xa = c0 * g, xb = c1 * g < W ? c1 * g : W;
            residual_cells(img, prev, H, W, ya, yb, xa, xb, ux >> sh, uy >> sh, ux & (s - 1), uy & (s - 1), s, res);
            accumulate_cells(k, ya, yb, xa, xb, ux, uy);
        }
        if (k->acc_prev == NULL)            /* the I-frame is the previous frame: both residuals coincide */
            memcpy(k->res_acc + (size_t)ya * W * 3, res + (size_t)ya * W * 3, (size_t)(yb - ya) * W * 3);
        else {
            gather_band(k, (yb - ya) * W);
            encode_residual_run(img + (size_t)ya * W * 3, k->pred, (yb - ya) * W * 3, k->res_acc + (size_t)ya * W * 3);
        }
    }
}

/* ---------------------------------------------------------------- cell_grid */

/* Vector table (n, 8) int32 [source, w, h, dst_x, dst_y, motion_x, motion_y, motion_scale] -> (gh, gw, 2) int16
   units of 1/s pixel per cell x cell pixels (0 where no block covers a cell). Returns 0, or 1: a vector refers
   to a future frame, 2: a motion_scale does not divide s, 3: a block is not made of whole cells. */
static int cell_grid_impl(const int32_t *t, Py_ssize_t n, int gh, int gw, int cell, int s, int16_t *grid)
{
    memset(grid, 0, (size_t)gh * gw * 2 * sizeof(int16_t));
    for (Py_ssize_t r = 0; r < n; r++) {
        const int32_t *v = t + 8 * r;
        const int w = v[1], h = v[2], sc = v[7];
        if (v[0] > 0) return 1;
        if (sc <= 0 || s % sc) return 2;
        const int x0 = v[3] - w / 2, y0 = v[4] - h / 2;
        if (w <= 0 || h <= 0 || w % cell || h % cell || x0 % cell || y0 % cell) return 3;
        const int16_t ux = (int16_t)(v[5] * (s / sc)), uy = (int16_t)(v[6] * (s / sc));
        const int bx = x0 / cell, by = y0 / cell;         /* exact: multiples of cell */
        for (int yy = by < 0 ? 0 : by; yy < by + h / cell && yy < gh; yy++)
            for (int xx = bx < 0 ? 0 : bx; xx < bx + w / cell && xx < gw; xx++) {
                grid[((size_t)yy * gw + xx) * 2] = ux;
                grid[((size_t)yy * gw + xx) * 2 + 1] = uy;
            }
    }
    return 0;
}

/* ---------------------------------------------------------------- Python glue */

static int need(Py_buffer *b, Py_ssize_t bytes, const char *name)
{
    if (b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd", name, b->len, bytes);
        return 0;
    }
    return 1;
}

static PyObject *py_subpel_phases(PyObject *self, PyObject *args)
{
    Py_buffer src = {0}, dst = {0};
    int H, W, C, s;
    if (!PyArg_ParseTuple(args, "y*iiiiw*", &src, &H, &W, &C, &s, &dst)) return NULL;
    PyObject *ret = NULL;
    if (H <= 0 || W <= 0 || C <= 0 || s <= 0 || (s & (s - 1))) {
        PyErr_SetString(PyExc_ValueError, "subpel_phases: sizes must be positive and s a power of two");
        goto done;
    }
    if (!need(&src, (Py_ssize_t)H * W * C, "src") || !need(&dst, (Py_ssize_t)s * s * H * W * C, "dst")) goto done;
    Py_BEGIN_ALLOW_THREADS
    phases_impl(src.buf, H, W, C, s, dst.buf);
    Py_END_ALLOW_THREADS
    ret = Py_None; Py_INCREF(ret);
done:
    PyBuffer_Release(&src); PyBuffer_Release(&dst);
    return ret;
}

static PyObject *py_p_frame(PyObject *self, PyObject *args)
{
    Py_buffer img = {0}, prev = {0}, grid = {0}, accp = {0}, acc = {0}, ph = {0}, lut = {0}, mv = {0}, mva = {0},
              res = {0}, resa = {0};
    PyObject *accp_obj, *ph_obj, *ret = NULL;
    int H, W, gh, gw, g, s, lut_off, enc_mul, enc_shift;
    if (!PyArg_ParseTuple(args, "y*y*iiy*iiiiOw*Oy*iiiw*w*w*w*", &img, &prev, &H, &W, &grid, &gh, &gw, &g,
                          &s, &accp_obj, &acc, &ph_obj, &lut, &lut_off, &enc_mul, &enc_shift, &mv, &mva, &res,
                          &resa))
        return NULL;
    const int first = accp_obj == Py_None;
    if (!first && (PyObject_GetBuffer(accp_obj, &accp, PyBUF_C_CONTIGUOUS) < 0
                   || PyObject_GetBuffer(ph_obj, &ph, PyBUF_C_CONTIGUOUS) < 0))
        goto done;
    if (H <= 0 || W <= 0 || g <= 0 || s <= 0 || (s & (s - 1)) || gh * g < H || gw * g < W) {
        PyErr_SetString(PyExc_ValueError, "p_frame: bad sizes (s must be a power of two, the grid cover the frame)");
        goto done;
    }
    const Py_ssize_t px = (Py_ssize_t)H * W;
    if (!need(&img, px * 3, "img") || !need(&prev, px * 3, "prev") || !need(&grid, (Py_ssize_t)gh * gw * 4, "grid")
        || !need(&acc, px * 4, "acc_out") || !need(&lut, 256, "lut") || !need(&mva, px * 2, "mv_acc_out")
        || !need(&mv, (Py_ssize_t)gh * gw * 2, "mv_out")
        || !need(&res, px * 3, "res_out") || !need(&resa, px * 3, "res_acc_out")
        || (!first && (!need(&accp, px * 4, "acc_prev") || !need(&ph, px * 3 * s * s, "phases"))))
        goto done;
    /* the SIMD offsets are int16 products: (3, 3 * s * W) and positions up to s * H must fit */
    if (3 * s * W > 32767 || s * H > 32767 || enc_mul < 0 || enc_mul * lut_off > 32767 || enc_shift < 0
        || enc_shift > 15)
        enc_mul = 0;
    uint8_t *band = PyMem_RawMalloc((size_t)g * W * 3 + 16);
    int32_t *offs = PyMem_RawMalloc((size_t)g * W * sizeof(int32_t) + 16);
    if (band == NULL || offs == NULL) { PyMem_RawFree(band); PyMem_RawFree(offs); PyErr_NoMemory(); goto done; }
    AccCtx k = {img.buf, first ? NULL : ph.buf, lut.buf, first ? NULL : accp.buf, acc.buf, mva.buf,
                (uint8_t *)mva.buf + (size_t)H * W, resa.buf, band, offs, H, W, s, lut_off, 0, enc_mul, enc_shift};
    Py_BEGIN_ALLOW_THREADS
    p_frame_impl(img.buf, prev.buf, H, W, grid.buf, gh, gw, g, s, &k, res.buf);
    encode_grid(grid.buf, gh, gw, lut.buf, lut_off, mv.buf);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(band);
    PyMem_RawFree(offs);
    ret = Py_None; Py_INCREF(ret);
done:
    PyBuffer_Release(&img); PyBuffer_Release(&prev); PyBuffer_Release(&grid); PyBuffer_Release(&acc);
    PyBuffer_Release(&lut); PyBuffer_Release(&mv); PyBuffer_Release(&mva); PyBuffer_Release(&res); PyBuffer_Release(&resa);
    if (accp.obj) PyBuffer_Release(&accp);
    if (ph.obj) PyBuffer_Release(&ph);
    return ret;
}

static PyObject *py_cell_grid(PyObject *self, PyObject *args)
{
    Py_buffer table = {0}, grid = {0};
    Py_ssize_t n;
    int gh, gw, cell, s;
    if (!PyArg_ParseTuple(args, "y*niiiiw*", &table, &n, &gh, &gw, &cell, &s, &grid)) return NULL;
    PyObject *ret = NULL;
    if (n < 0 || gh <= 0 || gw <= 0 || cell <= 0 || s <= 0) {
        PyErr_SetString(PyExc_ValueError, "cell_grid: bad sizes");
        goto done;
    }
    if (!need(&table, n * 32, "table") || !need(&grid, (Py_ssize_t)gh * gw * 4, "grid")) goto done;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = cell_grid_impl(table.buf, n, gh, gw, cell, s, grid.buf);
    Py_END_ALLOW_THREADS
    ret = PyLong_FromLong(status);
done:
    PyBuffer_Release(&table); PyBuffer_Release(&grid);
    return ret;
}

static PyMethodDef methods[] = {
    {"cell_grid", py_cell_grid, METH_VARARGS,
     "cell_grid(table, n, gh, gw, cell, s, grid) -> status: block vectors onto a grid of cells (see _kernels.c)."},
    {"subpel_phases", py_subpel_phases, METH_VARARGS,
     "subpel_phases(src, H, W, C, s, dst): the (s*H, s*W, C) uint8 sub-pel phase image of src into dst."},
    {"p_frame", py_p_frame, METH_VARARGS,
     "p_frame(img, prev, H, W, grid, gh, gw, g, s, acc_prev, acc_out, phases, lut, lut_off, enc_mul, enc_shift, "
     "mv_out, mv_acc_out, "
     "res_out, res_acc_out): residuals, accumulated vectors and their encodings of one P-frame, in place."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "Fused per-pixel kernels of the extract_mv stage (see _kernels.c).", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
