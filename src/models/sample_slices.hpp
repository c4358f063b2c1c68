// One pass over a DesignMatrix's selected samples in cache-sized slices, for
// products of the form "predictors of a slice, a per-sample map, the slice's
// transposed accumulation" (a linear model's value + gradient or its
// Hessian-vector product): both matrix-vector products of a slice read it
// while it is still in cache, so X leaves memory once per product instead of
// twice.
//
// Determinism: the selected samples are cut into slices of a fixed width
// (from the numbers of samples and features only) and the slices into at most kMaxChunks
// contiguous chunks (from the number of slices only). Each chunk accumulates
// its slices in order into its own column of `partials`, and the columns are
// added in chunk order afterwards. Neither partition depends on the thread
// count or on timing, so a product is bitwise the same on 1 or N threads,
// with or without the parallel region.
#pragma once

#include <algorithm>

#include <omp.h>

#include "hesse/core/types.hpp"
#include "hesse/models/design_matrix.hpp"

namespace hesse::models::detail {

/// Bytes of features per slice: two matrix-vector products of a slice run
/// from the L2 cache (512 KB per core on the machines measured) with room for
/// the rest.
inline constexpr Index kSliceBytes = 64 * 1024;
/// Bytes of features up to which all selected samples form one slice.
inline constexpr Index kWholeBytes = 256 * 1024;
/// Chunks a pass is split into; the threads share them by a static schedule.
inline constexpr Index kMaxChunks = 64;
/// Work (dense: samples x features; sparse: stored entries) from which a pass
/// runs in a parallel region. Below it a 2-thread region costs more than it
/// saves (breast-cancer's 569 x 30 took 0.43 -> 0.90 ms per solve with one).
inline constexpr Index kParallelWork = 1'000'000;

/// Calls body(begin, size, X_slice, acc) for every slice of the selected
/// samples: X_slice = X.middleCols(begin, size) (a dense or sparse block,
/// so `body` is a generic lambda), acc the slice's chunk column of `partials`
/// [accumulator_size] to add into. Then total.head(accumulator_size) = sum of
/// the columns in chunk order (`partials` and `total` are workspaces that
/// only grow). `body` must write only to acc and to entries [begin, begin + size)
/// of per-sample buffers, and must not throw.
template <class T, class Body>
void for_each_slice(const DesignMatrix<T>& design, Index accumulator_size, Matrix<T>& partials,
                    Vector<T>& total, Body&& body) {
  const Index m = design.num_selected();
  const Index d = design.num_features();
  const Index bytes_per_sample = d * static_cast<Index>(sizeof(T));
  // Features that fit the L2 cache whole (breast-cancer's 569 x 30) are one
  // slice: two full-length GEMVs, no per-slice calls.
  const Index width = m * bytes_per_sample <= kWholeBytes
                          ? m
                          : std::clamp<Index>(kSliceBytes / bytes_per_sample, 16, 8192);
  const Index slices = (m + width - 1) / width;
  const Index chunks = std::min(kMaxChunks, slices);
  // Grown, never shrunk: value (1 entry) and value_and_gradient (d + 2)
  // alternate in a line search without reallocating.
  if (partials.rows() < accumulator_size || partials.cols() < chunks)
    partials.resize(std::max(partials.rows(), accumulator_size), std::max(partials.cols(), chunks));
  partials.topLeftCorner(accumulator_size, chunks).setZero();
  if (total.size() < accumulator_size) total.resize(accumulator_size);
  design.visit([&](const auto& x) {
    // Dense: m x d; sparse: the stored entries.
    const bool parallel = x.nonZeros() >= kParallelWork && omp_get_max_threads() > 1 && !omp_in_parallel();
    auto run_chunk = [&](Index c) {
      auto acc = partials.col(c).head(accumulator_size);
      for (Index s = slices * c / chunks; s < slices * (c + 1) / chunks; ++s) {
        const Index begin = s * width;
        const Index size = std::min(width, m - begin);
        body(begin, size, x.middleCols(begin, size), acc);
      }
    };
    if (parallel) {
#pragma omp parallel for schedule(static)
      for (Index c = 0; c < chunks; ++c) run_chunk(c);
    } else {
      // Even an if(false) region starts a team of one; small passes skip it.
      for (Index c = 0; c < chunks; ++c) run_chunk(c);
    }
  });
  auto sum = total.head(accumulator_size);
  sum = partials.col(0).head(accumulator_size);
  for (Index c = 1; c < chunks; ++c) sum += partials.col(c).head(accumulator_size);
}

}  // namespace hesse::models::detail
