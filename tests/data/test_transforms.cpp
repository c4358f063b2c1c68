#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "../common/errors.hpp"
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

/// The batches of one epoch, copied.
std::vector<std::vector<Index>> epoch_batches(BatchSampler& sampler, std::uint64_t epoch) {
  sampler.start_epoch(epoch);
  std::vector<std::vector<Index>> batches;
  for (Index b = 0; b < sampler.num_batches(); ++b)
    batches.emplace_back(sampler.batch(b).begin(), sampler.batch(b).end());
  return batches;
}

// overlap = 0 is the partition: the same batches, bit for bit, as a sampler
// built without the argument, for sizes that divide the samples and sizes
// that do not, with and without drop_last.
TEST(BatchSampler, OverlapZeroIsThePartition) {
  for (const Index n : {1, 7, 10, 12, 97})
    for (const Index size : {1, 3, 4, 12, 128})
      for (const bool drop_last : {false, true}) {
        if (drop_last && size > n) continue;
        BatchSampler plain(n, size, 5, drop_last), zero(n, size, 5, drop_last, 0);
        const Index expected = drop_last ? n / size : (n + size - 1) / size;
        EXPECT_EQ(zero.num_batches(), expected) << n << " " << size << " " << drop_last;
        EXPECT_EQ(epoch_batches(zero, 3), epoch_batches(plain, 3)) << n << " " << size;
        EXPECT_EQ(zero.overlap(), 0);
      }
}

// Windows of 4 with stride 2 over the epoch's permutation: batch b + 1 starts
// with the last 2 samples of batch b, in order; the last window is cut
// short; every sample is in some batch; the permutation is the one the
// plain sampler draws for the same (seed, epoch).
TEST(BatchSampler, OverlappingBatchesAreWindowsOfThePermutation) {
  BatchSampler sampler(11, 4, 42, false, 2);
  BatchSampler plain(11, 4, 42);
  EXPECT_EQ(sampler.overlap(), 2);
  ASSERT_EQ(sampler.num_batches(), 5);  // positions [0,4) [2,6) [4,8) [6,10) [8,11)
  const auto order = epoch_order(plain, 6);
  const auto batches = epoch_batches(sampler, 6);
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const std::size_t begin = 2 * b, end = std::min<std::size_t>(begin + 4, 11);
    EXPECT_EQ(batches[b], std::vector<Index>(order.begin() + std::ptrdiff_t(begin),
                                             order.begin() + std::ptrdiff_t(end)))
        << "batch " << b;
    if (b > 0) {
      const auto& previous = batches[b - 1];
      EXPECT_TRUE(std::equal(previous.end() - 2, previous.end(), batches[b].begin())) << b;
    }
  }
  EXPECT_EQ(batches.back().size(), 3u);
  std::vector<Index> seen;
  for (const auto& batch : batches) seen.insert(seen.end(), batch.begin(), batch.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(seen.size(), 11u);
  // A window that ends exactly at the last sample: 10 samples, 4 of stride 2.
  BatchSampler exact(10, 4, 42, false, 2);
  EXPECT_EQ(exact.num_batches(), 4);
  EXPECT_EQ(exact.batch(3).size(), 4u);
  // The counts of the header's formula, 1 + ceil((n - size) / (size - overlap)).
  EXPECT_EQ(BatchSampler(384, 128, 0, false, 32).num_batches(), 4);  // the last: [288, 384)
  EXPECT_EQ(BatchSampler(416, 128, 0, false, 32).num_batches(), 4);  // the last: [288, 416)
  EXPECT_EQ(BatchSampler(417, 128, 0, false, 32).num_batches(), 5);  // the last: [384, 417)
  EXPECT_EQ(BatchSampler(100, 10, 0, false, 9).num_batches(), 91);
  EXPECT_EQ(BatchSampler(3, 4, 0, false, 3).num_batches(), 1);  // fewer samples than a batch
  EXPECT_EQ(BatchSampler(3, 4, 0, false, 3).batch(0).size(), 3u);
}

// The epoch boundary: windows do not wrap, so epoch e + 1's first batch is
// its permutation's first batch_size samples and shares nothing by design
// with epoch e's last batch. Epoch e's batches depend only on (seed, e).
TEST(BatchSampler, OverlappingEpochsDependOnlyOnSeedAndEpoch) {
  BatchSampler a(50, 8, 9, false, 3), b(50, 8, 9, false, 3), c(50, 8, 10, false, 3);
  BatchSampler plain(50, 8, 9);
  epoch_batches(b, 7);  // b has seen another epoch first: a resumed run
  EXPECT_EQ(epoch_batches(a, 2), epoch_batches(b, 2));
  EXPECT_NE(epoch_batches(a, 2), epoch_batches(a, 3));
  EXPECT_NE(epoch_batches(a, 2), epoch_batches(c, 2));
  for (const std::uint64_t epoch : {0u, 1u, 4u}) {
    a.start_epoch(epoch);
    plain.start_epoch(epoch);
    const auto first = a.batch(0), expected = plain.batch(0);
    EXPECT_TRUE(std::equal(first.begin(), first.end(), expected.begin(), expected.end())) << epoch;
  }
}

// drop_last keeps only whole windows: 11 samples in windows of 4 with stride
// 2 give 4 batches of 4, and the permutation's last sample is in none.
TEST(BatchSampler, OverlapWithDropLastKeepsWholeWindows) {
  BatchSampler sampler(11, 4, 42, /*drop_last=*/true, 2);
  BatchSampler plain(11, 4, 42);
  ASSERT_EQ(sampler.num_batches(), 4);
  const auto order = epoch_order(plain, 1);
  const auto batches = epoch_batches(sampler, 1);
  for (const auto& batch : batches) {
    EXPECT_EQ(batch.size(), 4u);
    EXPECT_EQ(std::count(batch.begin(), batch.end(), order.back()), 0);
  }
  EXPECT_THROW(sampler.batch(4), InvalidArgument);
  EXPECT_EQ(BatchSampler(4, 4, 0, true, 3).num_batches(), 1);
  EXPECT_EQ(BatchSampler(10, 4, 0, true, 3).num_batches(), 7);  // starts 0..6
}

TEST(BatchSampler, BadOverlapIsRefusedNamingTheValues) {
  using hesse::testing::invalid_argument_message;
  EXPECT_EQ(invalid_argument_message([] { BatchSampler(10, 4, 0, false, 4); }),
            "BatchSampler: overlap = 4 with batch_size = 4: must be in [0, batch_size)");
  EXPECT_EQ(invalid_argument_message([] { BatchSampler(10, 4, 0, false, -1); }),
            "BatchSampler: overlap = -1 with batch_size = 4: must be in [0, batch_size)");
  EXPECT_EQ(invalid_argument_message([] { BatchSampler(10, 4, 0, true, 9); }),
            "BatchSampler: overlap = 9 with batch_size = 4: must be in [0, batch_size)");
  EXPECT_EQ(invalid_argument_message([] { BatchSampler(10, 1, 0, false, 1); }),
            "BatchSampler: overlap = 1 with batch_size = 1: must be in [0, batch_size)");
}

}  // namespace
}  // namespace hesse::data
