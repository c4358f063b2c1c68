// Seeded random numbers. One seed reaches every random choice in hesse
// (initialisation, shuffling, probes), so a run is reproducible bit for bit.
#pragma once

#include <cstdint>
#include <random>

#include "hesse/core/types.hpp"

namespace hesse {

using Rng = std::mt19937_64;

/// Fills `out` with independent N(0, stddev^2) draws.
template <class T>
void fill_normal(Rng& rng, Eigen::Ref<Vector<T>> out, T stddev = T(1)) {
  std::normal_distribution<double> normal(0.0, static_cast<double>(stddev));
  for (Index i = 0; i < out.size(); ++i) out[i] = static_cast<T>(normal(rng));
}

/// Fills `out` with independent U(low, high) draws.
template <class T>
void fill_uniform(Rng& rng, Eigen::Ref<Vector<T>> out, T low, T high) {
  std::uniform_real_distribution<double> uniform(static_cast<double>(low),
                                                 static_cast<double>(high));
  for (Index i = 0; i < out.size(); ++i) out[i] = static_cast<T>(uniform(rng));
}

}  // namespace hesse
