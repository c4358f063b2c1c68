// Shared by the AdaHessian and Sophia tests: a network problem, exact
// curvature diagonals from dense products, the root-mean-square error of an
// estimator over seeds, and a short training run.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <functional>
#include <vector>

#include "../common/small_network.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim::test_util {

template <class T>
struct Problem {
  explicit Problem(Index samples = 60, Index hidden = 16)
      : data(testing::blobs<T>(samples)),
        net(testing::small_mlp<T>(4, hidden, 3), nn::LossKind::SoftmaxCrossEntropy, data),
        f(net) {}
  data::Dataset<T> data;
  nn::NetworkObjective<T> net;
  StochasticAdapter<nn::NetworkObjective<T>> f;
};

inline std::vector<Index> first_samples(Index n) {
  std::vector<Index> batch(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) batch[static_cast<std::size_t>(i)] = i;
  return batch;
}

/// The dense Hessian (or Gauss-Newton matrix) on the selected samples, column
/// j = H e_j.
inline Matrix<double> dense_curvature(StochasticObjective<double>& f, const Vector<double>& x,
                                      bool gauss_newton) {
  const Index n = x.size();
  Matrix<double> H(n, n);
  Vector<double> e = Vector<double>::Zero(n), column;
  for (Index j = 0; j < n; ++j) {
    e[j] = 1;
    if (gauss_newton) {
      f.gauss_newton_vector(x, e, column);
    } else {
      f.hessian_vector(x, e, column);
    }
    H.col(j) = column;
    e[j] = 0;
  }
  return H;
}

/// sqrt(mean over `seeds` of |estimate(seed) - exact|^2) / |exact|.
inline double relative_rms_error(const Vector<double>& exact, int seeds,
                                 const std::function<void(Rng&, Vector<double>&)>& estimate) {
  double sum = 0;
  Vector<double> d;
  for (int s = 0; s < seeds; ++s) {
    Rng rng(static_cast<std::uint64_t>(1000 + s));
    estimate(rng, d);
    sum += (d - exact).squaredNorm();
  }
  return std::sqrt(sum / seeds) / exact.norm();
}

/// Full-batch loss of small_mlp on 384 blobs (0.87 at the initial point) after
/// `epochs` epochs of batches of 32 from a seeded BatchSampler.
template <class T>
double train(Optimizer<T>& opt, int epochs = 15) {
  Problem<T> p(384);
  Vector<T> x = p.net.network().initial_parameters(1);
  data::BatchSampler sampler(p.data.num_samples(), 32, 11);
  for (int epoch = 0; epoch < epochs; ++epoch) {
    sampler.start_epoch(static_cast<std::uint64_t>(epoch));
    for (Index b = 0; b < sampler.num_batches(); ++b) {
      const StepResult r = opt.step(p.f, x, sampler.batch(b));
      EXPECT_TRUE(r.accepted) << r.event;
    }
  }
  p.net.select_all();
  return static_cast<double>(p.net.value(x));
}

/// 12 steps straight against 6 steps, a checkpoint through bytes into a
/// fresh optimizer, and 6 more: x and the state must agree bit for bit.
template <class T, class Make>
void expect_bit_for_bit_continuation(Make make) {
  Problem<T> p(384);
  data::BatchSampler sampler(p.data.num_samples(), 32, 4);
  sampler.start_epoch(0);
  const Vector<T> x0 = p.net.network().initial_parameters(2);
  auto straight = make();
  Vector<T> x_straight = x0;
  for (Index b = 0; b < 12; ++b) straight->step(p.f, x_straight, sampler.batch(b));

  auto first = make();
  Vector<T> x = x0;
  for (Index b = 0; b < 6; ++b) first->step(p.f, x, sampler.batch(b));
  StateDict saved;
  first->save_state(saved);
  auto resumed = make();
  resumed->load_state(StateDict::deserialize(saved.serialize(), "memory"));
  EXPECT_EQ(resumed->step_count(), 6);
  for (Index b = 6; b < 12; ++b) resumed->step(p.f, x, sampler.batch(b));
  EXPECT_EQ(0, std::memcmp(x_straight.data(), x.data(), sizeof(T) * x0.size()));
  StateDict a, b;
  straight->save_state(a);
  resumed->save_state(b);
  EXPECT_EQ(a.serialize(), b.serialize());
}

/// A NaN in x rejects the step: x, the state and the step count unchanged.
template <class Opt>
void expect_nan_rejected(Opt& opt) {
  Problem<double> p;
  Vector<double> x = p.net.network().initial_parameters(2);
  const auto batch = first_samples(20);
  opt.step(p.f, x, batch);
  StateDict before;
  opt.save_state(before);
  x[2] = std::numeric_limits<double>::quiet_NaN();
  const Vector<double> x_before = x;
  const StepResult r = opt.step(p.f, x, batch);
  EXPECT_FALSE(r.accepted);
  EXPECT_NE(r.event.find("non-finite"), std::string::npos) << r.event;
  EXPECT_EQ(0, std::memcmp(x.data(), x_before.data(), sizeof(double) * x.size()));
  EXPECT_EQ(opt.step_count(), 1);
  StateDict after;
  opt.save_state(after);
  EXPECT_EQ(before.serialize(), after.serialize());
}

}  // namespace hesse::optim::test_util
