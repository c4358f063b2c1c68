// NetworkObjective::squared_gradient_sum (one batched pass) against its
// definition: the sum over the selected samples of each sample's own
// gradient squared, from a loop of single-sample value_and_gradient calls.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../common/small_network.hpp"
#include "hesse/core/error.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/stochastic_adapter.hpp"
#include "nn_test_util.hpp"

using namespace hesse;
using namespace hesse::nn;

namespace {

// sum_i (grad f_i(x))^2 over `samples`, one single-sample gradient at a time.
template <class T>
Vector<T> loop_reference(NetworkObjective<T>& f, const Vector<T>& x,
                         const std::vector<Index>& samples) {
  Vector<T> sum = Vector<T>::Zero(x.size()), g;
  for (const Index i : samples) {
    const std::vector<Index> one{i};
    f.select_batch(one);
    f.value_and_gradient(x, &g);
    sum.array() += g.array().square();
  }
  return sum;
}

double relative_error(const Vector<double>& a, const Vector<double>& b) {
  return (a - b).lpNorm<Eigen::Infinity>() / (1e-300 + b.lpNorm<Eigen::Infinity>());
}

// A selection of 19 of 23 samples, out of order and with a repeat (a
// curvature batch is a subset in random order; repeats must count twice).
std::vector<Index> scrambled_batch() {
  return {22, 3, 17, 0, 5, 5, 11, 9, 20, 1, 14, 7, 19, 2, 13, 8, 21, 16, 10};
}

// Checks squared_gradient_sum, its loss and gradient on `f` against the loop
// and value_and_gradient, for all samples and for scrambled_batch().
void expect_matches_loop(NetworkObjective<double>& f, const Vector<double>& x,
                         const std::string& what) {
  std::vector<Index> all(static_cast<std::size_t>(f.num_samples()));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = Index(i);
  for (const auto& samples : {all, scrambled_batch()}) {
    const std::string label = what + (samples.size() == all.size() ? " all" : " batch");
    const Vector<double> reference = loop_reference(f, x, samples);
    f.select_batch(samples);
    Vector<double> squares, gradient, plain_gradient, squares_only;
    const double loss = f.squared_gradient_sum(x, squares, &gradient);
    const double plain_loss = f.value_and_gradient(x, &plain_gradient);
    EXPECT_LT(relative_error(squares, reference), 1e-12) << label;
    EXPECT_NEAR(loss, plain_loss, 1e-13 * (1 + std::abs(plain_loss))) << label;
    EXPECT_LT(relative_error(gradient, plain_gradient), 1e-12) << label;
    // Without the gradient (the l2 cross term then uses the objective's own buffer).
    f.squared_gradient_sum(x, squares_only);
    EXPECT_LT(relative_error(squares_only, reference), 1e-12) << label << " (no gradient)";
  }
}

TEST(SquaredGradientSum, EqualsTheSingleSampleLoopOnRandomData) {
  // chunk_size 7 and min_samples_per_thread 4: 23 and 19 samples split into
  // uneven slices and a short last chunk on 2 threads.
  for (const LossKind loss :
       {LossKind::SoftmaxCrossEntropy, LossKind::MeanSquaredError, LossKind::BinaryLogistic})
    for (const double l2 : {0.0, 0.03})
      for (const int threads : {1, 2}) {
        const Index k = test_util::outputs_for(loss, 3);
        const auto set = test_util::random_dataset<double>(4, 23, k, loss, 5);
        const std::vector<Index> sizes{4, 6, 5, k};
        NetworkObjective<double> f(
            make_mlp<double>(sizes, ActivationKind::Tanh), loss, set,
            {.chunk_size = 7, .l2 = l2, .threads = threads, .min_samples_per_thread = 4});
        ASSERT_TRUE(f.has_squared_gradient_sum());
        const Vector<double> x = f.network().initial_parameters(2);
        expect_matches_loop(f, x,
                            std::string(to_string(loss)) + " l2=" + std::to_string(l2) +
                                " threads=" + std::to_string(threads));
      }
}

TEST(SquaredGradientSum, EqualsTheSingleSampleLoopOnTheSmallNetwork) {
  // tests/common/small_network.hpp: small_mlp (4-16-3 tanh) on blobs, with
  // softmax cross-entropy and with MSE against one-hot labels; 101 samples in
  // chunks of 13 (slices of 50 and 51 on two threads).
  const auto set = hesse::testing::blobs<double>(101, 3);
  for (const LossKind loss : {LossKind::SoftmaxCrossEntropy, LossKind::MeanSquaredError})
    for (const double l2 : {0.0, 1e-3})
      for (const int threads : {1, 2}) {
        NetworkObjective<double> f(hesse::testing::small_mlp<double>(), loss, set,
                                   {.chunk_size = 13, .l2 = l2, .threads = threads});
        const Vector<double> x = f.network().initial_parameters(4);
        const std::string label = std::string(to_string(loss)) + " l2=" + std::to_string(l2) +
                                  " threads=" + std::to_string(threads);
        std::vector<Index> all(101);
        for (Index i = 0; i < 101; ++i) all[static_cast<std::size_t>(i)] = i;
        const Vector<double> reference = loop_reference(f, x, all);
        f.select_all();
        Vector<double> squares;
        f.squared_gradient_sum(x, squares);
        EXPECT_LT(relative_error(squares, reference), 1e-12) << label;
      }
}

TEST(SquaredGradientSum, FloatAgreesWithDouble) {
  const auto set_d = hesse::testing::blobs<double>(64, 3);
  const auto set_f = hesse::testing::blobs<float>(64, 3);
  NetworkObjective<double> fd(hesse::testing::small_mlp<double>(), LossKind::SoftmaxCrossEntropy,
                              set_d, {.l2 = 1e-3, .threads = 2});
  NetworkObjective<float> ff(hesse::testing::small_mlp<float>(), LossKind::SoftmaxCrossEntropy,
                             set_f, {.l2 = 1e-3, .threads = 2});
  const Vector<double> xd = fd.network().initial_parameters(4);
  const Vector<float> xf = xd.cast<float>();
  Vector<double> sd;
  Vector<float> sf;
  fd.squared_gradient_sum(xd, sd);
  ff.squared_gradient_sum(xf, sf);
  EXPECT_LT(relative_error(sf.cast<double>(), sd), 1e-4);
}

TEST(SquaredGradientSum, TheAdapterForwardsIt) {
  const auto set = hesse::testing::blobs<double>(40, 3);
  NetworkObjective<double> f(hesse::testing::small_mlp<double>(), LossKind::SoftmaxCrossEntropy,
                             set);
  optim::StochasticAdapter<NetworkObjective<double>> adapter(f);
  ASSERT_TRUE(adapter.has_squared_gradient_sum());
  const Vector<double> x = f.network().initial_parameters(1);
  Vector<double> direct, forwarded, g;
  const double loss = f.squared_gradient_sum(x, direct);
  EXPECT_EQ(adapter.squared_gradient_sum(x, forwarded, &g), loss);
  EXPECT_EQ(forwarded, direct);
}

// A layer with parameters that is not Dense: Y = s X, one parameter s.
class Scale final : public Layer<double> {
 public:
  explicit Scale(Index size) : size_(size) {}
  std::string describe() const override { return "scale"; }
  Index input_size() const override { return size_; }
  Index output_size() const override { return size_; }
  Index num_parameters() const override { return 1; }
  void initialize(double* params, Init, Rng&) const override { params[0] = 1; }
  void forward(const double* params, ConstRef<double> X, Matrix<double>& Y) const override {
    Y = params[0] * X;
  }
  void backward(const double* params, ConstRef<double> X, const Matrix<double>&,
                const Matrix<double>& dY, Matrix<double>* dX, double* grad) const override {
    if (grad) grad[0] += (dY.array() * X.array()).sum();
    if (dX) *dX = params[0] * dY;
  }
  void r_forward(const double*, const double*, ConstRef<double>, const Matrix<double>*,
                 const Matrix<double>&, Matrix<double>&) const override {
    throw InvalidArgument("scale: no R-op");
  }
  void r_backward(const double*, const double*, ConstRef<double>, const Matrix<double>*,
                  const Matrix<double>&, const Matrix<double>&, const Matrix<double>&,
                  const Matrix<double>&, Matrix<double>*, Matrix<double>*, double*,
                  double*) const override {
    throw InvalidArgument("scale: no R-op");
  }

 private:
  Index size_;
};

TEST(SquaredGradientSum, RefusesLayersWithParametersOtherThanDense) {
  const auto set = hesse::testing::blobs<double>(40, 3);
  Sequential<double> net(4);
  net.dense(5).activation(ActivationKind::Tanh).add(std::make_shared<Scale>(5)).dense(3);
  NetworkObjective<double> f(net, LossKind::SoftmaxCrossEntropy, set);
  EXPECT_FALSE(f.has_squared_gradient_sum());
  optim::StochasticAdapter<NetworkObjective<double>> adapter(f);
  EXPECT_FALSE(adapter.has_squared_gradient_sum());
  const Vector<double> x = f.network().initial_parameters(1);
  Vector<double> out;
  try {
    f.squared_gradient_sum(x, out);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 2 (scale)"), std::string::npos) << e.what();
  }
}

}  // namespace
