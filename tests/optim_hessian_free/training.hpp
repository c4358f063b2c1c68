// The problems the Hessian-free family's tests train on: a consistent linear
// least-squares problem with a known minimiser, and small_mlp on blobs with
// seeded batches of 128 (three per epoch: second-order steps fit their batch
// closely, and on batches of 64 their full-set loss jumps about).
#pragma once

#include <numeric>
#include <vector>

#include "../common/small_network.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/models/linear_least_squares.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::testing {

inline std::vector<Index> all_indices(Index n) {
  std::vector<Index> indices(static_cast<std::size_t>(n));
  std::iota(indices.begin(), indices.end(), Index(0));
  return indices;
}

/// y = w_star^T x exactly on 60 samples in 6-D: the least-squares minimiser is w_star.
struct LinearProblem {
  data::Dataset<double> data;
  Vector<double> w_star;
  models::LinearLeastSquares<double> model;
  optim::StochasticAdapter<models::LinearLeastSquares<double>> f;

  LinearProblem() : data(make_data()), w_star(make_w_star()), model(data), f(model) {}

 private:
  static Vector<double> make_w_star() {
    Vector<double> w(6);
    w << 1.5, -2, 0.25, 3, -0.5, 1;
    return w;
  }
  static data::Dataset<double> make_data() {
    data::Dataset<double> d;
    Rng rng(3);
    d.features.resize(6, 60);
    Vector<double> column(6);
    for (Index i = 0; i < 60; ++i) {
      fill_normal<double>(rng, column);
      d.features.col(i) = column;
    }
    d.targets = make_w_star().transpose() * d.features;
    return d;
  }
};

/// small_mlp (4-16-3 tanh) on 384 blobs, softmax cross-entropy.
template <class T>
struct Classification {
  data::Dataset<T> data = blobs<T>(384);
  nn::NetworkObjective<T> net{small_mlp<T>(), nn::LossKind::SoftmaxCrossEntropy, data};
  optim::StochasticAdapter<nn::NetworkObjective<T>> f{net};
  Vector<T> x = net.network().initial_parameters(1);
  data::BatchSampler sampler{384, 128, 11};

  double full_loss() {
    net.select_all();
    return static_cast<double>(net.value(x));
  }
  /// The batch of the k-th step, k = 0, 1, ...
  std::span<const Index> batch(Index k) {
    sampler.start_epoch(static_cast<std::uint64_t>(k / sampler.num_batches()));
    return sampler.batch(k % sampler.num_batches());
  }
  double accuracy() {
    net.select_all();
    return net.accuracy(x);
  }
  /// `steps` steps; returns the loss on all 384 samples. Counts rejected steps.
  double train(optim::Optimizer<T>& optimizer, Index steps, int* rejected = nullptr) {
    for (Index k = 0; k < steps; ++k) {
      const optim::StepResult r = optimizer.step(f, x, batch(k));
      if (!r.accepted && rejected) ++*rejected;
    }
    return full_loss();
  }
};

}  // namespace hesse::testing
