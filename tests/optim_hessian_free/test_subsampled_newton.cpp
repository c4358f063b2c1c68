// Subsampled Newton-CG (Byrd et al. 2011): exact Newton on a full batch,
// convergence with subsampled Hessians, negative curvature, NaN handling.
#include <gtest/gtest.h>

#include <limits>

#include "hesse/optim/subsampled_newton.hpp"
#include "toy_objectives.hpp"
#include "training.hpp"

namespace hesse::optim {
namespace {

using testing::Classification;
using testing::FunctionObjective;
using testing::LinearProblem;
using testing::SampleQuadratic;

TEST(SubsampledNewton, ReachesTheLeastSquaresMinimiserInTwoSteps) {
  LinearProblem problem;
  const auto batch = testing::all_indices(60);
  SubsampledNewton<double> newton(
      {.hessian_fraction = 1.0, .damping = 1e-12, .cg_tolerance = 1e-12, .max_cg_iterations = 6});
  Vector<double> x = Vector<double>::Zero(6);
  for (int k = 0; k < 2; ++k) {
    const StepResult r = newton.step(problem.f, x, batch);
    EXPECT_TRUE(r.accepted) << r.event;
    EXPECT_LE(r.curvature_products, 6);
    EXPECT_EQ(r.gradient_evaluations, 2);  // the batch gradient and the unit step's trial
  }
  EXPECT_LT((x - problem.w_star).lpNorm<Eigen::Infinity>(), 1e-9) << x.transpose();
}

// Every batch of a consistent system has the same minimiser: Newton steps with
// Hessians from half of each batch (32 samples in 8-D) still converge to it,
// linearly (Roosta-Khorasani & Mahoney 2016): relative error 5e-7 after 20 steps.
TEST(SubsampledNewton, SubsampledHessianConvergesOnAConsistentSystem) {
  SampleQuadratic f(8, 256, 5);
  SubsampledNewton<double> newton({.hessian_fraction = 0.5, .max_cg_iterations = 8, .seed = 2});
  data::BatchSampler sampler(256, 64, 9);
  Vector<double> x = Vector<double>::Zero(8);
  for (std::uint64_t epoch = 0; epoch < 5; ++epoch) {
    sampler.start_epoch(epoch);
    for (Index b = 0; b < sampler.num_batches(); ++b) {
      const StepResult r = newton.step(f, x, sampler.batch(b));
      EXPECT_TRUE(r.accepted) << r.event;
      EXPECT_LE(r.curvature_products, 8);
    }
  }
  EXPECT_LT((x - f.minimizer()).norm(), 1e-5 * f.minimizer().norm());
}

TEST(SubsampledNewton, HessianBatchSizeOverridesTheFraction) {
  SampleQuadratic f(4, 64, 1);
  SubsampledNewton<double> newton({.hessian_fraction = 0.5, .hessian_batch_size = 3});
  EXPECT_EQ(detail::subset_size(64, 0.5, 3), 3);
  EXPECT_EQ(detail::subset_size(64, 0.1), 6);
  EXPECT_EQ(detail::subset_size(5, 0.01), 1);
  EXPECT_EQ(detail::subset_size(5, 0.5, 9), 5);
  Vector<double> x = Vector<double>::Zero(4);
  EXPECT_TRUE(newton.step(f, x, testing::all_indices(64)).accepted);
}

// f = -1/2 x_0^2 + 1/2 |x_rest|^2: CG meets the negative curvature along the
// gradient at once and the step falls back to -g.
TEST(SubsampledNewton, NegativeCurvatureFallsBackToSteepestDescent) {
  Vector<double> h = Vector<double>::Ones(3);
  h[0] = -1;
  FunctionObjective f(
      3,
      [h](const Vector<double>& x, Vector<double>* g) {
        if (g) *g = h.cwiseProduct(x);
        return 0.5 * x.dot(h.cwiseProduct(x));
      },
      [h](const Vector<double>&, const Vector<double>& v, Vector<double>& out) {
        out = h.cwiseProduct(v);
      });
  SubsampledNewton<double> newton({.hessian_fraction = 1.0});
  Vector<double> x(3);
  x << 1, 0, 0;
  const StepResult r = newton.step(f, x, testing::all_indices(8));
  EXPECT_TRUE(r.accepted) << r.event;
  EXPECT_EQ(newton.last_cg().status, linalg::CgStatus::NegativeCurvature);
  EXPECT_NE(r.event.find("steepest descent"), std::string::npos) << r.event;
  EXPECT_GT(x[0], 1.0);  // moved along -g = (1, 0, 0)
}

// Ten epochs of batches of 128 (30 steps) to below 0.26 with 90% right (see
// test_hessian_free.cpp). Half Newton steps (lr = 0.5) average the noise of
// Hessians from 32 samples; full steps reach 0.296. Measured: 0.200 (Hessian,
// double), 0.183 (Gauss-Newton, float).
template <class T>
void expect_subsampled_newton_trains(SubsampledNewtonOptions options, const char* label) {
  Classification<T> problem;
  SubsampledNewton<T> newton(options);
  int rejected = 0;
  const double loss = problem.train(newton, 30, &rejected);
  const double accuracy = problem.accuracy();
  std::printf("%-28s loss 0.87 -> %.4f, accuracy %.3f, %d steps rejected\n", label, loss, accuracy,
              rejected);
  EXPECT_LT(loss, 0.26) << label;
  EXPECT_GT(accuracy, 0.9) << label;
}

TEST(SubsampledNewton, TrainsTheSmallNetwork) {
  SubsampledNewtonOptions options{.learning_rate = 0.5, .hessian_fraction = 0.25, .seed = 4};
  expect_subsampled_newton_trains<double>(options, "subsampled-newton");
  options.curvature = CurvatureProduct::GaussNewton;
  expect_subsampled_newton_trains<float>(options, "subsampled-newton (GN) float");
}

TEST(SubsampledNewton, RejectsAStepFromANonFiniteGradient) {
  FunctionObjective f(
      3,
      [](const Vector<double>& x, Vector<double>* g) {
        if (g) *g = Vector<double>::Constant(x.size(), std::numeric_limits<double>::infinity());
        return 1.0;
      },
      [](const Vector<double>&, const Vector<double>& v, Vector<double>& out) { out = v; });
  SubsampledNewton<double> newton({.damping = 1e-3});
  Vector<double> x = Vector<double>::Ones(3);
  const StepResult r = newton.step(f, x, testing::all_indices(4));
  EXPECT_FALSE(r.accepted);
  EXPECT_NE(r.event.find("non-finite"), std::string::npos) << r.event;
  EXPECT_EQ(x, Vector<double>::Ones(3));
  EXPECT_DOUBLE_EQ(newton.damping(), 1e-2);
}

}  // namespace
}  // namespace hesse::optim
