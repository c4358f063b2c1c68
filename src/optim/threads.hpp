// How the optimizers with their own products (K-FAC, Shampoo) share a step's
// work over the OpenMP threads. Private to src/optim.
#pragma once

#include <omp.h>

#include "hesse/core/types.hpp"

namespace hesse::optim::detail {

// Eigen kept to one thread for a scope. A step's products are many small
// ones: with Eigen's own threads inside each, a K-FAC step on the shared
// two-core machine took 7-9 times as long as with one, a Shampoo step 7-20
// times, as every product's barrier waits for a thread the scheduler has
// taken away (docs/optimizers-kfac.md, "Cost per step";
// docs/optimizers-shampoo.md, "Cost per step"). The work is shared out over the
// OpenMP threads instead, one piece per thread at a time.
class SingleThreadedProducts {
 public:
  SingleThreadedProducts() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThreadedProducts() { omp_set_num_threads(saved_); }
  /// The thread count before the guard.
  int saved() const { return saved_; }
  SingleThreadedProducts(const SingleThreadedProducts&) = delete;
  SingleThreadedProducts& operator=(const SingleThreadedProducts&) = delete;

 private:
  int saved_;
};

/// work(j) for every j in [0, count), shared out dynamically (the first items
/// first) over the threads of parallel_phases' region.
template <class Work>
struct Items {
  Index count;
  const Work& work;
};
template <class Work>
Items(Index, const Work&) -> Items<Work>;

// `last`: the region's join follows, so the phase's own barrier is dropped.
template <class Work>
void run_phase(const Items<Work>& phase, bool shared, bool last) {
  if (!shared) {
    for (Index j = 0; j < phase.count; ++j) phase.work(j);
  } else if (last) {
#pragma omp for schedule(dynamic, 1) nowait
    for (Index j = 0; j < phase.count; ++j) phase.work(j);
  } else {
#pragma omp for schedule(dynamic, 1)
    for (Index j = 0; j < phase.count; ++j) phase.work(j);
  }
}

template <class Phase, class... Rest>
void run_phases(bool shared, const Phase& phase, const Rest&... rest) {
  run_phase(phase, shared, sizeof...(Rest) == 0);
  if constexpr (sizeof...(Rest) > 0) run_phases(shared, rest...);
}

/// The phases in order in one OpenMP region of `threads` threads (one
/// wake-up of the team, a barrier between phases, none after the last but
/// the region's join), or on the calling thread with one thread: libgomp
/// allocates a team of one at every region, and an orphaned dynamic loop
/// outside a region its work share. Which thread runs an item never changes
/// what the item computes. With OMP_WAIT_POLICY=PASSIVE every barrier puts
/// a thread to sleep and wakes it, 20 us or more on a virtual machine, so
/// the fewer phases the better.
template <class... Phases>
void parallel_phases(int threads, const Phases&... phases) {
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    run_phases(true, phases...);
  } else {
    run_phases(false, phases...);
  }
}

/// work(j) for every j in [0, count) over `threads` threads (on the calling
/// thread when there is one item or one thread).
template <class Work>
void parallel_for(Index count, int threads, const Work& work) {
  parallel_phases(count > 1 ? threads : 1, Items{count, work});
}

}  // namespace hesse::optim::detail
