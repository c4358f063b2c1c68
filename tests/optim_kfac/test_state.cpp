// save_state after k steps, load_state into a fresh optimizer, and both
// continue bit for bit, across statistics, inverse refresh and damping
// boundaries, for both precisions and both inverse variants.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "../common/errors.hpp"
#include "kfac_test_util.hpp"

namespace hesse::optim {
namespace {

using hesse::testing::invalid_argument_message;
using kfac_test::Problem;

template <class T>
bool same_bits(const Vector<T>& a, const Vector<T>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<std::size_t>(a.size())) == 0;
}

template <class T>
void check_round_trip(KfacInverse inverse, Index rank = 0) {
  // Statistics every 2, inverses every 3, damping every 2: the saved step
  // counts 0, 3, 4 and 7 land before and after each kind of boundary.
  const KfacOptions fixed{.learning_rate = 0.05,
                          .inverse_every = 3,
                          .statistics_every = 2,
                          .inverse = inverse,
                          .rank = rank,
                          .adaptive_damping = true,
                          .damping_every = 2,
                          .weight_decay = 1e-3,
                          .seed = 11};
  Problem<T> p;
  const auto batches = kfac_test::batches(384, 32, 2);
  for (const std::size_t saved_at : {std::size_t{0}, std::size_t{3}, std::size_t{4}, std::size_t{7}}) {
    Kfac<T> original(fixed);
    Vector<T> x = p.start();
    for (std::size_t k = 0; k < saved_at; ++k) original.step(p.f, x, batches[k]);
    StateDict saved;
    original.save_state(saved);
    // Through the bytes of a checkpoint file.
    const StateDict loaded = StateDict::deserialize(saved.serialize(), "memory");
    Kfac<T> resumed(fixed);
    resumed.load_state(loaded);
    EXPECT_EQ(resumed.step_count(), original.step_count());
    Vector<T> y = x;
    for (std::size_t k = saved_at; k < saved_at + 12; ++k) {
      const StepResult a = original.step(p.f, x, batches[k]);
      const StepResult b = resumed.step(p.f, y, batches[k]);
      ASSERT_TRUE(same_bits(x, y)) << "saved after " << saved_at << ", differs after step " << k;
      ASSERT_EQ(a.loss, b.loss);
      ASSERT_EQ(original.damping(), resumed.damping());
    }
    StateDict s1, s2;
    original.save_state(s1);
    resumed.save_state(s2);
    EXPECT_EQ(s1.arrays, s2.arrays);
    EXPECT_EQ(s1.texts, s2.texts);
  }
}

TEST(KfacState, RoundTripIsBitForBitFloatCholesky) { check_round_trip<float>(KfacInverse::Cholesky); }
TEST(KfacState, RoundTripIsBitForBitDoubleCholesky) { check_round_trip<double>(KfacInverse::Cholesky); }
TEST(KfacState, RoundTripIsBitForBitFloatEigen) { check_round_trip<float>(KfacInverse::Eigen); }
TEST(KfacState, RoundTripIsBitForBitDoubleEigen) { check_round_trip<double>(KfacInverse::Eigen); }
// Rank 4: the low-rank bases, scales and rests (and the warm start) travel.
TEST(KfacState, RoundTripIsBitForBitFloatLowRank) { check_round_trip<float>(KfacInverse::Cholesky, 4); }

TEST(KfacState, ResetStartsOver) {
  Problem<float> p;
  const auto batches = kfac_test::batches(384, 32, 1);
  Kfac<float> kfac;
  Vector<float> x = p.start();
  for (std::size_t k = 0; k < 3; ++k) kfac.step(p.f, x, batches[k]);
  kfac.reset();
  EXPECT_EQ(kfac.step_count(), 0);
  Kfac<float> fresh;
  Vector<float> y = p.start();
  x = p.start();
  for (std::size_t k = 0; k < 4; ++k) {
    kfac.step(p.f, x, batches[k]);
    fresh.step(p.f, y, batches[k]);
  }
  EXPECT_TRUE(same_bits(x, y));
}

TEST(KfacState, StateOfAnotherNetworkIsRefused) {
  Problem<float> p;
  const auto batches = kfac_test::batches(384, 32, 1);
  Kfac<float> kfac;
  Vector<float> x = p.start();
  kfac.step(p.f, x, batches[0]);
  StateDict state;
  kfac.save_state(state);

  const auto data = testing::blobs<float>(64);
  nn::NetworkObjective<float> wider(testing::small_mlp<float>(4, 20, 3),
                                    nn::LossKind::SoftmaxCrossEntropy, data);
  StochasticAdapter<nn::NetworkObjective<float>> g(wider);
  Kfac<float> other;
  other.load_state(state);
  Vector<float> z = wider.network().initial_parameters(1);
  const std::vector<Index> batch{0, 1, 2};
  const std::string message = invalid_argument_message([&] { other.step(g, z, batch); });
  EXPECT_NE(message.find("another network"), std::string::npos) << message;
}

}  // namespace
}  // namespace hesse::optim
