// The Kronecker factors of the Fisher (K-FAC's A and G) against their
// definitions, built sample by sample from single-sample gradients; the true
// Fisher's sampled labels against the exact expectation.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "hesse/core/error.hpp"
#include "hesse/nn/network_objective.hpp"
#include "nn_test_util.hpp"

using namespace hesse;
using namespace hesse::nn;

namespace {

// The objective keeps a reference to the data, so both live together.
struct Net {
  Net(LossKind loss, ActivationKind activation, Index samples)
      : set(test_util::random_dataset<double>(4, samples, test_util::outputs_for(loss, 3), loss,
                                              11)),
        objective(make_mlp<double>(sizes(loss), activation), loss, set,
                  {.min_samples_per_thread = 4}) {}
  static std::vector<Index> sizes(LossKind loss) { return {4, 5, test_util::outputs_for(loss, 3)}; }
  data::Dataset<double> set;
  NetworkObjective<double> objective;
};

TEST(KroneckerFactors, EmpiricalFactorsEqualPerSampleDefinitions) {
  for (const LossKind loss :
       {LossKind::SoftmaxCrossEntropy, LossKind::MeanSquaredError, LossKind::BinaryLogistic}) {
    const Index n = 23;
    const auto set = test_util::random_dataset<double>(4, n, test_util::outputs_for(loss, 3),
                                                       loss, 11);
    const std::vector<Index> sizes{4, 5, test_util::outputs_for(loss, 3)};
    NetworkObjective<double> f(make_mlp<double>(sizes, ActivationKind::Tanh), loss, set,
                               {.chunk_size = 7, .min_samples_per_thread = 4});
    const Vector<double> x = f.network().initial_parameters(3);
    const auto blocks = f.parameter_blocks();
    ASSERT_EQ(blocks.size(), 2u);

    // Reference: for each sample, its own gradient gives g_i (the bias part)
    // and the layer input a_i (from predict through the layers before it).
    std::vector<Matrix<double>> A(2), G(2);
    for (std::size_t b = 0; b < 2; ++b) {
      A[b].setZero(blocks[b].cols + 1, blocks[b].cols + 1);
      G[b].setZero(blocks[b].rows, blocks[b].rows);
    }
    Vector<double> g;
    for (Index i = 0; i < n; ++i) {
      const std::vector<Index> one{i};
      f.select_batch(one);
      f.value_and_gradient(x, &g);
      // Input of the first Dense layer: the features; of the second: tanh of
      // the first's output.
      Vector<double> a0(5), a1(6);
      a0 << set.features.col(i), 1.0;
      const Matrix<double> W0 = Eigen::Map<const Matrix<double>>(x.data(), 5, 4);
      const Vector<double> b0 = x.segment(20, 5);
      a1 << (W0 * set.features.col(i) + b0).array().tanh().matrix(), 1.0;
      A[0] += a0 * a0.transpose() / double(n);
      A[1] += a1 * a1.transpose() / double(n);
      const Vector<double> g0 = g.segment(blocks[0].bias_offset, blocks[0].rows);
      const Vector<double> g1 = g.segment(blocks[1].bias_offset, blocks[1].rows);
      G[0] += g0 * g0.transpose() / double(n);
      G[1] += g1 * g1.transpose() / double(n);
    }

    f.select_all();
    KroneckerFactors<double> k;
    Rng rng(1);
    Vector<double> grad_k, grad;
    const double loss_k = f.kronecker_factors(x, FisherKind::Empirical, rng, k, &grad_k);
    const double loss_v = f.value_and_gradient(x, &grad);
    EXPECT_NEAR(loss_k, loss_v, 1e-14);
    EXPECT_LT((grad_k - grad).norm(), 1e-14);
    for (std::size_t b = 0; b < 2; ++b) {
      EXPECT_LT((k.A[b] - A[b]).norm(), 1e-12 * (1 + A[b].norm())) << to_string(loss) << " A" << b;
      EXPECT_LT((k.G[b] - G[b]).norm(), 1e-12 * (1 + G[b].norm())) << to_string(loss) << " G" << b;
    }
  }
}

TEST(KroneckerFactors, TrueFisherSampledLabelsAverageToTheLossHessian) {
  // For softmax cross-entropy the last layer's g = p - e_y; with y drawn from
  // p, E[g g^T] = diag(p) - p p^T, the Hessian of the loss in the outputs.
  Net net(LossKind::SoftmaxCrossEntropy, ActivationKind::ReLU, 16);
  NetworkObjective<double>& f = net.objective;
  const Vector<double> x = f.network().initial_parameters(5);
  Matrix<double> outputs;
  f.network().predict(x, net.set.features, outputs);
  Matrix<double> expected = Matrix<double>::Zero(3, 3);
  for (Index i = 0; i < outputs.cols(); ++i) {
    const Vector<double> z = outputs.col(i);
    const Vector<double> p = (z.array() - z.maxCoeff()).exp().matrix();
    const Vector<double> q = p / p.sum();
    expected += (Matrix<double>(q.asDiagonal()) - q * q.transpose()) / double(outputs.cols());
  }
  Rng rng(9);
  KroneckerFactors<double> k;
  Matrix<double> mean = Matrix<double>::Zero(3, 3);
  const int draws = 4000;
  for (int d = 0; d < draws; ++d) {
    f.kronecker_factors(x, FisherKind::True, rng, k, nullptr);
    mean += k.G[1] / double(draws);
  }
  EXPECT_LT((mean - expected).cwiseAbs().maxCoeff(), 0.01) << mean << "\n\n" << expected;
}

TEST(KroneckerFactors, TrueFisherDoesNotDependOnThreadsOrChunks) {
  const auto set = test_util::random_dataset<double>(4, 300, 3, LossKind::SoftmaxCrossEntropy, 2);
  const std::vector<Index> sizes{4, 6, 3};
  const auto net = make_mlp<double>(sizes, ActivationKind::Tanh);
  NetworkObjective<double> one(net, LossKind::SoftmaxCrossEntropy, set,
                               {.chunk_size = 300, .threads = 1});
  NetworkObjective<double> many(net, LossKind::SoftmaxCrossEntropy, set,
                                {.chunk_size = 17, .threads = 2, .min_samples_per_thread = 8});
  const Vector<double> x = net.initial_parameters(1);
  KroneckerFactors<double> k1, k2;
  Rng r1(4), r2(4);
  one.kronecker_factors(x, FisherKind::True, r1, k1, nullptr);
  many.kronecker_factors(x, FisherKind::True, r2, k2, nullptr);
  for (std::size_t b = 0; b < 2; ++b) {
    EXPECT_LT((k1.A[b] - k2.A[b]).norm(), 1e-12 * k1.A[b].norm());
    EXPECT_LT((k1.G[b] - k2.G[b]).norm(), 1e-12 * k1.G[b].norm());
  }
  Vector<double> s1, s2;
  Rng r3(8), r4(8);
  one.sampled_target_gradient(x, r3, s1);
  many.sampled_target_gradient(x, r4, s2);
  EXPECT_LT((s1 - s2).norm(), 1e-12 * s1.norm());
}

// K-FAC's statistics step: the batch's factors folded into moving averages,
// lower triangles only, with the NaN/Inf check; against kronecker_factors.
TEST(KroneckerFactors, AveragesAreTheMovingAveragesOfTheLowerTriangles) {
  Net net(LossKind::SoftmaxCrossEntropy, ActivationKind::Tanh, 40);
  NetworkObjective<double>& f = net.objective;
  const Vector<double> x = f.network().initial_parameters(3);
  std::vector<Index> first, second;
  for (Index i = 0; i < 20; ++i) first.push_back(i), second.push_back(20 + i);
  const double decay = 0.9;

  KroneckerFactors<double> full1, full2;
  Vector<double> g_full;
  Rng r1(5);
  f.select_batch(first);
  f.kronecker_factors(x, FisherKind::True, r1, full1, nullptr);
  f.select_batch(second);
  const double loss_full = f.kronecker_factors(x, FisherKind::True, r1, full2, &g_full);

  KroneckerFactors<double> previous, out;
  Vector<double> g;
  Index nonfinite = 7;
  Rng r2(5);
  f.select_batch(first);
  f.kronecker_factor_averages(x, FisherKind::True, r2, nullptr, decay, previous, nullptr, nonfinite);
  EXPECT_EQ(nonfinite, -1);
  f.select_batch(second);
  const double loss = f.kronecker_factor_averages(x, FisherKind::True, r2, &previous, decay, out, &g,
                                                  nonfinite);
  EXPECT_EQ(nonfinite, -1);
  EXPECT_EQ(loss, loss_full);
  EXPECT_EQ(g, g_full);
  for (std::size_t b = 0; b < 2; ++b) {
    // No averaging on the first call: the batch's own lower triangles.
    EXPECT_EQ(Matrix<double>(previous.A[b].triangularView<Eigen::Lower>()),
              Matrix<double>(full1.A[b].triangularView<Eigen::Lower>()));
    const Matrix<double> A = decay * full1.A[b] + (1 - decay) * full2.A[b];
    const Matrix<double> G = decay * full1.G[b] + (1 - decay) * full2.G[b];
    EXPECT_LT((Matrix<double>(out.A[b].selfadjointView<Eigen::Lower>()) - A).norm(),
              1e-14 * A.norm());
    EXPECT_LT((Matrix<double>(out.G[b].selfadjointView<Eigen::Lower>()) - G).norm(),
              1e-14 * G.norm());
    EXPECT_EQ(Matrix<double>(out.A[b].triangularView<Eigen::StrictlyUpper>()).norm(), 0.0);
    EXPECT_EQ(Matrix<double>(out.G[b].triangularView<Eigen::StrictlyUpper>()).norm(), 0.0);
  }

  // A NaN in the previous averages of block 1 is reported as block 1.
  previous.G[1](1, 0) = std::numeric_limits<double>::quiet_NaN();
  f.kronecker_factor_averages(x, FisherKind::True, r2, &previous, decay, out, nullptr, nonfinite);
  EXPECT_EQ(nonfinite, 1);

  // Bad arguments name what is wrong.
  EXPECT_THROW(f.kronecker_factor_averages(x, FisherKind::True, r2, &out, decay, out, nullptr,
                                           nonfinite),
               InvalidArgument);
  EXPECT_THROW(f.kronecker_factor_averages(x, FisherKind::True, r2, &previous, 1.0, out, nullptr,
                                           nonfinite),
               InvalidArgument);
  KroneckerFactors<double> wrong = previous;
  wrong.A[0].resize(2, 2);
  try {
    f.kronecker_factor_averages(x, FisherKind::True, r2, &wrong, decay, out, nullptr, nonfinite);
    FAIL() << "no exception for previous factors of the wrong shape";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("block 0"), std::string::npos) << e.what();
  }
}

TEST(KroneckerFactors, SampledTargetGradientMatchesAGradientWithThoseTargets) {
  // Sampling for mse is y = z + sqrt(k/2) eps; with the same draws the
  // gradient must equal the ordinary gradient on a data set with those targets.
  const auto set = test_util::random_dataset<double>(4, 12, 3, LossKind::MeanSquaredError, 6);
  const std::vector<Index> sizes{4, 5, 3};
  const auto net = make_mlp<double>(sizes, ActivationKind::Sigmoid);
  NetworkObjective<double> f(net, LossKind::MeanSquaredError, set, {.threads = 1});
  const Vector<double> x = net.initial_parameters(2);
  Rng rng(3);
  Vector<double> g;
  f.sampled_target_gradient(x, rng, g);

  Rng replay(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> randoms(36);
  for (double& r : randoms) r = normal(replay);
  Matrix<double> outputs, targets;
  net.predict(x, set.features, outputs);
  sample_targets<double>(LossKind::MeanSquaredError, outputs, randoms.data(), targets);
  auto sampled = set;
  sampled.targets = targets;
  NetworkObjective<double> h(net, LossKind::MeanSquaredError, sampled, {.threads = 1});
  Vector<double> expected;
  h.value_and_gradient(x, &expected);
  EXPECT_LT((g - expected).norm(), 1e-13 * expected.norm());
}

}  // namespace
