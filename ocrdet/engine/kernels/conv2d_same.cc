// Stride-1 "same" 2-D convolution (NCHW, float32, odd square kernel K, padding K/2, groups 1, no bias) for the CPU,
// without im2col: with the input zero-padded into one [Cin, N*(H+2P)*(W+2P)] buffer, tap (kh, kw) of the kernel is
// a plain GEMM of that buffer shifted by kh*(W+2P)+kw columns, so the conv is K*K accumulating MKL GEMMs over the
// whole batch (outputs computed on the padded width; the extra columns are dropped). The gradients are the same
// GEMMs transposed. The columns are cut into blocks, one OpenMP thread per block running single-threaded MKL, so the
// K*K GEMMs of a block re-read its columns from the cache. Paddle 3.3.1's CPU conv instead unfolds K*K*Cin rows per
// output pixel (im2col, one thread) per image: 2.3-4.4x slower on the student's 96->24 3x3 convs.
#include "paddle/extension.h"

#include <omp.h>

#include <cstring>
#include <memory>
#include <vector>

extern "C" int MKL_Set_Num_Threads_Local(int threads);
extern "C" void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;  // the CBLAS ABI's enum values

struct Geometry {
  int N, Cin, H, W, Cout, K, P, Wp, Hp;
  long S, T, L;  // one image's padded slab, the buffer's row (slabs + tail), GEMM columns
};

Geometry geometry(const paddle::Tensor& x, const paddle::Tensor& w) {
  PD_CHECK(x.is_cpu() && x.dtype() == paddle::DataType::FLOAT32, "ocrdet_conv2d_same takes CPU float32");
  const auto& d = x.shape();
  const auto& k = w.shape();
  PD_CHECK(d.size() == 4 && k.size() == 4 && k[1] == d[1] && k[2] == k[3] && k[2] % 2 == 1,
           "ocrdet_conv2d_same: NCHW input and [Cout, Cin, K, K] weight with odd K");
  Geometry g;
  g.N = d[0]; g.Cin = d[1]; g.H = d[2]; g.W = d[3]; g.Cout = k[0]; g.K = k[2]; g.P = g.K / 2;
  g.Wp = g.W + 2 * g.P; g.Hp = g.H + 2 * g.P;
  g.S = static_cast<long>(g.Hp) * g.Wp;
  g.L = (g.N - 1) * g.S + static_cast<long>(g.H) * g.Wp;
  g.T = g.N * g.S + g.K;  // the last tap of the last column reads N*S + K - 2
  PD_CHECK(g.T + (g.K - 1) * (g.Wp + 1L) < 2147483647L, "ocrdet_conv2d_same: a batch too large for 32-bit GEMM sizes");
  return g;
}

std::unique_ptr<float[]> buffer(long n) { return std::unique_ptr<float[]>(new float[n]); }

// xp[c][n*S + (h+P)*Wp + P + w] = x[n][c][h][w], zeros around each image and in the tail.
void pad_input(const Geometry& g, const float* x, float* xp) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int c = 0; c < g.Cin; ++c) {
    for (int n = 0; n < g.N; ++n) {
      float* slab = xp + c * g.T + n * g.S;
      const float* src = x + (static_cast<long>(n) * g.Cin + c) * g.H * g.W;
      std::memset(slab, 0, sizeof(float) * g.P * g.Wp);
      for (int h = 0; h < g.H; ++h) {
        float* row = slab + static_cast<long>(h + g.P) * g.Wp;
        std::memset(row, 0, sizeof(float) * g.P);
        std::memcpy(row + g.P, src + static_cast<long>(h) * g.W, sizeof(float) * g.W);
        std::memset(row + g.P + g.W, 0, sizeof(float) * g.P);
      }
      std::memset(slab + static_cast<long>(g.H + g.P) * g.Wp, 0, sizeof(float) * g.P * g.Wp);
      if (n == g.N - 1) std::memset(slab + g.S, 0, sizeof(float) * g.K);
    }
  }
}

// wt[tap][co][ci] = w[co][ci][tap]: each tap's weights as one row-major matrix.
void split_taps(const Geometry& g, const float* w, float* wt) {
  const int taps = g.K * g.K;
  for (int co = 0; co < g.Cout; ++co)
    for (int ci = 0; ci < g.Cin; ++ci)
      for (int t = 0; t < taps; ++t) wt[(static_cast<long>(t) * g.Cout + co) * g.Cin + ci] = w[(static_cast<long>(co) * g.Cin + ci) * taps + t];
}

inline long tap_offset(const Geometry& g, int t) { return static_cast<long>(t / g.K) * g.Wp + t % g.K; }

// The NCHW tensor [N, C, H, W] of a padded-layout buffer: out[n][c][h][w] = src[c*row + n*S + first + h*Wp + w].
paddle::Tensor unpad(const Geometry& g, int C, const float* src, long row, long first) {
  auto out = paddle::empty({g.N, C, g.H, g.W}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  float* o = out.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < g.N; ++n)
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < g.H; ++h)
        std::memcpy(o + ((static_cast<long>(n) * C + c) * g.H + h) * g.W,
                    src + c * row + n * g.S + first + static_cast<long>(h) * g.Wp, sizeof(float) * g.W);
  return out;
}


// GEMM columns per block: a block's input rows (Cin x ~1024 floats, a few hundred KB for the student's necks) stay in
// the core's cache while its K*K taps read them (measured on the 96->24 3x3 convs: 512-2048 equal, 1024 best).
constexpr long kBlock = 1024;

// f(first column, columns, thread) over blocks of the GEMMs' columns, a static share per thread (deterministic for a
// thread count), each thread running MKL on one thread: a block's K*K taps then re-read its columns from the cache.
template <class F>
void for_blocks(long columns, long block, F f) {
  const long blocks = (columns + block - 1) / block;
#pragma omp parallel
  {
    const int saved = MKL_Set_Num_Threads_Local(1);
#pragma omp for schedule(static)
    for (long b = 0; b < blocks; ++b) f(b * block, std::min(block, columns - b * block), omp_get_thread_num());
    MKL_Set_Num_Threads_Local(saved);
  }
}

}  // namespace

std::vector<paddle::Tensor> ConvSameForward(const paddle::Tensor& x, const paddle::Tensor& w) {
  const Geometry g = geometry(x, w);
  const int taps = g.K * g.K;
  auto xp = buffer(g.Cin * g.T);
  auto wt = buffer(static_cast<long>(taps) * g.Cout * g.Cin);
  auto ye = buffer(g.Cout * g.L);
  pad_input(g, x.data<float>(), xp.get());
  split_taps(g, w.data<float>(), wt.get());
  for_blocks(g.L, kBlock, [&](long j, long n, int) {
    for (int t = 0; t < taps; ++t)
      cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, g.Cout, n, g.Cin, 1.f, wt.get() + static_cast<long>(t) * g.Cout * g.Cin,
                  g.Cin, xp.get() + tap_offset(g, t) + j, g.T, t ? 1.f : 0.f, ye.get() + j, g.L);
  });
  return {unpad(g, g.Cout, ye.get(), g.L, 0)};
}

std::vector<paddle::Tensor> ConvSameBackward(const paddle::Tensor& x, const paddle::Tensor& w, const paddle::Tensor& dy) {
  const Geometry g = geometry(x, w);
  const int taps = g.K * g.K;
  const long margin = tap_offset(g, taps - 1), row = margin + g.N * g.S;
  // The output gradient on the GEMMs' columns, after `margin` zeros (taps read back that far), zero on the columns
  // that are not outputs.
  auto gp = buffer(g.Cout * row);
  const float* dyp = dy.data<float>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int co = 0; co < g.Cout; ++co)
    for (int n = 0; n < g.N; ++n) {
      float* slab = gp.get() + co * row + margin + n * g.S;
      if (n == 0) std::memset(slab - margin, 0, sizeof(float) * margin);
      for (int h = 0; h < g.H; ++h) {
        float* r = slab + static_cast<long>(h) * g.Wp;
        std::memcpy(r, dyp + ((static_cast<long>(n) * g.Cout + co) * g.H + h) * g.W, sizeof(float) * g.W);
        std::memset(r + g.W, 0, sizeof(float) * (g.Wp - g.W));
      }
      std::memset(slab + static_cast<long>(g.H) * g.Wp, 0, sizeof(float) * (g.S - static_cast<long>(g.H) * g.Wp));
    }
  const float* ge = gp.get() + margin;
  auto xp = buffer(g.Cin * g.T);
  auto wt = buffer(static_cast<long>(taps) * g.Cout * g.Cin);
  pad_input(g, x.data<float>(), xp.get());
  split_taps(g, w.data<float>(), wt.get());
  // Weight gradient: per tap, G [Cout, L] x shifted Xp^T [L, Cin], a partial sum per thread.
  const long wsize = static_cast<long>(taps) * g.Cout * g.Cin;
  const int threads = omp_get_max_threads();
  std::vector<float> partial(static_cast<size_t>(wsize) * threads, 0.f);
  for_blocks(g.L, kBlock, [&](long j, long n, int thread) {
    float* dwt = partial.data() + wsize * thread;
    for (int t = 0; t < taps; ++t)
      cblas_sgemm(kRowMajor, kNoTrans, kTrans, g.Cout, g.Cin, n, 1.f, ge + j, row, xp.get() + tap_offset(g, t) + j, g.T,
                  1.f, dwt + static_cast<long>(t) * g.Cout * g.Cin, g.Cin);
  });
  auto dw = paddle::empty({g.Cout, g.Cin, g.K, g.K}, paddle::DataType::FLOAT32, paddle::CPUPlace());
  float* dwp = dw.data<float>();
  for (int co = 0; co < g.Cout; ++co)
    for (int ci = 0; ci < g.Cin; ++ci)
      for (int t = 0; t < taps; ++t) {
        const long at = (static_cast<long>(t) * g.Cout + co) * g.Cin + ci;
        float sum = 0.f;
        for (int p = 0; p < threads; ++p) sum += partial[wsize * p + at];
        dwp[(static_cast<long>(co) * g.Cin + ci) * taps + t] = sum;
      }
  // Input gradient on the padded columns: per tap, W_t^T [Cin, Cout] x G shifted back by the tap.
  float* dxp = xp.get();  // the padded input is no longer needed
  const long columns = g.N * g.S;
  for_blocks(columns, kBlock, [&](long j, long n, int) {
    for (int t = 0; t < taps; ++t)
      cblas_sgemm(kRowMajor, kTrans, kNoTrans, g.Cin, n, g.Cout, 1.f, wt.get() + static_cast<long>(t) * g.Cout * g.Cin,
                  g.Cin, ge + j - tap_offset(g, t), row, t ? 1.f : 0.f, dxp + j, g.T);
  });
  return {unpad(g, g.Cin, dxp, g.T, static_cast<long>(g.P) * g.Wp + g.P), dw};
}

std::vector<std::vector<int64_t>> ConvSameShape(const std::vector<int64_t>& x, const std::vector<int64_t>& w) {
  return {{x[0], w[0], x[2], x[3]}};
}

std::vector<paddle::DataType> ConvSameDtype(const paddle::DataType& x, const paddle::DataType& w) { return {x}; }

PD_BUILD_OP(ocrdet_conv2d_same)
    .Inputs({"X", "W"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(ConvSameForward))
    .SetInferShapeFn(PD_INFER_SHAPE(ConvSameShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(ConvSameDtype));

PD_BUILD_GRAD_OP(ocrdet_conv2d_same)
    .Inputs({"X", "W", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W")})
    .SetKernelFn(PD_KERNEL(ConvSameBackward));
