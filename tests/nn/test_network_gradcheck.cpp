// Exact derivatives of network objectives, in double, against finite
// differences: every activation x every loss, at random points with fixed
// seeds, on the whole set and on a mini-batch, plus points near ReLU kinks.
#include <gtest/gtest.h>

#include <omp.h>

#include <tuple>
#include <vector>

#include "hesse/nn/network_objective.hpp"
#include "hesse/objective/derivative_check.hpp"
#include "nn_test_util.hpp"

using namespace hesse;
using namespace hesse::nn;

namespace {

static_assert(HessianVectorObjective<NetworkObjective<double>>);
static_assert(GaussNewtonObjective<NetworkObjective<float>>);
static_assert(DenseHessianObjective<NetworkObjective<double>>);
static_assert(BatchObjective<NetworkObjective<double>>);

const ActivationKind kActivations[] = {ActivationKind::Identity, ActivationKind::ReLU,
                                       ActivationKind::LeakyReLU, ActivationKind::Tanh,
                                       ActivationKind::Sigmoid,  ActivationKind::Softplus,
                                       ActivationKind::GELU};
const LossKind kLosses[] = {LossKind::MeanSquaredError, LossKind::SoftmaxCrossEntropy,
                            LossKind::BinaryLogistic};

using Case = std::tuple<ActivationKind, LossKind>;
class NetworkGradcheck : public ::testing::TestWithParam<Case> {};

void expect_passes(const DerivativeCheckReport& report) {
  EXPECT_TRUE(report.passed()) << report.report();
  EXPECT_GE(report.entries.size(), 6u) << report.report();
}

TEST_P(NetworkGradcheck, AllTiersMatchFiniteDifferences) {
  const auto [activation, loss] = GetParam();
  const Index classes = 3;
  const Index outputs = test_util::outputs_for(loss, classes);
  const auto set = test_util::random_dataset<double>(5, 23, outputs, loss, 7);
  const std::vector<Index> sizes{5, 6, 4, outputs};
  NetworkObjective<double> objective(make_mlp<double>(sizes, activation), loss, set);
  for (std::uint64_t seed : {1u, 2u}) {
    Vector<double> x = objective.network().initial_parameters(seed);
    // Non-zero biases so no pre-activation sits exactly on a kink by construction.
    Rng rng(seed + 100);
    Vector<double> shift(x.size());
    fill_normal<double>(rng, shift, 0.1);
    x += shift;
    DerivativeCheckOptions options;
    options.seed = seed;
    options.tolerance = 1e-6;
    expect_passes(check_derivatives(objective, x, options));

    const std::vector<Index> batch{3, 0, 17, 9, 9, 22};
    objective.select_batch(batch);
    expect_passes(check_derivatives(objective, x, options));
    objective.select_all();
  }
}

INSTANTIATE_TEST_SUITE_P(
    ActivationsTimesLosses, NetworkGradcheck,
    ::testing::Combine(::testing::ValuesIn(kActivations), ::testing::ValuesIn(kLosses)),
    [](const auto& info) {
      std::string name = std::string(to_string(std::get<0>(info.param))) + "_" +
                         std::string(to_string(std::get<1>(info.param)));
      std::erase(name, '-');
      return name;
    });

// A network with one hidden ReLU layer whose biases put every hidden unit of
// sample 0 within 1e-3 of the kink (with alternating sign): the finite
// differences (step ~6e-6) stay on one side, so the exact derivatives must match.
TEST(NetworkGradcheck, ReluNearKinks) {
  const auto set = test_util::random_dataset<double>(4, 10, 3, LossKind::SoftmaxCrossEntropy, 11);
  const std::vector<Index> sizes{4, 8, 3};
  NetworkObjective<double> objective(make_mlp<double>(sizes, ActivationKind::ReLU),
                                     LossKind::SoftmaxCrossEntropy, set);
  Vector<double> x = objective.network().initial_parameters(3);
  const Index hidden = 8;
  Eigen::Map<const Matrix<double>> W(x.data(), hidden, 4);
  const Vector<double> z0 = W * set.features.col(0);
  for (Index j = 0; j < hidden; ++j) x[hidden * 4 + j] = -z0[j] + (j % 2 ? 1e-3 : -1e-3);
  Matrix<double> check(hidden, 1);
  check = W * set.features.col(0) + x.segment(hidden * 4, hidden);
  EXPECT_LT(check.cwiseAbs().maxCoeff(), 1.5e-3);
  expect_passes(check_derivatives(objective, x));
}

// Exactly on the kink the derivative is the convention relu'(0) = 0 (as in
// PyTorch): the gradient with respect to that unit's bias, from the sample
// whose pre-activation is zero, equals the one-sided difference from the left.
TEST(NetworkGradcheck, ReluExactlyOnKinkUsesLeftDerivative) {
  auto set = test_util::random_dataset<double>(3, 1, 2, LossKind::SoftmaxCrossEntropy, 5);
  const std::vector<Index> sizes{3, 2, 2};
  NetworkObjective<double> objective(make_mlp<double>(sizes, ActivationKind::ReLU),
                                     LossKind::SoftmaxCrossEntropy, set);
  Vector<double> x = objective.network().initial_parameters(9);
  Eigen::Map<const Matrix<double>> W(x.data(), 2, 3);
  const Vector<double> z0 = W * set.features.col(0);
  const Index bias0 = 2 * 3;
  x[bias0] = -z0[0];
  x[bias0 + 1] = 1.0 - z0[1];  // second unit well inside the linear piece
  Vector<double> g;
  objective.value_and_gradient(x, &g);
  const double h = 1e-7;
  Vector<double> left = x;
  left[bias0] -= h;
  const double one_sided = (objective.value(x) - objective.value(left)) / h;
  EXPECT_NEAR(g[bias0], one_sided, 1e-6);
  EXPECT_EQ(g[bias0], 0.0);
}

// Gauss-Newton product against J^T H_loss J built explicitly from a
// finite-difference Jacobian of the network outputs.
TEST(NetworkGradcheck, GaussNewtonEqualsExplicitJacobianProduct) {
  for (const LossKind loss : kLosses) {
    const Index outputs = test_util::outputs_for(loss, 3);
    const auto set = test_util::random_dataset<double>(3, 4, outputs, loss, 21);
    const std::vector<Index> sizes{3, 4, outputs};
    NetworkObjective<double> objective(make_mlp<double>(sizes, ActivationKind::Tanh), loss, set);
    const Sequential<double>& net = objective.network();
    const Vector<double> x = net.initial_parameters(4);
    const Index n = x.size();
    const Index batch = set.num_samples();
    const double h = 1e-6;
    Matrix<double> G_explicit = Matrix<double>::Zero(n, n);
    Matrix<double> out0, plus, minus;
    net.predict(x, set.features, out0);
    // J: rows (output j, sample i), columns parameters.
    Matrix<double> J(outputs * batch, n);
    for (Index p = 0; p < n; ++p) {
      Vector<double> xp = x, xm = x;
      xp[p] += h;
      xm[p] -= h;
      net.predict(xp, set.features, plus);
      net.predict(xm, set.features, minus);
      const Matrix<double> column = (plus - minus) / (2 * h);
      J.col(p) = Eigen::Map<const Vector<double>>(column.data(), column.size());
    }
    // Block-diagonal loss Hessian, one k x k block per sample.
    for (Index i = 0; i < batch; ++i) {
      Matrix<double> Hl(outputs, outputs), Hcol;
      for (Index j = 0; j < outputs; ++j) {
        Matrix<double> e = Matrix<double>::Zero(outputs, 1);
        e(j, 0) = 1;
        loss_hessian_product<double>(loss, out0.col(i), set.targets.col(i), e,
                                     1.0 / double(batch), Hcol);
        Hl.col(j) = Hcol.col(0);
      }
      const auto Ji = J.middleRows(i * outputs, outputs);
      G_explicit += Ji.transpose() * Hl * Ji;
    }
    Vector<double> e = Vector<double>::Zero(n), Ge;
    for (Index p = 0; p < n; ++p) {
      e[p] = 1;
      objective.gauss_newton_vector(x, e, Ge);
      e[p] = 0;
      EXPECT_LT((Ge - G_explicit.col(p)).lpNorm<Eigen::Infinity>(), 1e-7 * (1 + G_explicit.norm()))
          << to_string(loss) << " column " << p;
    }
  }
}

// Without hidden layers the network is a generalised linear model, whose
// Gauss-Newton matrix is its Hessian (the network is linear in x).
TEST(NetworkGradcheck, GaussNewtonEqualsHessianForLinearModel) {
  for (const LossKind loss : kLosses) {
    const Index outputs = test_util::outputs_for(loss, 4);
    const auto set = test_util::random_dataset<double>(6, 30, outputs, loss, 2);
    const std::vector<Index> sizes{6, outputs};
    NetworkObjective<double> objective(make_mlp<double>(sizes, ActivationKind::ReLU), loss, set);
    const Vector<double> x = objective.network().initial_parameters(1);
    Rng rng(8);
    Vector<double> v(x.size()), Hv, Gv;
    fill_normal<double>(rng, v);
    objective.hessian_vector(x, v, Hv);
    objective.gauss_newton_vector(x, v, Gv);
    EXPECT_LT((Hv - Gv).norm(), 1e-12 * (1 + Hv.norm())) << to_string(loss);
  }
}

TEST(NetworkObjective, ChunkingDoesNotChangeResults) {
  const auto set = test_util::random_dataset<double>(5, 50, 3, LossKind::SoftmaxCrossEntropy, 3);
  const std::vector<Index> sizes{5, 7, 3};
  const auto net = make_mlp<double>(sizes, ActivationKind::GELU);
  NetworkObjectiveOptions small;
  small.chunk_size = 7;
  NetworkObjective<double> whole(net, LossKind::SoftmaxCrossEntropy, set);
  NetworkObjective<double> chunked(net, LossKind::SoftmaxCrossEntropy, set, small);
  const Vector<double> x = net.initial_parameters(5);
  const Vector<double> v = Vector<double>::LinSpaced(x.size(), -1, 1);
  Vector<double> g1, g2, h1, h2, n1, n2;
  EXPECT_NEAR(whole.value_and_gradient(x, &g1), chunked.value_and_gradient(x, &g2), 1e-14);
  whole.hessian_vector(x, v, h1);
  chunked.hessian_vector(x, v, h2);
  whole.gauss_newton_vector(x, v, n1);
  chunked.gauss_newton_vector(x, v, n2);
  EXPECT_LT((g1 - g2).norm(), 1e-13);
  EXPECT_LT((h1 - h2).norm(), 1e-13);
  EXPECT_LT((n1 - n2).norm(), 1e-13);
}

TEST(NetworkObjective, BatchEqualsObjectiveOnTheSubset) {
  const auto set = test_util::random_dataset<double>(4, 20, 2, LossKind::MeanSquaredError, 13);
  const std::vector<Index> batch{4, 11, 2, 19};
  data::Dataset<double> subset = set;
  subset.features.resize(4, 4);
  subset.targets.resize(2, 4);
  for (std::size_t j = 0; j < batch.size(); ++j) {
    subset.features.col(Index(j)) = set.features.col(batch[j]);
    subset.targets.col(Index(j)) = set.targets.col(batch[j]);
  }
  const std::vector<Index> sizes{4, 5, 2};
  const auto net = make_mlp<double>(sizes, ActivationKind::Softplus);
  NetworkObjective<double> full(net, LossKind::MeanSquaredError, set);
  NetworkObjective<double> sub(net, LossKind::MeanSquaredError, subset);
  full.select_batch(batch);
  const Vector<double> x = net.initial_parameters(2);
  Vector<double> g1, g2;
  EXPECT_DOUBLE_EQ(full.value_and_gradient(x, &g1), sub.value_and_gradient(x, &g2));
  EXPECT_LT((g1 - g2).norm(), 1e-15);
}

TEST(NetworkObjective, L2TermAddsToEveryTier) {
  const auto set = test_util::random_dataset<double>(3, 9, 2, LossKind::SoftmaxCrossEntropy, 1);
  const std::vector<Index> sizes{3, 4, 2};
  NetworkObjectiveOptions options;
  options.l2 = 0.3;
  NetworkObjective<double> objective(make_mlp<double>(sizes, ActivationKind::Sigmoid),
                                     LossKind::SoftmaxCrossEntropy, set, options);
  const Vector<double> x = objective.network().initial_parameters(6);
  expect_passes(check_derivatives(objective, x));
}

TEST(NetworkObjective, FloatAgreesWithDouble) {
  const auto set = test_util::random_dataset<double>(8, 40, 4, LossKind::SoftmaxCrossEntropy, 17);
  const auto setf = set.cast<float>();
  const std::vector<Index> sizes{8, 16, 4};
  NetworkObjective<double> d(make_mlp<double>(sizes, ActivationKind::Tanh),
                             LossKind::SoftmaxCrossEntropy, set);
  NetworkObjective<float> f(make_mlp<float>(sizes, ActivationKind::Tanh),
                            LossKind::SoftmaxCrossEntropy, setf);
  const Vector<double> x = d.network().initial_parameters(1);
  const Vector<double> v = Vector<double>::LinSpaced(x.size(), -1, 1);
  Vector<double> gd, hd, nd;
  Vector<float> gf, hf, nf;
  const double vd = d.value_and_gradient(x, &gd);
  const float vf = f.value_and_gradient(x.cast<float>(), &gf);
  d.hessian_vector(x, v, hd);
  f.hessian_vector(x.cast<float>(), v.cast<float>(), hf);
  d.gauss_newton_vector(x, v, nd);
  f.gauss_newton_vector(x.cast<float>(), v.cast<float>(), nf);
  EXPECT_NEAR(vf, vd, 1e-5 * std::abs(vd));
  EXPECT_LT((gf.cast<double>() - gd).norm(), 1e-4 * gd.norm());
  EXPECT_LT((hf.cast<double>() - hd).norm(), 1e-4 * hd.norm());
  EXPECT_LT((nf.cast<double>() - nd).norm(), 1e-4 * nd.norm());
}

TEST(NetworkObjective, RejectsMismatchedShapesWithPreciseMessages) {
  const auto set = test_util::random_dataset<double>(3, 5, 2, LossKind::SoftmaxCrossEntropy, 1);
  const std::vector<Index> wrong_inputs{4, 2};
  EXPECT_THROW(NetworkObjective<double>(make_mlp<double>(wrong_inputs, ActivationKind::ReLU),
                                        LossKind::SoftmaxCrossEntropy, set),
               InvalidArgument);
  const std::vector<Index> wrong_outputs{3, 5};
  try {
    NetworkObjective<double>(make_mlp<double>(wrong_outputs, ActivationKind::ReLU),
                             LossKind::SoftmaxCrossEntropy, set);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("5 outputs"), std::string::npos) << e.what();
  }
  const std::vector<Index> sizes{3, 2};
  NetworkObjective<double> objective(make_mlp<double>(sizes, ActivationKind::ReLU),
                                     LossKind::SoftmaxCrossEntropy, set);
  Vector<double> g;
  EXPECT_THROW(objective.value_and_gradient(Vector<double>::Zero(3), &g), InvalidArgument);
  const std::vector<Index> bad{0, 7};
  EXPECT_THROW(objective.select_batch(bad), InvalidArgument);
  Matrix<double> H;
  NetworkObjectiveOptions tiny;
  tiny.max_dense_dimension = 2;
  NetworkObjective<double> limited(make_mlp<double>(sizes, ActivationKind::ReLU),
                                   LossKind::SoftmaxCrossEntropy, set, tiny);
  EXPECT_THROW(limited.hessian(Vector<double>::Zero(8), H), InvalidArgument);
}

TEST(Sequential, ParsesLayerSpecsAndInitialisesDeterministically) {
  EXPECT_EQ(parse_layer_sizes("mlp:784-128-64-10"), (std::vector<Index>{784, 128, 64, 10}));
  EXPECT_THROW(parse_layer_sizes("784-x-10"), InvalidArgument);
  EXPECT_THROW(parse_layer_sizes("784"), InvalidArgument);
  EXPECT_THROW(parse_layer_sizes("784--10"), InvalidArgument);
  const std::vector<Index> sizes{784, 128, 64, 10};
  const auto net = make_mlp<float>(sizes, ActivationKind::ReLU);
  EXPECT_EQ(net.num_parameters(), 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10);
  const Vector<float> a = net.initial_parameters(42), b = net.initial_parameters(42);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, net.initial_parameters(43));
  // He normal for the first layer: std sqrt(2/784).
  const float std0 = std::sqrt(a.head(784 * 128).squaredNorm() / float(784 * 128));
  EXPECT_NEAR(std0, std::sqrt(2.0 / 784), 0.002);
  EXPECT_EQ(a.segment(784 * 128, 128).norm(), 0.0f);
}

}  // namespace

namespace {

// Splitting the samples over threads changes only the order of summation.
TEST(NetworkObjective, ThreadSlicesAgreeWithOneThread) {
  const auto set = test_util::random_dataset<double>(6, 203, 3, LossKind::SoftmaxCrossEntropy, 4);
  const std::vector<Index> sizes{6, 9, 3};
  const auto net = make_mlp<double>(sizes, ActivationKind::Tanh);
  NetworkObjectiveOptions one, two;
  one.threads = 1;
  two.threads = 2;
  two.min_samples_per_thread = 4;
  two.chunk_size = 17;
  NetworkObjective<double> serial(net, LossKind::SoftmaxCrossEntropy, set, one);
  NetworkObjective<double> split(net, LossKind::SoftmaxCrossEntropy, set, two);
  const Vector<double> x = net.initial_parameters(3);
  const Vector<double> v = Vector<double>::LinSpaced(x.size(), -1, 1);
  for (const bool batch : {false, true}) {
    if (batch) {
      std::vector<Index> indices;
      for (Index i = 0; i < 150; ++i) indices.push_back((i * 37) % 203);
      serial.select_batch(indices);
      split.select_batch(indices);
    }
    Vector<double> g1, g2, h1, h2, n1, n2;
    EXPECT_NEAR(serial.value_and_gradient(x, &g1), split.value_and_gradient(x, &g2), 1e-14);
    EXPECT_NEAR(serial.value(x), split.value(x), 1e-14);
    serial.hessian_vector(x, v, h1);
    split.hessian_vector(x, v, h2);
    serial.gauss_newton_vector(x, v, n1);
    split.gauss_newton_vector(x, v, n2);
    EXPECT_LT((g1 - g2).norm(), 1e-13);
    EXPECT_LT((h1 - h2).norm(), 1e-13);
    EXPECT_LT((n1 - n2).norm(), 1e-13);
    EXPECT_DOUBLE_EQ(serial.accuracy(x), split.accuracy(x));
  }
  // Called from inside a parallel region, the nested region has one thread,
  // which must still cover every slice.
  serial.select_all();
  split.select_all();
  Vector<double> g_serial, g_nested;
  const double f_serial = serial.value_and_gradient(x, &g_serial);
  double f_nested = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    f_nested = split.value_and_gradient(x, &g_nested);
  }
  EXPECT_NEAR(f_serial, f_nested, 1e-14);
  EXPECT_LT((g_serial - g_nested).norm(), 1e-13);

  NetworkObjectiveOptions bad;
  bad.threads = -1;
  EXPECT_THROW(NetworkObjective<double>(net, LossKind::SoftmaxCrossEntropy, set, bad), InvalidArgument);
}

}  // namespace

namespace {

// value_and_gradient_then hands `then` the loss and gradient value_and_gradient
// returns, bit for bit, once per team member, after the gradient is complete.
TEST(NetworkObjective, WorkAfterTheGradientSeesTheSameLossAndGradient) {
  const auto set = test_util::random_dataset<double>(6, 203, 3, LossKind::SoftmaxCrossEntropy, 4);
  const std::vector<Index> sizes{6, 9, 3};
  const auto net = make_mlp<double>(sizes, ActivationKind::Tanh);
  const Vector<double> x = net.initial_parameters(3);
  for (const int threads : {1, 2, 3}) {
    for (const Index samples_per_thread : {Index{4}, Index{100000}}) {  // slices, or one
      for (const double l2 : {0.0, 0.01}) {
        NetworkObjectiveOptions options;
        options.threads = threads;
        options.min_samples_per_thread = samples_per_thread;
        options.chunk_size = 17;
        options.l2 = l2;
        NetworkObjective<double> objective(net, LossKind::SoftmaxCrossEntropy, set, options);
        Vector<double> expected;
        const double expected_loss = objective.value_and_gradient(x, &expected);
        Vector<double> gradient;
        std::vector<double> seen_loss(8, -1.0);
        std::vector<double> seen_norm(8, -1.0);
        std::vector<int> calls(8, 0);
        int team = 0;
        bool shared_flag = false;
        const double loss = objective.value_and_gradient_then(
            x, gradient, [&](double batch_loss, bool shared) {
              const int member = omp_get_thread_num();
              ++calls[static_cast<std::size_t>(member)];
              seen_loss[static_cast<std::size_t>(member)] = batch_loss;
              // Every member sees the whole gradient, not its own range.
              seen_norm[static_cast<std::size_t>(member)] = (gradient - expected).norm();
#pragma omp single
              {
                team = omp_get_num_threads();
                shared_flag = shared;
              }
            });
        SCOPED_TRACE(::testing::Message() << "threads " << threads << ", samples/thread "
                                          << samples_per_thread << ", l2 " << l2);
        EXPECT_EQ(loss, expected_loss);
        EXPECT_EQ(gradient, expected);
        EXPECT_EQ(team, threads);
        EXPECT_EQ(shared_flag, threads > 1);
        for (int m = 0; m < 8; ++m) {
          const auto i = static_cast<std::size_t>(m);
          EXPECT_EQ(calls[i], m < threads ? 1 : 0);
          if (m >= threads) continue;
          EXPECT_EQ(seen_loss[i], expected_loss);
          EXPECT_EQ(seen_norm[i], 0.0);
        }
      }
    }
  }
}

}  // namespace
