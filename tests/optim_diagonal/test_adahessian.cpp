// AdaHessian: Hutchinson's diagonal against the exact Hessian diagonal as the
// probes grow, the step against Yao et al.'s formulas, training, checkpoints,
// options, NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../common/errors.hpp"
#include "diagonal_test_util.hpp"
#include "hesse/optim/adahessian.hpp"

namespace hesse::optim {
namespace {

using hesse::testing::invalid_argument_message;
using test_util::first_samples;
using test_util::Problem;

// For Rademacher probes, entry i of one probe's z (.) Hz has variance
// sum_{j != i} H_ij^2, so over N probes
//   E|D_N - diag H|^2 = (1/N) sum_{i != j} H_ij^2:
// the error falls like 1/sqrt(N) with a known constant. Checked over 16
// seeds on a 4-5-3 network (43 parameters, 20 samples) for N = 1 .. 1024:
// the measured root-mean-square error within 25% of that constant at every
// N, and the log-log slope between N = 4 and 1024 within 0.1 of -1/2.
TEST(Hutchinson, DiagonalConvergesToTheHessianDiagonalLikeOneOverRootProbes) {
  Problem<double> p(20, 5);
  const Vector<double> x = p.net.network().initial_parameters(4);
  p.f.select_batch(first_samples(20));
  const Matrix<double> H = test_util::dense_curvature(p.f, x, false);
  const Vector<double> exact = H.diagonal();
  const double off_diagonal = H.squaredNorm() - exact.squaredNorm();
  Vector<double> probe, product;
  std::vector<double> errors;
  const std::vector<Index> probes{1, 4, 16, 64, 256, 1024};
  for (const Index n : probes) {
    const double error = test_util::relative_rms_error(exact, 16, [&](Rng& rng, Vector<double>& d) {
      hutchinson_diagonal(p.f, x, n, rng, d, probe, product);
    });
    const double theory = std::sqrt(off_diagonal / double(n)) / exact.norm();
    EXPECT_NEAR(error / theory, 1.0, 0.25) << n << " probes";
    errors.push_back(error);
  }
  const double slope = std::log(errors.back() / errors[1]) / std::log(1024.0 / 4.0);
  EXPECT_NEAR(slope, -0.5, 0.1);
  EXPECT_LT(errors.back(), errors.front() / 16);
}

TEST(AdaHessian, FirstStepsFollowTheFormulas) {
  Problem<double> p;
  const auto batch = first_samples(30);
  const Vector<double> x0 = p.net.network().initial_parameters(6);
  const AdaHessianOptions o{.learning_rate = 0.1, .hessian_every = 2, .probes = 3, .seed = 5};
  AdaHessian<double> opt(o);
  Vector<double> x = x0;
  const StepResult r1 = opt.step(p.f, x, batch);
  EXPECT_EQ(r1.curvature_products, 3);

  // The optimizer's estimate is hutchinson_diagonal with its seeded generator.
  Rng rng(5);
  Vector<double> D, probe, product, g;
  p.f.select_batch(batch);
  hutchinson_diagonal(p.f, x0, 3, rng, D, probe, product);
  EXPECT_EQ(opt.hessian_diagonal(), D);
  // Step 1: m / (1 - beta1) = g and v / (1 - beta2) = D^2, so x1 = x0 - lr g / (|D| + eps).
  p.f.value_and_gradient(x0, &g);
  const Vector<double> x1 =
      x0.array() - o.learning_rate * g.array() / (D.array().abs() + o.epsilon);
  EXPECT_LT((x - x1).norm(), 1e-12 * (x1 - x0).norm());

  // Step 2 reuses D (hessian_every = 2); step 3 draws new probes.
  EXPECT_EQ(opt.step(p.f, x, batch).curvature_products, 0);
  EXPECT_EQ(opt.hessian_diagonal(), D);
  EXPECT_EQ(opt.step(p.f, x, batch).curvature_products, 3);
  EXPECT_NE(opt.hessian_diagonal(), D);
}

TEST(AdaHessian, HessianPowerAndSpatialAveraging) {
  Problem<double> p;
  const auto batch = first_samples(30);
  const Vector<double> x0 = p.net.network().initial_parameters(6);
  Vector<double> D, probe, product, g;
  Rng rng(0);
  p.f.select_batch(batch);
  hutchinson_diagonal(p.f, x0, 1, rng, D, probe, product);
  p.f.value_and_gradient(x0, &g);

  // Power k: step 1 is lr g / (|D|^k + eps) (Yao et al. eq. 11).
  AdaHessian<double> half({.learning_rate = 0.1, .hessian_power = 0.5});
  Vector<double> x = x0;
  half.step(p.f, x, batch);
  const Vector<double> expected = x0.array() - 0.1 * g.array() / (D.array().abs().sqrt() + 1e-4);
  EXPECT_LT((x - expected).norm(), 1e-12 * (expected - x0).norm());

  // Averaging: every group of 4 consecutive entries holds the mean of |D| (eq. 10).
  AdaHessian<double> averaged({.average_size = 4});
  x = x0;
  averaged.step(p.f, x, batch);
  const Vector<double>& A = averaged.hessian_diagonal();
  for (Index begin = 0; begin < D.size(); begin += 4) {
    const Index count = std::min<Index>(4, D.size() - begin);
    const double mean = D.segment(begin, count).cwiseAbs().mean();
    for (Index i = begin; i < begin + count; ++i) EXPECT_NEAR(A[i], mean, 1e-14 * (1 + mean));
  }
}

template <class T>
class AdaHessianTyped : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(AdaHessianTyped, Precisions);

TYPED_TEST(AdaHessianTyped, TrainsSmallMlpOnBlobs) {
  // The paper's learning rate 0.15 and every other default: about 0.15.
  AdaHessian<TypeParam> opt;
  EXPECT_LT(test_util::train(opt), 0.2);
}

TYPED_TEST(AdaHessianTyped, CheckpointContinuesBitForBit) {
  // Probes drawn at steps 1, 4, 7, 10: the generator crosses the checkpoint.
  test_util::expect_bit_for_bit_continuation<TypeParam>([] {
    return std::make_unique<AdaHessian<TypeParam>>(AdaHessianOptions{
        .learning_rate = 0.1, .weight_decay = 1e-3, .hessian_every = 3, .probes = 2, .seed = 9});
  });
}

TEST(AdaHessian, NonFiniteGradientRejectsTheStep) {
  AdaHessian<double> opt;
  test_util::expect_nan_rejected(opt);
}

TEST(AdaHessian, InvalidOptionsNameTheField) {
  const auto expect_field = [](AdaHessianOptions o, const std::string& field) {
    const std::string message = invalid_argument_message([&] { o.validate(); });
    EXPECT_NE(message.find("adahessian." + field + " = "), std::string::npos)
        << "bad " << field << ": '" << message << "'";
  };
  expect_field({.learning_rate = -1}, "learning_rate");
  expect_field({.beta1 = 1}, "beta1");
  expect_field({.beta2 = -0.1}, "beta2");
  expect_field({.epsilon = 0}, "epsilon");
  expect_field({.weight_decay = -1}, "weight_decay");
  expect_field({.hessian_power = 2}, "hessian_power");
  expect_field({.hessian_every = 0}, "hessian_every");
  expect_field({.probes = 0}, "probes");
  expect_field({.average_size = 0}, "average_size");
  expect_field({.seed = -1}, "seed");
  EXPECT_THROW(AdaHessianOptions::from_settings({{"rho", 1}}), InvalidArgument);
  EXPECT_THROW(AdaHessianOptions::from_settings({{"probes", 1.5}}), InvalidArgument);
  const AdaHessianOptions o = AdaHessianOptions::from_settings(
      {{"lr", 0.2}, {"beta1", 0.8}, {"beta2", 0.99}, {"eps", 1e-6}, {"weight_decay", 1e-4},
       {"hessian_power", 0.5}, {"hessian_every", 3}, {"probes", 2}, {"average_size", 9},
       {"seed", 42}});
  EXPECT_EQ(o.learning_rate, 0.2);
  EXPECT_EQ(o.beta1, 0.8);
  EXPECT_EQ(o.beta2, 0.99);
  EXPECT_EQ(o.epsilon, 1e-6);
  EXPECT_EQ(o.weight_decay, 1e-4);
  EXPECT_EQ(o.hessian_power, 0.5);
  EXPECT_EQ(o.hessian_every, 3);
  EXPECT_EQ(o.probes, 2);
  EXPECT_EQ(o.average_size, 9);
  EXPECT_EQ(o.seed, 42);
  AdaHessian<float> opt;
  EXPECT_THROW(opt.set_learning_rate(std::nan("")), InvalidArgument);
  EXPECT_EQ(opt.learning_rate(), 0.15);
}

}  // namespace
}  // namespace hesse::optim
