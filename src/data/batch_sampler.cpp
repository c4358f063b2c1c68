#include "hesse/data/batch_sampler.hpp"

#include <random>
#include <string>

#include "hesse/core/error.hpp"
#include "hesse/data/transforms.hpp"

namespace hesse::data {

BatchSampler::BatchSampler(Index num_samples, Index batch_size, std::uint64_t seed, bool drop_last,
                           Index overlap)
    : batch_size_(batch_size), overlap_(overlap), seed_(seed), drop_last_(drop_last) {
  HESSE_REQUIRE(num_samples > 0, "BatchSampler: num_samples = " + std::to_string(num_samples) +
                                     ": must be positive");
  HESSE_REQUIRE(batch_size > 0,
                "BatchSampler: batch_size = " + std::to_string(batch_size) + ": must be positive");
  HESSE_REQUIRE(!drop_last || batch_size <= num_samples,
                "BatchSampler: batch_size = " + std::to_string(batch_size) + " with drop_last " +
                    "exceeds num_samples = " + std::to_string(num_samples) +
                    ": no batch would remain");
  HESSE_REQUIRE(overlap >= 0 && overlap < batch_size,
                "BatchSampler: overlap = " + std::to_string(overlap) + " with batch_size = " +
                    std::to_string(batch_size) + ": must be in [0, batch_size)");
  order_.resize(static_cast<std::size_t>(num_samples));
  start_epoch(0);
}

void BatchSampler::start_epoch(std::uint64_t epoch) {
  epoch_ = epoch;
  // std::seed_seq's mixing is specified by the standard, so (seed, epoch)
  // gives the same permutation everywhere.
  std::seed_seq sequence{static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32),
                         static_cast<std::uint32_t>(epoch),
                         static_cast<std::uint32_t>(epoch >> 32)};
  Rng rng(sequence);
  for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<Index>(i);
  shuffle(order_, rng);
}

Index BatchSampler::num_batches() const {
  const Index n = num_samples();
  if (n <= batch_size_) return drop_last_ && n < batch_size_ ? 0 : 1;
  // One window, then one per stride of new samples (the last possibly short).
  const Index stride = batch_size_ - overlap_;
  const Index rest = n - batch_size_;
  return 1 + (drop_last_ ? rest / stride : (rest + stride - 1) / stride);
}

std::span<const Index> BatchSampler::batch(Index b) const {
  HESSE_REQUIRE(b >= 0 && b < num_batches(), "BatchSampler::batch(" + std::to_string(b) +
                                                 "): out of range 0.." +
                                                 std::to_string(num_batches() - 1));
  const Index begin = b * (batch_size_ - overlap_);
  const Index size = std::min(batch_size_, num_samples() - begin);
  return std::span<const Index>(order_).subspan(static_cast<std::size_t>(begin),
                                                static_cast<std::size_t>(size));
}

}  // namespace hesse::data
