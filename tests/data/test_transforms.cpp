#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "hesse/core/error.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/data/transforms.hpp"

namespace hesse::data {
namespace {

// n samples, feature 0 = the sample's index (to trace it through splits),
// feature 1 = a constant, label = i mod num_classes (or i * 3 mod 7 if
// unbalanced).
Dataset<double> indexed_set(Index n, int num_classes) {
  Dataset<double> data;
  data.features.resize(2, n);
  data.targets.resize(1, n);
  for (Index i = 0; i < n; ++i) {
    data.features(0, i) = static_cast<double>(i);
    data.features(1, i) = 5.0;
    data.targets(0, i) = static_cast<double>(i % num_classes);
  }
  data.num_classes = num_classes;
  data.name = "indexed";
  return data;
}

std::vector<Index> sample_ids(const Dataset<double>& data) {
  std::vector<Index> ids;
  for (Index i = 0; i < data.num_samples(); ++i)
    ids.push_back(static_cast<Index>(data.features(0, i)));
  return ids;
}

TEST(Standardizer, DenseTrainHasZeroMeanUnitStd) {
  auto data = indexed_set(10, 2);
  Standardizer<double> standardizer;
  standardizer.fit(data);
  EXPECT_DOUBLE_EQ(standardizer.mean()[0], 4.5);
  EXPECT_DOUBLE_EQ(standardizer.scale()[0], std::sqrt(8.25));
  EXPECT_DOUBLE_EQ(standardizer.scale()[1], 1.0);  // constant feature: std 0 -> 1
  standardizer.transform(data);
  EXPECT_NEAR(data.features.row(0).mean(), 0.0, 1e-12);
  EXPECT_NEAR(data.features.row(0).squaredNorm() / 10.0, 1.0, 1e-12);
  EXPECT_EQ(data.features.row(1).norm(), 0.0);
}

TEST(Standardizer, TestDataUsesTrainStatistics) {
  const auto train = indexed_set(10, 2);
  auto test = indexed_set(3, 2);
  Standardizer<double> standardizer;
  standardizer.fit(train);
  standardizer.transform(test);
  EXPECT_DOUBLE_EQ(test.features(0, 0), -4.5 / std::sqrt(8.25));
}

TEST(Standardizer, SparseIsOnlyScaled) {
  Dataset<float> data;
  data.sparse_features.resize(2, 4);
  data.sparse_features.insert(0, 0) = 2.0f;
  data.sparse_features.insert(0, 1) = -2.0f;
  data.sparse_features.insert(1, 2) = 3.0f;
  data.sparse_features.makeCompressed();
  data.targets = Matrix<float>::Zero(1, 4);
  Standardizer<float> standardizer;
  standardizer.fit(data);
  // Feature 0: values 2, -2, 0, 0 -> mean 0, std sqrt(2).
  EXPECT_FLOAT_EQ(standardizer.scale()[0], std::sqrt(2.0f));
  standardizer.transform(data);
  ASSERT_TRUE(data.is_sparse());
  EXPECT_EQ(data.sparse_features.nonZeros(), 3);
  EXPECT_FLOAT_EQ(data.sparse_features.coeff(0, 0), 2.0f / std::sqrt(2.0f));
}

TEST(Standardizer, RejectsMisuse) {
  Standardizer<double> standardizer;
  auto data = indexed_set(4, 2);
  EXPECT_THROW(standardizer.transform(data), InvalidArgument);
  standardizer.fit(data);
  Dataset<double> wider = data;
  wider.features.conservativeResize(3, Eigen::NoChange);
  EXPECT_THROW(standardizer.transform(wider), InvalidArgument);
}

TEST(Subset, DenseAndSparseKeepOrder) {
  const auto data = indexed_set(6, 3);
  const std::vector<Index> picks{4, 1, 4};
  const auto dense = subset(data, std::span<const Index>(picks));
  EXPECT_EQ(sample_ids(dense), picks);
  EXPECT_EQ(dense.label(0), 1);
  EXPECT_EQ(dense.num_classes, 3);

  Dataset<double> sparse = data;
  sparse.sparse_features = data.features.sparseView();
  sparse.features.resize(0, 0);
  const auto sparse_subset = subset(sparse, std::span<const Index>(picks));
  ASSERT_TRUE(sparse_subset.is_sparse());
  EXPECT_EQ(Matrix<double>(sparse_subset.sparse_features), dense.features);
  const std::vector<Index> out_of_range{6};
  EXPECT_THROW(subset(data, std::span<const Index>(out_of_range)), InvalidArgument);
}

TEST(TrainTestSplit, PartitionsTheSamples) {
  const auto data = indexed_set(103, 3);
  const auto parts = train_test_split(data, 0.25, 11);
  EXPECT_EQ(parts.test.num_samples(), 26);  // round(103 * 0.25)
  EXPECT_EQ(parts.train.num_samples(), 77);
  auto ids = sample_ids(parts.train);
  const auto test_ids = sample_ids(parts.test);
  ids.insert(ids.end(), test_ids.begin(), test_ids.end());
  std::sort(ids.begin(), ids.end());
  std::vector<Index> all(103);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(ids, all);
}

TEST(TrainTestSplit, StratifiedKeepsClassShares) {
  // Classes of 500, 300 and 200 samples.
  Dataset<double> data = indexed_set(1000, 1);
  data.num_classes = 3;
  for (Index i = 0; i < 1000; ++i) data.targets(0, i) = i < 500 ? 0 : (i < 800 ? 1 : 2);
  const auto parts = train_test_split(data, 0.2, 5);
  std::vector<int> counts(3, 0);
  for (Index i = 0; i < parts.test.num_samples(); ++i)
    ++counts[static_cast<std::size_t>(parts.test.label(i))];
  EXPECT_EQ(counts, (std::vector<int>{100, 60, 40}));
}

TEST(TrainTestSplit, SeedDecides) {
  const auto data = indexed_set(50, 2);
  const auto a = train_test_split(data, 0.2, 1);
  const auto b = train_test_split(data, 0.2, 1);
  const auto c = train_test_split(data, 0.2, 2);
  EXPECT_EQ(sample_ids(a.test), sample_ids(b.test));
  EXPECT_EQ(sample_ids(a.train), sample_ids(b.train));
  EXPECT_NE(sample_ids(a.test), sample_ids(c.test));
  const auto unstratified = train_test_split(data, 0.2, 1, false);
  EXPECT_EQ(unstratified.test.num_samples(), 10);
}

TEST(TrainTestSplit, RejectsBadFractions) {
  const auto data = indexed_set(10, 2);
  EXPECT_THROW(train_test_split(data, 0.0, 0), InvalidArgument);
  EXPECT_THROW(train_test_split(data, 1.0, 0), InvalidArgument);
  EXPECT_THROW(train_test_split(data, 0.01, 0), InvalidArgument);  // no test sample
}

TEST(OneHot, Columns) {
  const auto data = indexed_set(4, 3);
  const Matrix<double> y = one_hot(data);
  Matrix<double> expected(3, 4);
  expected << 1, 0, 0, 1,  //
      0, 1, 0, 0,          //
      0, 0, 1, 0;
  EXPECT_EQ(y, expected);
  Dataset<double> regression = data;
  regression.num_classes = 0;
  EXPECT_THROW(one_hot(regression), InvalidArgument);
}

std::vector<Index> epoch_order(BatchSampler& sampler, std::uint64_t epoch) {
  sampler.start_epoch(epoch);
  std::vector<Index> order;
  for (Index b = 0; b < sampler.num_batches(); ++b) {
    const auto batch = sampler.batch(b);
    order.insert(order.end(), batch.begin(), batch.end());
  }
  return order;
}

TEST(BatchSampler, EpochIsAPermutationFixedBySeedAndEpoch) {
  BatchSampler a(10, 3, 42);
  BatchSampler b(10, 3, 42);
  BatchSampler c(10, 3, 43);
  EXPECT_EQ(a.num_batches(), 4);
  EXPECT_EQ(a.batch(3).size(), 1u);
  const auto first = epoch_order(a, 0);
  auto sorted = first;
  std::sort(sorted.begin(), sorted.end());
  std::vector<Index> all(10);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  // A sampler resumed at epoch 5 sees what an uninterrupted one sees.
  epoch_order(b, 3);
  EXPECT_EQ(epoch_order(a, 5), epoch_order(b, 5));
  EXPECT_NE(epoch_order(a, 5), epoch_order(a, 6));
  EXPECT_NE(epoch_order(a, 0), epoch_order(c, 0));
}

TEST(BatchSampler, GoldenOrderIsPortable) {
  // Fisher-Yates over mt19937_64 seeded through std::seed_seq, both fully
  // specified by the C++ standard: this order must hold on every platform.
  BatchSampler sampler(8, 8, 2024);
  EXPECT_EQ(epoch_order(sampler, 1), (std::vector<Index>{4, 1, 7, 3, 2, 0, 6, 5}));
}

TEST(BatchSampler, DropLast) {
  BatchSampler sampler(10, 4, 0, /*drop_last=*/true);
  EXPECT_EQ(sampler.num_batches(), 2);
  EXPECT_EQ(sampler.batch(1).size(), 4u);
  EXPECT_THROW(sampler.batch(2), InvalidArgument);
  EXPECT_THROW(BatchSampler(0, 4, 0), InvalidArgument);
  EXPECT_THROW(BatchSampler(10, 0, 0), InvalidArgument);
  EXPECT_THROW(BatchSampler(3, 4, 0, true), InvalidArgument);
}

}  // namespace
}  // namespace hesse::data
