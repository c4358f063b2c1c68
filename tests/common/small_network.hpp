// A small seeded classification problem shared by the mini-batch optimizer
// tests: three Gaussian blobs in 4-D (well separated, so every sensible
// optimizer reaches a low loss) and a 4-16-3 tanh network.
#pragma once

#include <cstdint>
#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/nn/sequential.hpp"

namespace hesse::testing {

template <class T>
data::Dataset<T> blobs(Index samples = 384, std::uint64_t seed = 7, int classes = 3,
                       Index features = 4) {
  Rng rng(seed);
  Matrix<T> centres(features, classes);
  for (Index j = 0; j < centres.size(); ++j) centres.data()[j] = T(0);
  for (int c = 0; c < classes; ++c) centres(c % features, c) = T(2.5);
  data::Dataset<T> d;
  d.features.resize(features, samples);
  d.targets.resize(1, samples);
  d.num_classes = classes;
  d.name = "blobs";
  Vector<T> noise(features);
  for (Index i = 0; i < samples; ++i) {
    const int c = static_cast<int>(i % classes);
    fill_normal<T>(rng, noise, T(1));
    d.features.col(i) = centres.col(c) + noise;
    d.targets(0, i) = T(c);
  }
  for (int c = 0; c < classes; ++c) d.class_names.push_back(std::to_string(c));
  return d;
}

template <class T>
nn::Sequential<T> small_mlp(Index inputs = 4, Index hidden = 16, Index outputs = 3,
                            nn::ActivationKind activation = nn::ActivationKind::Tanh) {
  const std::vector<Index> sizes{inputs, hidden, outputs};
  return nn::make_mlp<T>(sizes, activation);
}

}  // namespace hesse::testing
