#include "allocation_counter.hpp"

#include <atomic>
#include <cstddef>

namespace {
std::atomic<long long> g_allocations{0};
std::atomic<bool> g_counting{false};
}  // namespace

#if !defined(__SANITIZE_ADDRESS__)
extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* malloc(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed))
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
#endif

namespace hesse::testing {

bool counts_allocations() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  return true;
#endif
}

void start_counting_allocations() {
  g_allocations = 0;
  g_counting = true;
}

void pause_counting_allocations() { g_counting = false; }

void resume_counting_allocations() { g_counting = true; }

long long counted_allocations() { return g_allocations.load(); }

}  // namespace hesse::testing
