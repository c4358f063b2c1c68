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
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hesse/core/types.hpp"

namespace hesse::data {

class BatchSampler {
 public:
  /// Batches of `batch_size` from `num_samples` samples; with `drop_last` a
  /// final batch smaller than `batch_size` is skipped. Raises InvalidArgument
  /// unless num_samples > 0 and batch_size > 0.
  BatchSampler(Index num_samples, Index batch_size, std::uint64_t seed, bool drop_last = false);

  /// Draws the permutation of epoch `epoch` (any order of calls is fine).
  void start_epoch(std::uint64_t epoch);

  Index num_batches() const;
  /// The indices of batch b of the current epoch, 0 <= b < num_batches().
  std::span<const Index> batch(Index b) const;

  Index num_samples() const { return static_cast<Index>(order_.size()); }
  Index batch_size() const { return batch_size_; }
  std::uint64_t epoch() const { return epoch_; }

 private:
  Index batch_size_;
  std::uint64_t seed_;
  bool drop_last_;
  std::uint64_t epoch_ = 0;
  std::vector<Index> order_;
};

}  // namespace hesse::data
