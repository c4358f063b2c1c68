// ClippedObjective: batch gradients rescaled to at most the clip in norm
// (torch.nn.utils.clip_grad_norm_), everything else forwarded unchanged.
#include <gtest/gtest.h>

#include <vector>

#include "../common/small_network.hpp"
#include "hesse/optim/clipped_objective.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

struct Problem {
  data::Dataset<double> data = testing::blobs<double>(64);
  nn::NetworkObjective<double> network{testing::small_mlp<double>(),
                                       nn::LossKind::SoftmaxCrossEntropy, data, {.threads = 1}};
  StochasticAdapter<nn::NetworkObjective<double>> f{network};
  Vector<double> x = network.network().initial_parameters(2);
};

TEST(ClippedObjective, ClipsTheGradientAndForwardsTheRest) {
  Problem p;
  Vector<double> g, clipped_g, v = Vector<double>::LinSpaced(p.x.size(), -1, 1);
  const double loss = p.f.value_and_gradient(p.x, &g);
  const double norm = g.norm();
  ASSERT_GT(norm, 0.0);

  // Above the norm nothing changes; below it the direction is kept and the
  // norm becomes the clip.
  ClippedObjective<double> loose(p.f, 2 * norm), tight(p.f, norm / 4), off(p.f, 0);
  EXPECT_EQ(loose.value_and_gradient(p.x, &clipped_g), loss);
  EXPECT_EQ(clipped_g, g);
  EXPECT_EQ(off.value_and_gradient(p.x, &clipped_g), loss);
  EXPECT_EQ(clipped_g, g);
  EXPECT_EQ(tight.value_and_gradient(p.x, &clipped_g), loss);
  EXPECT_NEAR(clipped_g.norm(), norm / 4, 1e-15 * norm);
  EXPECT_LT((clipped_g - g / 4).norm(), 1e-15 * norm);
  // The unclipped parts, and clip_gradient on their sum.
  Vector<double> part;
  tight.value_and_unclipped_gradient(p.x, &part);
  EXPECT_EQ(part, g);
  tight.clip_gradient(part);
  EXPECT_EQ(part, clipped_g);

  // Curvature products and per-sample squares are not clipped.
  Vector<double> a, b;
  EXPECT_EQ(tight.has_hessian_vector(), p.f.has_hessian_vector());
  EXPECT_EQ(tight.has_gauss_newton_vector(), p.f.has_gauss_newton_vector());
  EXPECT_EQ(tight.has_squared_gradient_sum(), p.f.has_squared_gradient_sum());
  tight.hessian_vector(p.x, v, a);
  p.f.hessian_vector(p.x, v, b);
  EXPECT_EQ(a, b);
  tight.gauss_newton_vector(p.x, v, a);
  p.f.gauss_newton_vector(p.x, v, b);
  EXPECT_EQ(a, b);
  Vector<double> mean_gradient;
  tight.squared_gradient_sum(p.x, a, &mean_gradient);
  p.f.squared_gradient_sum(p.x, b, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_NEAR(mean_gradient.norm(), norm / 4, 1e-12 * norm);
  EXPECT_EQ(tight.network(), &p.network);
  EXPECT_EQ(tight.parameter_blocks().size(), p.f.parameter_blocks().size());
  EXPECT_EQ(tight.dimension(), p.f.dimension());
  EXPECT_EQ(tight.num_samples(), 64);

  // Work after the gradient sees the clipped gradient.
  Vector<double> seen;
  tight.value_and_gradient_then(p.x, seen, [](double, bool) {});
  EXPECT_EQ(seen, clipped_g);
  loose.value_and_gradient_then(p.x, seen, [](double, bool) {});
  EXPECT_EQ(seen, g);

  // A clip of a clip: the smaller wins.
  ClippedObjective<double> nested(tight, norm);
  nested.value_and_gradient(p.x, &a);
  EXPECT_EQ(a, clipped_g);
  nested.value_and_unclipped_gradient(p.x, &part);
  nested.clip_gradient(part);
  EXPECT_EQ(part, clipped_g);
}

}  // namespace
}  // namespace hesse::optim
