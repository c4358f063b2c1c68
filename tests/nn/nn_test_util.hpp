// Small random networks and data sets for the nn tests (fixed seeds).
#pragma once

#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/nn/loss.hpp"

namespace hesse::nn::test_util {

/// n samples of d standard-normal features; targets fit `loss` with k outputs.
template <class T>
data::Dataset<T> random_dataset(Index d, Index n, Index k, LossKind loss, std::uint64_t seed) {
  Rng rng(seed);
  data::Dataset<T> set;
  set.name = "random";
  set.features.resize(d, n);
  Vector<T> column(d);
  for (Index i = 0; i < n; ++i) {
    fill_normal<T>(rng, column);
    set.features.col(i) = column;
  }
  if (loss == LossKind::MeanSquaredError) {
    set.targets.resize(k, n);
    Vector<T> target(k);
    for (Index i = 0; i < n; ++i) {
      fill_normal<T>(rng, target);
      set.targets.col(i) = target;
    }
  } else {
    const int classes = loss == LossKind::BinaryLogistic ? 2 : static_cast<int>(k);
    set.num_classes = classes;
    set.targets.resize(1, n);
    std::uniform_int_distribution<int> label(0, classes - 1);
    for (Index i = 0; i < n; ++i) set.targets(0, i) = static_cast<T>(label(rng));
  }
  return set;
}

inline Index outputs_for(LossKind loss, Index classes) {
  return loss == LossKind::BinaryLogistic ? 1 : classes;
}

}  // namespace hesse::nn::test_util
