// Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
//
// Packed (varlen) attention for float32 inference on an AVX-512 CPU: `torch.ops.rexbert.packed_attention`.
// Built and documented by cpu_attention.py; this file holds only the kernel.
//
// Each (document, head) is one task. Its keys are transposed once into a `(head_dim, length)` block, then
// queries are taken six rows at a time: the six rows' scores against the keys they may see (every key of
// the document, or those within `window` positions), a softmax per row, and the six output rows as the
// probability-weighted sum of value rows. Both products are register-blocked AVX-512 FMA tiles (six rows
// by 64 columns: 24 accumulators), and nothing larger than six score rows is ever written, so a task works
// in its core's caches whatever the document length, with no padding and no mask.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

constexpr int64_t kHeadDim = 64;  // every ModernBERT and Ettin shape (17m to 1B)
constexpr int kHeadVecs = kHeadDim / 16;
constexpr int kRows = 6;  // query rows per tile: 6 x 4 accumulators + 4 key vectors + 1 broadcast <= 32 zmm

// exp(x) for x <= 0: 2^n * exp(r) with n = round(x / ln 2), |r| <= ln(2) / 2 (Cephes' expf polynomial,
// about 1 ulp); scalef applies 2^n and flushes to zero far below.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// scores[r][col + c] = q_r . k_(col + c) for R query rows and 16 * NV key columns
template <int R, int NV>
inline void score_tile(const float* query, int64_t query_stride, const float* keys_t, int64_t width,
                       int64_t col, float* scores) {
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t d = 0; d < kHeadDim; ++d) {
    __m512 keys[NV];
    for (int c = 0; c < NV; ++c) keys[c] = _mm512_loadu_ps(keys_t + d * width + col + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512 q = _mm512_set1_ps(query[r * query_stride + d]);
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(q, keys[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NV; ++c) _mm512_storeu_ps(scores + r * width + col + 16 * c, acc[r][c]);
}

// In place: exp(scale * (s - max)) on the row's keys [first, last), zero on the rest of [lo, hi); 1 / sum.
inline float softmax_row(float* row, int64_t lo, int64_t first, int64_t last, int64_t hi, float scale) {
  __m512 top = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t j = first;
  for (; j + 16 <= last; j += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(row + j));
  float largest = _mm512_reduce_max_ps(top);
  for (; j < last; ++j) largest = std::max(largest, row[j]);
  const __m512 shift = _mm512_set1_ps(largest * scale), factor = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  for (j = first; j < last; j += 16) {
    const __mmask16 keep = last - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (last - j)) - 1);
    const __m512 e = exp_ps(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(keep, row + j), factor, shift));
    _mm512_mask_storeu_ps(row + j, keep, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(keep, e));
  }
  std::fill(row + lo, row + first, 0.0f);
  std::fill(row + last, row + hi, 0.0f);
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// out_r = inv_sum[r] * sum_j probs[r][j] v_j over the keys [lo, hi)
template <int R>
inline void weigh_values(const float* probs, int64_t width, const float* values, int64_t value_stride,
                         int64_t lo, int64_t hi, const float* inv_sum, float* out, int64_t out_stride) {
  __m512 acc[R][kHeadVecs];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kHeadVecs; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t j = lo; j < hi; ++j) {
    __m512 value[kHeadVecs];
    for (int c = 0; c < kHeadVecs; ++c) value[c] = _mm512_loadu_ps(values + j * value_stride + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512 p = _mm512_set1_ps(probs[r * width + j]);
      for (int c = 0; c < kHeadVecs; ++c) acc[r][c] = _mm512_fmadd_ps(p, value[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    const __m512 norm = _mm512_set1_ps(inv_sum[r]);
    for (int c = 0; c < kHeadVecs; ++c)
      _mm512_storeu_ps(out + r * out_stride + 16 * c, _mm512_mul_ps(acc[r][c], norm));
  }
}

// In place: row i of the 16 x 16 block becomes column i (unpack, then 32-, 64- and 128-bit lane shuffles).
inline void transpose_16x16(__m512 rows[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    rows[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    rows[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    rows[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    rows[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(rows[8 * i + j], rows[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(rows[8 * i + j], rows[8 * i + 4 + j], 0xDD);
    }
  for (int j = 0; j < 8; ++j) {
    rows[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    rows[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
  }
}

// keys_t[d][j] = keys[j][d] for the document's `length` keys, zero in the padding columns up to `width`.
// In 16 x 16 register blocks: element by element, this transposition took a third of the kernel's time.
inline void transpose_keys(const float* keys, int64_t key_stride, int64_t length, int64_t width, float* keys_t) {
  __m512 block[16];
  for (int64_t j0 = 0; j0 < width; j0 += 16)
    for (int64_t d0 = 0; d0 < kHeadDim; d0 += 16) {
      for (int64_t i = 0; i < 16; ++i)
        block[i] = j0 + i < length ? _mm512_loadu_ps(keys + (j0 + i) * key_stride + d0) : _mm512_setzero_ps();
      transpose_16x16(block);
      for (int64_t i = 0; i < 16; ++i) _mm512_storeu_ps(keys_t + (d0 + i) * width + j0, block[i]);
    }
}

struct Head {  // one (document, head): its rows in the packed stream
  const float* query;
  const float* value;
  float* out;
  int64_t query_stride, value_stride, out_stride, length, width, window;  // window < 0: none
  float scale;
  const float* keys_t;  // (head_dim, width) transposed keys, zero beyond length
  float* scores;        // (kRows, width)
};

// Query rows [i0, i0 + R) of one head.
template <int R>
void attend_rows(const Head& h, int64_t i0) {
  int64_t lo = 0, hi = h.length;  // keys any of the R rows sees
  if (h.window >= 0) {
    lo = std::max<int64_t>(0, i0 - h.window);
    hi = std::min<int64_t>(h.length, i0 + R + h.window);
  }
  const int64_t tile_end = std::min<int64_t>(h.width, (hi + 15) & ~int64_t(15));
  int64_t col = lo & ~int64_t(15);
  const float* query = h.query + i0 * h.query_stride;
  for (; col + 64 <= tile_end; col += 64) score_tile<R, 4>(query, h.query_stride, h.keys_t, h.width, col, h.scores);
  for (; col < tile_end; col += 16) score_tile<R, 1>(query, h.query_stride, h.keys_t, h.width, col, h.scores);
  float inv_sum[R];
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const int64_t first = h.window >= 0 ? std::max<int64_t>(0, i - h.window) : 0;
    const int64_t last = h.window >= 0 ? std::min<int64_t>(h.length, i + h.window + 1) : h.length;
    inv_sum[r] = softmax_row(h.scores + r * h.width, lo, first, last, hi, h.scale);
  }
  weigh_values<R>(h.scores, h.width, h.value, h.value_stride, lo, hi, inv_sum, h.out + i0 * h.out_stride,
                  h.out_stride);
}

void attend_head(const Head& h) {
  int64_t i0 = 0;
  for (; i0 + kRows <= h.length; i0 += kRows) attend_rows<kRows>(h, i0);
  switch (h.length - i0) {
    case 5: attend_rows<5>(h, i0); break;
    case 4: attend_rows<4>(h, i0); break;
    case 3: attend_rows<3>(h, i0); break;
    case 2: attend_rows<2>(h, i0); break;
    case 1: attend_rows<1>(h, i0); break;
    default: break;
  }
}

at::Tensor packed_attention(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                            const at::Tensor& cu_seqlens, int64_t window) {
  for (const at::Tensor* t : {&query, &key, &value}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kFloat, "packed_attention: float32 CPU tensors");
    TORCH_CHECK(t->dim() == 3 && t->size(2) == kHeadDim && t->stride(2) == 1,
                "packed_attention: (tokens, heads, 64) with unit stride in the last dimension");
    TORCH_CHECK(t->sizes() == query.sizes(), "packed_attention: query, key and value differ in shape");
  }
  const int64_t tokens = query.size(0), heads = query.size(1);
  const at::Tensor bounds = cu_seqlens.to(at::kLong).contiguous();
  const int64_t* cu = bounds.data_ptr<int64_t>();
  const int64_t docs = bounds.numel() - 1;
  TORCH_CHECK(docs >= 0 && cu[0] == 0 && cu[docs] == tokens, "packed_attention: cu_seqlens must run 0..tokens");
  for (int64_t doc = 0; doc < docs; ++doc)
    TORCH_CHECK(cu[doc + 1] >= cu[doc], "packed_attention: cu_seqlens must not decrease");
  at::Tensor out = at::empty({tokens, heads, kHeadDim}, query.options());
  const float *q = query.data_ptr<float>(), *k = key.data_ptr<float>(), *v = value.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const float scale = 1.0f / std::sqrt(float(kHeadDim));
  const int64_t key_stride = key.stride(0);
  at::parallel_for(0, docs * heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> keys_t, scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t doc = task / heads, head = task % heads, start = cu[doc], length = cu[doc + 1] - start;
      if (length <= 0) continue;
      const int64_t width = (length + 15) & ~int64_t(15);
      keys_t.resize(kHeadDim * width);
      scores.resize(kRows * width);
      transpose_keys(k + start * key_stride + head * key.stride(1), key_stride, length, width, keys_t.data());
      attend_head(Head{q + start * query.stride(0) + head * query.stride(1),
                       v + start * value.stride(0) + head * value.stride(1),
                       o + (start * heads + head) * kHeadDim, query.stride(0), value.stride(0), heads * kHeadDim,
                       length, width, window, scale, keys_t.data(), scores.data()});
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(rexbert, m) {
  m.def("packed_attention(Tensor query, Tensor key, Tensor value, Tensor cu_seqlens, int window) -> Tensor");
}

TORCH_LIBRARY_IMPL(rexbert, CPU, m) { m.impl("packed_attention", &packed_attention); }
