// Quick start: exact curvature of a network on real data. Loads the built-in
// digits, builds a 64-32-10 tanh MLP and takes ten gradient steps whose length
// comes from the exact curvature along the gradient, g.g / g.(H g).
#include <cstdio>
#include <hesse/hesse.hpp>

int main() {
  using namespace hesse;
  const auto digits = data::load_builtin<double>("digits", {.standardize = true});
  const std::vector<Index> sizes{64, 32, 10};
  nn::NetworkObjective<double> loss(nn::make_mlp<double>(sizes, nn::ActivationKind::Tanh),
                                    nn::LossKind::SoftmaxCrossEntropy, digits.train);
  Vector<double> x = loss.network().initial_parameters(/*seed=*/0), g, Hg, Gg;
  for (int step = 0; step < 10; ++step) {
    const double f = loss.value_and_gradient(x, &g);
    loss.hessian_vector(x, g, Hg);      // exact H g (Pearlmutter's R-op)
    loss.gauss_newton_vector(x, g, Gg); // exact G g (Gauss-Newton)
    const double curvature = g.dot(Hg) / g.squaredNorm();
    std::printf("step %d  loss %.4f  |g| %.4f  g'Hg/g'g %.4f  g'Gg/g'g %.4f\n", step, f,
                g.norm(), curvature, g.dot(Gg) / g.squaredNorm());
    x -= g / (curvature > 0 ? curvature : 1.0);
  }
  std::printf("train accuracy %.3f\n", loss.accuracy(x));
}
