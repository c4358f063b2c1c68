#include "hesse/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::data {

namespace {

// Uniform draw from [0, bound) without modulo bias: rejects the few raw values
// below 2^64 mod bound.
std::uint64_t bounded_draw(Rng& rng, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;
  while (true) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

void shuffle(std::span<Index> values, Rng& rng) {
  for (std::size_t i = values.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(bounded_draw(rng, i));
    std::swap(values[i - 1], values[j]);
  }
}

template <class T>
void Standardizer<T>::fit(const Dataset<T>& train) {
  const Index n = train.num_samples();
  const Index d = train.num_features();
  HESSE_REQUIRE(n > 0, "Standardizer::fit: the training set has no samples");
  // Sums in double: float accumulation over 60,000 samples loses digits.
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(d);
  Eigen::VectorXd sum_squares = Eigen::VectorXd::Zero(d);
  if (train.is_sparse()) {
    const auto& x = train.sparse_features;
    for (Index j = 0; j < x.outerSize(); ++j)
      for (typename SparseMatrix<T>::InnerIterator it(x, j); it; ++it) {
        sum[it.row()] += static_cast<double>(it.value());
        sum_squares[it.row()] += static_cast<double>(it.value()) * static_cast<double>(it.value());
      }
    sum /= static_cast<double>(n);
    sum_squares = (sum_squares / static_cast<double>(n) - sum.cwiseAbs2()).cwiseMax(0.0);
  } else {
    const Eigen::MatrixXd x = train.features.template cast<double>();
    sum = x.rowwise().mean();
    sum_squares = (x.colwise() - sum).cwiseAbs2().rowwise().mean();
  }
  mean_ = sum.cast<T>();
  scale_ = sum_squares.cwiseSqrt()
               .unaryExpr([](double s) { return s > 0 ? s : 1.0; })
               .template cast<T>();
}

template <class T>
void Standardizer<T>::transform(Dataset<T>& data) const {
  HESSE_REQUIRE(is_fitted(), "Standardizer::transform called before fit");
  HESSE_REQUIRE(data.num_features() == scale_.size(),
                "Standardizer::transform: the data has " + std::to_string(data.num_features()) +
                    " features, the fit had " + std::to_string(scale_.size()));
  if (data.is_sparse()) {
    auto& x = data.sparse_features;
    for (Index j = 0; j < x.outerSize(); ++j)
      for (typename SparseMatrix<T>::InnerIterator it(x, j); it; ++it)
        it.valueRef() /= scale_[it.row()];
    return;
  }
  data.features = (data.features.colwise() - mean_).array().colwise() / scale_.array();
}

template <class T>
Dataset<T> subset(const Dataset<T>& data, std::span<const Index> indices) {
  const Index n = data.num_samples();
  for (const Index i : indices)
    HESSE_REQUIRE(i >= 0 && i < n, "subset: index " + std::to_string(i) + " is out of range for " +
                                       std::to_string(n) + " samples");
  const auto m = static_cast<Index>(indices.size());
  Dataset<T> out;
  out.num_classes = data.num_classes;
  out.name = data.name;
  out.class_names = data.class_names;
  out.targets.resize(data.targets.rows(), m);
  for (Index k = 0; k < m; ++k) out.targets.col(k) = data.targets.col(indices[k]);
  if (data.is_sparse()) {
    const auto& x = data.sparse_features;
    Index nonzeros = 0;
    for (const Index i : indices) nonzeros += x.outerIndexPtr()[i + 1] - x.outerIndexPtr()[i];
    out.sparse_features.resize(x.rows(), m);
    out.sparse_features.reserve(nonzeros);
    for (Index k = 0; k < m; ++k) {
      out.sparse_features.startVec(k);
      for (typename SparseMatrix<T>::InnerIterator it(x, indices[k]); it; ++it)
        out.sparse_features.insertBack(it.row(), k) = it.value();
    }
    out.sparse_features.finalize();
  } else {
    out.features.resize(data.features.rows(), m);
    for (Index k = 0; k < m; ++k) out.features.col(k) = data.features.col(indices[k]);
  }
  return out;
}

template <class T>
TrainTest<T> train_test_split(const Dataset<T>& data, double test_fraction, std::uint64_t seed,
                              bool stratify) {
  HESSE_REQUIRE(test_fraction > 0 && test_fraction < 1,
                "train_test_split: test_fraction = " + std::to_string(test_fraction) +
                    ": must lie strictly between 0 and 1");
  const Index n = data.num_samples();
  const auto num_test = static_cast<Index>(std::llround(static_cast<double>(n) * test_fraction));
  HESSE_REQUIRE(num_test >= 1 && num_test < n,
                "train_test_split: test_fraction = " + std::to_string(test_fraction) + " of " +
                    std::to_string(n) + " samples leaves " + std::to_string(num_test) +
                    " test and " + std::to_string(n - num_test) +
                    " training samples; both need at least one");
  Rng rng(seed);
  std::vector<Index> train_indices, test_indices;

  if (stratify && data.is_classification()) {
    std::vector<std::vector<Index>> by_class(static_cast<std::size_t>(data.num_classes));
    for (Index i = 0; i < n; ++i) {
      const int label = data.label(i);
      HESSE_REQUIRE(label >= 0 && label < data.num_classes,
                    "train_test_split: sample " + std::to_string(i) + " has label " +
                        std::to_string(label) + " outside 0.." +
                        std::to_string(data.num_classes - 1));
      by_class[static_cast<std::size_t>(label)].push_back(i);
    }
    // Largest-remainder apportionment: each class gets floor(share) test
    // samples, and the ones left over go to the largest fractional shares, so
    // the total is exactly num_test.
    std::vector<Index> quota(by_class.size());
    std::vector<std::pair<double, std::size_t>> remainders;
    Index assigned = 0;
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      const double share = static_cast<double>(by_class[c].size()) * static_cast<double>(num_test) /
                           static_cast<double>(n);
      quota[c] = static_cast<Index>(std::floor(share));
      assigned += quota[c];
      remainders.emplace_back(share - std::floor(share), c);
    }
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t k = 0; assigned < num_test && k < remainders.size(); ++k, ++assigned)
      ++quota[remainders[k].second];
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      auto& members = by_class[c];
      shuffle(members, rng);
      const auto split = members.begin() + quota[c];
      test_indices.insert(test_indices.end(), members.begin(), split);
      train_indices.insert(train_indices.end(), split, members.end());
    }
  } else {
    std::vector<Index> order(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    shuffle(order, rng);
    test_indices.assign(order.begin(), order.begin() + num_test);
    train_indices.assign(order.begin() + num_test, order.end());
  }
  // Stratification leaves the parts grouped by class; mix them.
  shuffle(train_indices, rng);
  shuffle(test_indices, rng);
  return {subset(data, std::span<const Index>(train_indices)),
          subset(data, std::span<const Index>(test_indices))};
}

template <class T>
Matrix<T> one_hot(const Dataset<T>& data) {
  HESSE_REQUIRE(data.is_classification(), "one_hot: " + data.name + " is not a classification set");
  Matrix<T> out = Matrix<T>::Zero(data.num_classes, data.num_samples());
  for (Index i = 0; i < data.num_samples(); ++i) {
    const int label = data.label(i);
    HESSE_REQUIRE(label >= 0 && label < data.num_classes,
                  "one_hot: sample " + std::to_string(i) + " has label " + std::to_string(label) +
                      " outside 0.." + std::to_string(data.num_classes - 1));
    out(label, i) = T(1);
  }
  return out;
}

#define HESSE_INSTANTIATE(T)                                                                 \
  template class Standardizer<T>;                                                            \
  template Dataset<T> subset<T>(const Dataset<T>&, std::span<const Index>);                  \
  template TrainTest<T> train_test_split<T>(const Dataset<T>&, double, std::uint64_t, bool); \
  template Matrix<T> one_hot<T>(const Dataset<T>&);
HESSE_INSTANTIATE(float)
HESSE_INSTANTIATE(double)
#undef HESSE_INSTANTIATE

}  // namespace hesse::data
