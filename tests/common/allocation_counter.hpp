// Counts heap allocations in the allocation tests: every operator new and
// every Eigen aligned allocation ends in malloc, which
// tests/common/allocation_counter.cpp interposes (linked into the test
// modules that use it, tests/CMakeLists.txt). AddressSanitizer owns malloc
// itself, so under it nothing is interposed, counts_allocations() is false
// and the tests skip.
#pragma once

namespace hesse::testing {

/// False under AddressSanitizer, where no allocation is counted.
bool counts_allocations();
/// Starts counting from zero.
void start_counting_allocations();
/// Stops (pauses) counting; start... resets, resume... does not.
void pause_counting_allocations();
void resume_counting_allocations();
/// The allocations counted since the last start.
long long counted_allocations();

/// The heap allocations made while `call` runs (on any thread).
template <class F>
long long allocations_of(F&& call) {
  start_counting_allocations();
  call();
  pause_counting_allocations();
  return counted_allocations();
}

}  // namespace hesse::testing
