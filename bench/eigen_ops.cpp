#include "bench/eigen_ops.h"

#include <Eigen/Core>

namespace qlc::bench {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void eigenGemv(const float *w, int64_t n, int64_t k, const float *x, float *y, int64_t nb,
               int64_t ne) {
  Eigen::Map<const RowMat> W(w + nb * k, ne - nb, k);
  Eigen::Map<const Eigen::VectorXf> X(x, k);
  Eigen::Map<Eigen::VectorXf> Y(y + nb, ne - nb);
  Y.noalias() = W * X;
}

void eigenGemm(const float *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
               int64_t nb, int64_t ne) {
  Eigen::Map<const RowMat> W(w + nb * k, ne - nb, k);
  Eigen::Map<const RowMat> X(x, m, k);
  Eigen::Map<RowMat, 0, Eigen::OuterStride<>> Y(y + nb, m, ne - nb, Eigen::OuterStride<>(n));
  Y.noalias() = X * W.transpose();
}

float streamSum(const float *p, int64_t n) {
  typedef float v16 __attribute__((vector_size(64)));
  v16 a{}, b{}, c{}, d{};
  for (int64_t i = 0; i < n; i += 64) {
    a += *reinterpret_cast<const v16 *>(p + i);
    b += *reinterpret_cast<const v16 *>(p + i + 16);
    c += *reinterpret_cast<const v16 *>(p + i + 32);
    d += *reinterpret_cast<const v16 *>(p + i + 48);
  }
  v16 s = a + b + c + d;
  float r = 0;
  for (int i = 0; i < 16; ++i)
    r += s[i];
  return r;
}

} // namespace qlc::bench
