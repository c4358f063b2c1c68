// Transforms of a Dataset: standardization, subsets, seeded splits, one-hot
// targets. Everything random takes a seed and is reproducible bit for bit on
// every platform (the shuffles use hesse's own Fisher-Yates, not std::shuffle,
// whose output the C++ standard leaves to the library).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/data/dataset.hpp"

namespace hesse::data {

/// Per-feature standardization x -> (x - mean) / std, fitted on training data
/// and applied unchanged to test data. A constant feature (std 0) is only
/// centred. Sparse features are only scaled, x -> x / std, so zeros stay zero
/// and the matrix stays sparse.
template <class T>
class Standardizer {
 public:
  /// Computes the mean and standard deviation of every feature of `train`.
  void fit(const Dataset<T>& train);
  /// Standardizes `data` in place; it must have as many features as the fit.
  void transform(Dataset<T>& data) const;

  bool is_fitted() const { return scale_.size() > 0; }
  const Vector<T>& mean() const { return mean_; }
  /// The standard deviation of each feature, with 0 replaced by 1.
  const Vector<T>& scale() const { return scale_; }

 private:
  Vector<T> mean_;
  Vector<T> scale_;
};

/// The samples `indices` of `data`, in that order (repeats allowed).
template <class T>
Dataset<T> subset(const Dataset<T>& data, std::span<const Index> indices);

/// Splits `data` into train and test sets at random, with round(n *
/// test_fraction) test samples. Stratified (classification only): every class
/// keeps its share in both parts, to within one sample. Both parts come out in
/// shuffled order. Requires 0 < test_fraction < 1 and at least one sample on
/// each side.
template <class T>
TrainTest<T> train_test_split(const Dataset<T>& data, double test_fraction, std::uint64_t seed,
                              bool stratify = true);

/// Class indices [1, n] as one-hot columns [num_classes, n].
template <class T>
Matrix<T> one_hot(const Dataset<T>& data);

/// Shuffles `values` in place (Fisher-Yates with unbiased bounded draws).
void shuffle(std::span<Index> values, Rng& rng);

}  // namespace hesse::data
