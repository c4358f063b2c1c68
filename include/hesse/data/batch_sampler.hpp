// Mini-batches of sample indices for one epoch after another.
//
//   BatchSampler sampler(train.num_samples(), 128, seed);
//   for (Index epoch = 0; epoch < epochs; ++epoch) {
//     sampler.start_epoch(epoch);
//     for (Index b = 0; b < sampler.num_batches(); ++b) use(sampler.batch(b));
//   }
//
// Epoch e's order depends only on (seed, e), so a run resumed from a
// checkpoint at epoch e sees the same batches as one never interrupted.
//
// With overlap o > 0, consecutive batches of an epoch share o samples (the
// multi-batch setting of Berahas, Nocedal & Takac 2016, "A multi-batch L-BFGS
// method for machine learning", NeurIPS): the batches are windows of
// batch_size over the epoch's permutation with stride batch_size - o, so
// batch b + 1 starts with the last o samples of batch b, in the same order.
// The windows stop at the end of the permutation: the last one is cut short
// (or, with drop_last, not made), and the first batch of the next epoch
// shares nothing with it. Wrapping would save stochastic L-BFGS one gradient
// on the overlap per epoch, but would put a sample twice in a batch or make
// epoch e's order depend on every epoch before it. Batch b covers positions
// [b (batch_size - o), min(b (batch_size - o) + batch_size, n)) and there are
// 1 + ceil((n - batch_size) / (batch_size - o)) batches when n > batch_size
// (floor with drop_last), one otherwise; o = 0 gives the plain partition.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hesse/core/types.hpp"

namespace hesse::data {

class BatchSampler {
 public:
  /// Batches of `batch_size` from `num_samples` samples; with `drop_last` a
  /// final batch smaller than `batch_size` is skipped; consecutive batches
  /// share `overlap` samples. Raises InvalidArgument unless num_samples > 0,
  /// batch_size > 0 and 0 <= overlap < batch_size.
  BatchSampler(Index num_samples, Index batch_size, std::uint64_t seed, bool drop_last = false,
               Index overlap = 0);

  /// Draws the permutation of epoch `epoch` (any order of calls is fine).
  void start_epoch(std::uint64_t epoch);

  Index num_batches() const;
  /// The indices of batch b of the current epoch, 0 <= b < num_batches().
  std::span<const Index> batch(Index b) const;

  Index num_samples() const { return static_cast<Index>(order_.size()); }
  Index batch_size() const { return batch_size_; }
  /// Samples shared by consecutive batches of an epoch.
  Index overlap() const { return overlap_; }
  std::uint64_t epoch() const { return epoch_; }

 private:
  Index batch_size_;
  Index overlap_;
  std::uint64_t seed_;
  bool drop_last_;
  std::uint64_t epoch_ = 0;
  std::vector<Index> order_;
};

}  // namespace hesse::data
