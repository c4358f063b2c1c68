// Small random data sets with fixed seeds for the model tests (no loaders).
#pragma once

#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/data/dataset.hpp"

namespace hesse::test {

/// d x n standard normal features; with `sparse`, about 30% of them kept and
/// stored in sparse_features instead.
inline void fill_features(data::Dataset<double>& set, Index d, Index n, bool sparse, Rng& rng) {
  Matrix<double> x(d, n);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  for (Index j = 0; j < n; ++j)
    for (Index i = 0; i < d; ++i) x(i, j) = (!sparse || uniform(rng) < 0.3) ? normal(rng) : 0.0;
  if (sparse) {
    set.sparse_features = x.sparseView();
    set.sparse_features.makeCompressed();
  } else {
    set.features = x;
  }
}

/// y = X^T w* + 1 + noise.
inline data::Dataset<double> make_regression(Index n, Index d, bool sparse, std::uint64_t seed) {
  Rng rng(seed);
  data::Dataset<double> set;
  fill_features(set, d, n, sparse, rng);
  Vector<double> w(d);
  fill_normal<double>(rng, w);
  Vector<double> noise(n);
  fill_normal<double>(rng, noise, 0.1);
  const Matrix<double> x = sparse ? Matrix<double>(set.sparse_features) : set.features;
  set.targets = (x.transpose() * w + noise).array() + 1.0;
  set.targets.transposeInPlace();
  set.name = "random regression";
  return set;
}

/// Labels argmax_k (W* x + noise)_k, so the classes overlap but are learnable.
inline data::Dataset<double> make_classification(Index n, Index d, int num_classes, bool sparse,
                                                 std::uint64_t seed) {
  Rng rng(seed);
  data::Dataset<double> set;
  fill_features(set, d, n, sparse, rng);
  const Matrix<double> x = sparse ? Matrix<double>(set.sparse_features) : set.features;
  Matrix<double> w(num_classes, d);
  for (Index j = 0; j < d; ++j) {
    Vector<double> column(num_classes);
    fill_normal<double>(rng, column);
    w.col(j) = column;
  }
  set.targets.resize(1, n);
  for (Index i = 0; i < n; ++i) {
    Vector<double> scores = w * x.col(i);
    Vector<double> noise(num_classes);
    fill_normal<double>(rng, noise, 0.5);
    Index label = 0;
    (scores + noise).maxCoeff(&label);
    set.targets(0, i) = static_cast<double>(label);
  }
  set.num_classes = num_classes;
  set.name = "random classification";
  return set;
}

/// The samples `indices` of `set` as a data set of their own.
inline data::Dataset<double> subset(const data::Dataset<double>& set, const std::vector<Index>& indices) {
  data::Dataset<double> out;
  const auto m = static_cast<Index>(indices.size());
  Matrix<double> x(set.num_features(), m);
  const Matrix<double> all = set.is_sparse() ? Matrix<double>(set.sparse_features) : set.features;
  out.targets.resize(set.targets.rows(), m);
  for (Index k = 0; k < m; ++k) {
    x.col(k) = all.col(indices[static_cast<std::size_t>(k)]);
    out.targets.col(k) = set.targets.col(indices[static_cast<std::size_t>(k)]);
  }
  if (set.is_sparse())
    out.sparse_features = x.sparseView();
  else
    out.features = x;
  out.num_classes = set.num_classes;
  return out;
}

inline Vector<double> random_vector(Index n, std::uint64_t seed, double stddev = 1.0) {
  Rng rng(seed);
  Vector<double> v(n);
  fill_normal<double>(rng, v, stddev);
  return v;
}

}  // namespace hesse::test
