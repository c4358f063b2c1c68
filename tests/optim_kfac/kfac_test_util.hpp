// Shared by the K-FAC tests: the blobs problem of tests/common behind a
// StochasticObjective, and the batches of a seeded sampler.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <gtest/gtest.h>
#include <omp.h>

#include "../common/small_network.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/optim/kfac.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim::kfac_test {

/// small_mlp (features-hidden-3 tanh, 4-16-3 by default) with softmax
/// cross-entropy on `samples` blobs, on one thread (an OpenMP region on the
/// shared cores can wait a timeslice for a descheduled thread). The
/// objective keeps a reference to the data, so all three live together.
template <class T>
struct Problem {
  explicit Problem(Index samples = 384, nn::NetworkObjectiveOptions options = {.threads = 1},
                   Index features = 4, Index hidden = 16)
      : data(testing::blobs<T>(samples, 7, 3, features)),
        network(testing::small_mlp<T>(features, hidden, 3), nn::LossKind::SoftmaxCrossEntropy, data,
                options),
        f(network) {}
  Vector<T> start(std::uint64_t seed = 1) const { return network.network().initial_parameters(seed); }
  /// Mean loss over every sample.
  double full_loss(const Vector<T>& x) {
    network.select_all();
    return static_cast<double>(network.value_and_gradient(x, nullptr));
  }

  data::Dataset<T> data;
  nn::NetworkObjective<T> network;
  StochasticAdapter<nn::NetworkObjective<T>> f;
};

/// kron(A, G): the Fisher block of vec([W b]) for column-major [W b].
inline Matrix<double> kron(const Matrix<double>& A, const Matrix<double>& G) {
  Matrix<double> K(A.rows() * G.rows(), A.cols() * G.cols());
  for (Index j = 0; j < A.cols(); ++j)
    for (Index i = 0; i < A.rows(); ++i)
      K.block(i * G.rows(), j * G.cols(), G.rows(), G.cols()) = A(i, j) * G;
  return K;
}

/// The symmetric matrix whose lower triangle K-FAC keeps (Kfac::factors()),
/// after checking that the strictly upper triangle is zero as documented.
template <class T>
Matrix<T> symmetric(const Matrix<T>& lower) {
  EXPECT_EQ(Matrix<T>(lower.template triangularView<Eigen::StrictlyUpper>()).cwiseAbs().maxCoeff(),
            T(0))
      << "the strictly upper triangle of a K-FAC factor is not zero";
  return lower.template selfadjointView<Eigen::Lower>();
}

/// The sample indices begin, ..., end - 1.
inline std::vector<Index> range(Index begin, Index end) {
  std::vector<Index> v;
  for (Index i = begin; i < end; ++i) v.push_back(i);
  return v;
}

/// One step of `kfac` from x0 on `batch` into x, and the batch's gradient
/// at x0; returns whether the step was accepted.
template <class T>
bool step_and_gradient(Problem<T>& p, Kfac<T>& kfac, const Vector<T>& x0,
                       std::span<const Index> batch, Vector<T>& x, Vector<T>& gradient) {
  x = x0;
  const bool accepted = kfac.step(p.f, x, batch).accepted;
  p.f.select_batch(batch);
  p.f.value_and_gradient(x0, &gradient);
  return accepted;
}

/// The batches of `epochs` epochs of size `batch_size`, in order.
inline std::vector<std::vector<Index>> batches(Index samples, Index batch_size, Index epochs,
                                               std::uint64_t seed = 5) {
  data::BatchSampler sampler(samples, batch_size, seed);
  std::vector<std::vector<Index>> out;
  for (Index e = 0; e < epochs; ++e) {
    sampler.start_epoch(static_cast<std::uint64_t>(e));
    for (Index b = 0; b < sampler.num_batches(); ++b) {
      const auto batch = sampler.batch(b);
      out.emplace_back(batch.begin(), batch.end());
    }
  }
  return out;
}

/// x after each step of one epoch of batches of 32 with K-FAC on a fresh
/// Problem(samples, one thread, features, hidden) from start(), K-FAC's own
/// work on `threads` OpenMP threads (the count is restored after).
template <class T>
std::vector<Vector<T>> trajectory(const KfacOptions& options, int threads, Index samples = 384,
                                  Index features = 4, Index hidden = 16) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  Problem<T> p(samples, {.threads = 1}, features, hidden);
  Kfac<T> kfac(options);
  Vector<T> x = p.start();
  std::vector<Vector<T>> out;
  for (const auto& batch : batches(samples, 32, 1)) {
    kfac.step(p.f, x, batch);
    out.push_back(x);
  }
  omp_set_num_threads(saved);
  return out;
}

}  // namespace hesse::optim::kfac_test
