// Shampoo against a dense restatement of its update (statistics, inverse 4th
// roots by a separate eigendecomposition, exact or low-rank, blocking,
// grafting, momentum, decay), the grafting norm against the grafted optimizer's step, training
// small_mlp on blobs, checkpoints, option checks and NaN handling.
#include <gtest/gtest.h>
#include <omp.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../common/errors.hpp"
#include "../common/small_network.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/models/softmax_regression.hpp"
#include "hesse/optim/shampoo.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

template <class T>
struct Problem {
  explicit Problem(Index samples = 60)
      : data(testing::blobs<T>(samples)),
        net(testing::small_mlp<T>(), nn::LossKind::SoftmaxCrossEntropy, data),
        f(net) {}
  data::Dataset<T> data;
  nn::NetworkObjective<T> net;
  StochasticAdapter<nn::NetworkObjective<T>> f;
};

std::vector<Index> first_samples(Index n) {
  std::vector<Index> batch(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) batch[static_cast<std::size_t>(i)] = i;
  return batch;
}

// (S + ridge I)^{-1/4} with ridge = eps lambda_max (relative) or eps.
Matrix<double> inverse_fourth_root(const Matrix<double>& S, double eps, bool relative,
                                   double* ridge_out = nullptr) {
  Eigen::SelfAdjointEigenSolver<Matrix<double>> es(S);
  const Vector<double> lambda = es.eigenvalues().cwiseMax(0.0);
  const double ridge = relative ? eps * std::max(lambda.maxCoeff(), 1e-16) : eps;
  if (ridge_out) *ridge_out = ridge;
  Vector<double> d(lambda.size());
  for (Index i = 0; i < d.size(); ++i) d[i] = std::pow(lambda[i] + ridge, -0.25);
  return es.eigenvectors() * d.asDiagonal() * es.eigenvectors().transpose();
}

// The low-rank root of ShampooOptions::rank from a full eigendecomposition:
// rest I + Q diag((d + ridge)^{-1/4} - rest) Q^T with (Q, d) the top r
// eigenpairs, m the mean of the others from the trace, rest = (m + ridge)^{-1/4}
// and the ridge relative to the largest of d and m.
Matrix<double> low_rank_fourth_root(const Matrix<double>& S, double eps, bool relative, Index r) {
  const Index n = S.rows();
  Eigen::SelfAdjointEigenSolver<Matrix<double>> es(S);
  const Vector<double> top = es.eigenvalues().tail(r).cwiseMax(0.0);
  const Matrix<double> Q = es.eigenvectors().rightCols(r);
  const double mean = std::max(0.0, (S.trace() - top.sum()) / double(n - r));
  const double ridge = relative ? eps * std::max(std::max(top.maxCoeff(), mean), 1e-16) : eps;
  const double rest = std::pow(mean + ridge, -0.25);
  Vector<double> scale(r);
  for (Index i = 0; i < r; ++i) scale[i] = std::pow(top[i] + ridge, -0.25) - rest;
  return rest * Matrix<double>::Identity(n, n) + Q * scale.asDiagonal() * Q.transpose();
}

// The update written out densely, one block at a time, for comparison.
struct ReferenceShampoo {
  struct Block {
    Index offset, layer_rows, layer_cols, r0, rows, c0, cols;
    Matrix<double> L, R, L_root, R_root;
  };
  struct Layer {
    Index offset, rows, cols;
  };

  ReferenceShampoo(const ShampooOptions& o, const std::vector<ParameterBlock>& parameter_blocks,
                   Index n)
      : options(o), accumulator(Vector<double>::Zero(n)), momentum(Vector<double>::Zero(n)) {
    for (const ParameterBlock& p : parameter_blocks)
      layers.push_back({p.weight_offset, p.rows, p.cols + 1});
    for (const Layer& l : layers)
      for (Index r = 0; r < l.rows; r += o.block_size)
        for (Index c = 0; c < l.cols; c += o.block_size) {
          const Index rows = std::min(o.block_size, l.rows - r);
          const Index cols = std::min(o.block_size, l.cols - c);
          blocks.push_back({l.offset, l.rows, l.cols, r, rows, c, cols,
                            Matrix<double>::Zero(rows, rows), Matrix<double>::Zero(cols, cols),
                            Matrix<double>::Identity(rows, rows),
                            Matrix<double>::Identity(cols, cols)});
        }
  }

  Matrix<double> block_of(const Vector<double>& v, const Block& b) const {
    const Matrix<double> M =
        Eigen::Map<const Matrix<double>>(v.data() + b.offset, b.layer_rows, b.layer_cols);
    return M.block(b.r0, b.c0, b.rows, b.cols);
  }

  // The graft's direction a for gradient g at step t.
  Vector<double> graft(const Vector<double>& g) {
    if (options.graft == ShampooGraft::Adagrad) {
      accumulator += g.cwiseAbs2();
      return g.array() / (accumulator.array().sqrt() + options.graft_epsilon);
    }
    accumulator = options.beta2 * accumulator + (1 - options.beta2) * g.cwiseAbs2();
    const double correction = 1 - std::pow(options.beta2, double(t));
    return g.array() / ((accumulator.array() / correction).sqrt() + options.graft_epsilon);
  }

  // x after one step from x with gradient g.
  Vector<double> step(const Vector<double>& x, const Vector<double>& g) {
    ++t;
    const Vector<double> a = graft(g);
    const double w = options.beta2 < 1 ? 1 - options.beta2 : 1;
    if ((t - 1) % options.statistics_every == 0)
      for (Block& b : blocks) {
        const Matrix<double> G = block_of(g, b);
        b.L = options.beta2 * b.L + w * G * G.transpose();
        b.R = options.beta2 * b.R + w * G.transpose() * G;
      }
    const Index start = options.start_preconditioning_step;
    Vector<double> u = a;
    if (t >= start) {
      const auto root = [&](const Matrix<double>& S) {
        const Index r = options.rank;
        return r > 0 && S.rows() > r
                   ? low_rank_fourth_root(S, options.epsilon, options.relative_epsilon, r)
                   : inverse_fourth_root(S, options.epsilon, options.relative_epsilon);
      };
      if ((t - start) % options.inverse_every == 0)
        for (Block& b : blocks) {
          b.L_root = root(b.L);
          b.R_root = root(b.R);
        }
      for (const Block& b : blocks) {
        const Matrix<double> P = b.L_root * block_of(g, b) * b.R_root;
        Eigen::Map<Matrix<double>>(u.data() + b.offset, b.layer_rows, b.layer_cols)
            .block(b.r0, b.c0, b.rows, b.cols) = P;
      }
      for (const Layer& l : layers) {
        const Index size = l.rows * l.cols;
        u.segment(l.offset, size) *=
            a.segment(l.offset, size).norm() / u.segment(l.offset, size).norm();
      }
    }
    u += options.weight_decay * x;
    momentum = options.beta1 * momentum + (1 - options.beta1) * u;
    return x - options.learning_rate * momentum;
  }

  ShampooOptions options;
  std::vector<Layer> layers;
  std::vector<Block> blocks;
  Vector<double> accumulator, momentum;
  std::int64_t t = 0;
};

// Runs `steps` steps of Shampoo and of the reference from the same x on the
// same full batch; returns the largest relative deviation of a step.
double deviation_from_reference(const ShampooOptions& options, int steps) {
  Problem<double> p;
  const auto batch = first_samples(p.data.num_samples());
  Vector<double> x = p.net.network().initial_parameters(3);
  Vector<double> x_ref = x;
  Shampoo<double> opt(options);
  ReferenceShampoo ref(options, p.net.parameter_blocks(), x.size());
  double worst = 0;
  for (int k = 0; k < steps; ++k) {
    p.net.select_batch(batch);
    Vector<double> g;
    p.net.value_and_gradient(x, &g);
    const Vector<double> before = x;
    const Vector<double> expected = ref.step(x, g);
    const StepResult r = opt.step(p.f, x, batch);
    EXPECT_TRUE(r.accepted) << r.event;
    worst = std::max(worst, (x - expected).norm() / (expected - before).norm());
  }
  return worst;
}

TEST(Shampoo, StepEqualsDenseFormulaOnWholeLayers) {
  // Steps 1-2 graft only; roots at steps 3 and 5, stale at 4 and 6.
  ShampooOptions o{.learning_rate = 0.05,
                   .beta1 = 0.9,
                   .beta2 = 0.99,
                   .epsilon = 1e-4,
                   .inverse_every = 2,
                   .block_size = 1000,
                   .start_preconditioning_step = 3,
                   .weight_decay = 1e-3};
  EXPECT_LT(deviation_from_reference(o, 6), 1e-10);
  o.relative_epsilon = false;
  o.epsilon = 1e-6;
  EXPECT_LT(deviation_from_reference(o, 6), 1e-10);
  o.graft = ShampooGraft::Adagrad;
  o.beta2 = 1;  // Gupta et al.'s sums
  EXPECT_LT(deviation_from_reference(o, 6), 1e-10);
}

TEST(Shampoo, StepEqualsDenseFormulaWithBlocking) {
  // block_size 3: [W b] of layer 0 is [16, 5] -> 6 x 2 blocks, layer 1's
  // [3, 17] -> 1 x 6 blocks; each block has its own L and R.
  ShampooOptions o{.learning_rate = 0.05,
                   .beta1 = 0.5,
                   .epsilon = 1e-4,
                   .inverse_every = 1,
                   .block_size = 3,
                   .start_preconditioning_step = 1};
  EXPECT_LT(deviation_from_reference(o, 4), 1e-10);

  Problem<double> p;
  Shampoo<double> opt(o);
  Vector<double> x = p.net.network().initial_parameters(3);
  EXPECT_TRUE(opt.block_layout().empty());
  opt.step(p.f, x, first_samples(10));
  const auto layout = opt.block_layout();
  ASSERT_EQ(layout.size(), 18u);
  EXPECT_EQ(layout[0].layer_rows, 16);
  EXPECT_EQ(layout[0].layer_cols, 5);
  EXPECT_EQ(layout[1].col_begin, 3);
  EXPECT_EQ(layout[1].cols, 2);
  EXPECT_EQ(layout[11].row_begin, 15);
  EXPECT_EQ(layout[11].rows, 1);
  EXPECT_EQ(layout[12].offset, 80);
  EXPECT_EQ(layout[17].col_begin, 15);
  EXPECT_EQ(layout[17].cols, 2);
}

TEST(Shampoo, StepEqualsDenseFormulaWithStatisticsEvery) {
  // Statistics at steps 1, 4, 7; roots at 2, 4, 6, 8: refreshes with and
  // without a statistics update, stale statistics between.
  ShampooOptions o{.learning_rate = 0.05,
                   .beta1 = 0.5,
                   .beta2 = 0.9,
                   .epsilon = 1e-4,
                   .inverse_every = 2,
                   .statistics_every = 3,
                   .block_size = 3,
                   .start_preconditioning_step = 2};
  EXPECT_LT(deviation_from_reference(o, 8), 1e-10);
}

TEST(Shampoo, StepEqualsDenseFormulaWithLowRankRoots) {
  // block_size 6: sides of 3 to 6, each larger than rank 2 (the whole-layer
  // case: sides 3, 5, 16, 17). Subspace iteration run long enough to reach
  // the top eigenpairs of these small statistics.
  ShampooOptions o{.learning_rate = 0.05,
                   .beta1 = 0.5,
                   .epsilon = 1e-4,
                   .inverse_every = 1,
                   .block_size = 6,
                   .rank = 2,
                   .subspace_iterations = 400,
                   .start_preconditioning_step = 1};
  EXPECT_LT(deviation_from_reference(o, 5), 1e-8);
  o.block_size = 1000;
  o.inverse_every = 2;
  o.relative_epsilon = false;
  EXPECT_LT(deviation_from_reference(o, 5), 1e-8);
}

TEST(Shampoo, RankAtLeastEverySideIsExact) {
  // rank >= every side: no low-rank root, the same steps bit for bit.
  Problem<double> p;
  const ShampooOptions exact{.inverse_every = 2, .block_size = 6, .start_preconditioning_step = 2};
  ShampooOptions high = exact;
  high.rank = 6;
  Shampoo<double> a(exact), b(high);
  Vector<double> xa = p.net.network().initial_parameters(3), xb = xa;
  for (int k = 0; k < 6; ++k) {
    a.step(p.f, xa, first_samples(30));
    b.step(p.f, xb, first_samples(30));
  }
  EXPECT_EQ(0, std::memcmp(xa.data(), xb.data(), sizeof(double) * xa.size()));
}

TEST(Shampoo, LowRankRootsInTheState) {
  // The state holds each low-rank root as its basis (orthonormal columns)
  // and its r scales then the rest; a side of at most rank keeps a dense root.
  Problem<double> p;
  Shampoo<double> opt(
      {.inverse_every = 1, .block_size = 6, .rank = 4, .start_preconditioning_step = 1});
  Vector<double> x = p.net.network().initial_parameters(3);
  for (int k = 0; k < 3; ++k) opt.step(p.f, x, first_samples(40));
  StateDict s;
  opt.save_state(s);
  const auto layout = opt.block_layout();
  int low_rank_sides = 0;
  for (std::size_t k = 0; k < layout.size(); ++k)
    for (const auto& [side, n] : {std::pair{"left", layout[k].rows}, {"right", layout[k].cols}}) {
      const std::string index = std::to_string(k);
      const std::string basis_key = std::string("shampoo.") + side + "_basis." + index;
      const std::string root_key = std::string("shampoo.") + side + "_root." + index;
      if (n <= 4) {
        EXPECT_TRUE(s.has_array(root_key) && !s.has_array(basis_key)) << root_key;
        continue;
      }
      ++low_rank_sides;
      ASSERT_TRUE(s.has_array(basis_key) && !s.has_array(root_key)) << basis_key;
      Matrix<double> Q(n, 4);
      s.get(basis_key, Q);
      EXPECT_LT((Q.transpose() * Q - Matrix<double>::Identity(4, 4)).norm(), 1e-10) << basis_key;
      EXPECT_EQ(s.array(std::string("shampoo.") + side + "_scale." + index).size(), 5u);
    }
  // Blocks 6 x 5, 6 x 5, 4 x 5 and 3 x 6, 3 x 6, 3 x 5: sides of 5 and 6.
  EXPECT_EQ(low_rank_sides, 8);
}

TEST(Shampoo, StatisticsChangeOnlyEveryStatisticsEverySteps) {
  Problem<double> p;
  Shampoo<double> opt({.inverse_every = 100,
                       .statistics_every = 3,
                       .block_size = 8,
                       .start_preconditioning_step = 2});
  Vector<double> x = p.net.network().initial_parameters(3);
  data::BatchSampler sampler(p.data.num_samples(), 16, 5);
  sampler.start_epoch(0);
  std::vector<double> previous;
  for (Index k = 0; k < 7; ++k) {
    opt.step(p.f, x, sampler.batch(k % sampler.num_batches()));
    StateDict s;
    opt.save_state(s);
    const std::vector<double> left = s.array("shampoo.left.0");
    const bool updated = k % 3 == 0;  // steps 1, 4, 7
    EXPECT_EQ(left != previous, updated) << "step " << k + 1;
    previous = left;
  }
}

// The blocks are shared out over the OpenMP threads, each block's arithmetic
// on one thread: the trajectory and the state are the same bit for bit on
// one, two or three threads (the objective itself on one thread throughout).
template <class T>
void expect_same_on_any_thread_count(Index rank) {
  const auto data = testing::blobs<T>(96);
  nn::NetworkObjective<T> net(testing::small_mlp<T>(), nn::LossKind::SoftmaxCrossEntropy, data,
                              {.threads = 1});
  StochasticAdapter<nn::NetworkObjective<T>> f(net);
  const ShampooOptions o{.learning_rate = 0.02,
                         .inverse_every = 3,
                         .statistics_every = 2,
                         .block_size = 4,
                         .rank = rank,
                         .start_preconditioning_step = 2,
                         .weight_decay = 1e-3};
  const int saved = omp_get_max_threads();
  std::vector<Vector<T>> finals;
  std::vector<std::string> states;
  for (const int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    Shampoo<T> opt(o);
    Vector<T> x = net.network().initial_parameters(4);
    data::BatchSampler sampler(data.num_samples(), 16, 9);
    sampler.start_epoch(0);
    for (Index k = 0; k < 12; ++k) {
      const StepResult r = opt.step(f, x, sampler.batch(k % sampler.num_batches()));
      EXPECT_TRUE(r.accepted) << r.event;
    }
    finals.push_back(x);
    StateDict s;
    opt.save_state(s);
    states.push_back(s.serialize());
  }
  omp_set_num_threads(saved);
  for (std::size_t k = 1; k < finals.size(); ++k) {
    EXPECT_EQ(0, std::memcmp(finals[0].data(), finals[k].data(), sizeof(T) * finals[0].size()))
        << "threads " << k + 1;
    EXPECT_EQ(states[0], states[k]) << "threads " << k + 1;
  }
}

TEST(Shampoo, SameResultOnAnyThreadCount) {
  for (const Index rank : {0, 2}) {
    expect_same_on_any_thread_count<float>(rank);
    expect_same_on_any_thread_count<double>(rank);
  }
}

// R^4 (S + ridge I) = I for every stored root: checks the eigen-based roots
// without an eigendecomposition (S and the roots read back in double).
template <class T>
void expect_inverse_fourth_roots(bool roots_in_double, double tolerance) {
  Problem<T> p;
  const ShampooOptions o{.epsilon = 1e-3,
                         .roots_in_double = roots_in_double,
                         .inverse_every = 1,
                         .block_size = 4,
                         .start_preconditioning_step = 1};
  Shampoo<T> opt(o);
  Vector<T> x = p.net.network().initial_parameters(3);
  for (int k = 0; k < 3; ++k) opt.step(p.f, x, first_samples(40));
  StateDict s;
  opt.save_state(s);
  const auto blocks = static_cast<int>(s.scalar("shampoo.blocks"));
  ASSERT_GT(blocks, 0);
  for (int k = 0; k < blocks; ++k)
    for (const char* side : {"left", "right"}) {
      const std::string key = std::string("shampoo.") + side + "." + std::to_string(k);
      const auto n = static_cast<Index>(std::lround(std::sqrt(double(s.array(key).size()))));
      Matrix<double> S(n, n), root(n, n);
      s.get(key, S);
      s.get(std::string("shampoo.") + side + "_root." + std::to_string(k), root);
      double ridge = 0;
      inverse_fourth_root(S, o.epsilon, true, &ridge);
      const Matrix<double> fourth = root * root * root * root;
      const Matrix<double> shifted = S + ridge * Matrix<double>::Identity(n, n);
      EXPECT_LT((fourth * shifted - Matrix<double>::Identity(n, n)).norm(), tolerance) << key;
    }
}

TEST(Shampoo, RootsInTheStateAreInverseFourthRoots) {
  expect_inverse_fourth_roots<double>(true, 1e-8);
  // float statistics: their roots in double, or in float (ridge 1e-3 lambda_max
  // bounds the condition number by 1e3, float's rounding 6e-8 times that).
  expect_inverse_fourth_roots<float>(true, 1e-4);
  expect_inverse_fourth_roots<float>(false, 1e-3);
}

// Per layer, with beta1 = 0 and no decay, |x_before - x_after| / lr equals
// the grafting optimizer's step |a| on that layer, computed here from the
// gradients alone; before start_preconditioning_step the step is a itself.
TEST(Shampoo, GraftedStepHasTheGraftedOptimizersNorm) {
  for (const ShampooGraft graft : {ShampooGraft::Adam, ShampooGraft::Adagrad}) {
    Problem<double> p;
    const ShampooOptions o{.learning_rate = 0.01,
                           .beta1 = 0,
                           .inverse_every = 2,
                           .block_size = 8,
                           .graft = graft,
                           .start_preconditioning_step = 3};
    Shampoo<double> opt(o);
    Vector<double> x = p.net.network().initial_parameters(5);
    Vector<double> accumulator = Vector<double>::Zero(x.size());
    data::BatchSampler sampler(p.data.num_samples(), 16, 3);
    sampler.start_epoch(0);
    const auto blocks = p.net.parameter_blocks();
    for (Index k = 0; k < 3; ++k) {
      const auto batch = sampler.batch(k);
      p.net.select_batch(batch);
      Vector<double> g;
      p.net.value_and_gradient(x, &g);
      Vector<double> a;
      if (graft == ShampooGraft::Adagrad) {
        accumulator += g.cwiseAbs2();
        a = g.array() / (accumulator.array().sqrt() + o.graft_epsilon);
      } else {
        accumulator = o.beta2 * accumulator + (1 - o.beta2) * g.cwiseAbs2();
        const double c = 1 - std::pow(o.beta2, double(k + 1));
        a = g.array() / ((accumulator.array() / c).sqrt() + o.graft_epsilon);
      }
      const Vector<double> before = x;
      opt.step(p.f, x, batch);
      const Vector<double> taken = (before - x) / o.learning_rate;
      if (k + 1 < o.start_preconditioning_step) {
        EXPECT_LT((taken - a).norm(), 1e-12 * a.norm());
        continue;
      }
      for (const ParameterBlock& b : blocks) {
        const Index size = b.rows * (b.cols + 1);
        const double graft_norm = a.segment(b.weight_offset, size).norm();
        EXPECT_NEAR(taken.segment(b.weight_offset, size).norm(), graft_norm, 1e-12 * graft_norm);
        // Not the graft's direction: Shampoo's.
        EXPECT_GT((taken.segment(b.weight_offset, size) - a.segment(b.weight_offset, size)).norm(),
                  1e-3 * graft_norm);
      }
    }
  }
}

// Full-batch loss of small_mlp on 384 blobs after 15 epochs of batches of
// 32 (180 steps), from 0.87 at the initial point.
template <class T>
double train(Optimizer<T>& opt, int epochs = 15) {
  Problem<T> p(384);
  Vector<T> x = p.net.network().initial_parameters(1);
  data::BatchSampler sampler(p.data.num_samples(), 32, 11);
  for (int epoch = 0; epoch < epochs; ++epoch) {
    sampler.start_epoch(static_cast<std::uint64_t>(epoch));
    for (Index b = 0; b < sampler.num_batches(); ++b) {
      const StepResult r = opt.step(p.f, x, sampler.batch(b));
      EXPECT_TRUE(r.accepted) << r.event;
    }
  }
  p.net.select_all();
  return static_cast<double>(p.net.value(x));
}

template <class T>
class ShampooTyped : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ShampooTyped, Precisions);

TYPED_TEST(ShampooTyped, TrainsSmallMlpOnBlobs) {
  // Both grafts reach about 0.15 (float and double).
  Shampoo<TypeParam> adam_graft({.learning_rate = 0.02, .inverse_every = 10});
  EXPECT_LT(train(adam_graft), 0.2) << "adam graft";
  Shampoo<TypeParam> roots_in_t(
      {.learning_rate = 0.02, .roots_in_double = false, .inverse_every = 10});
  EXPECT_LT(train(roots_in_t), 0.2) << "roots in T";
  Shampoo<TypeParam> adagrad_graft(
      {.learning_rate = 0.15, .beta2 = 1, .inverse_every = 10, .graft = ShampooGraft::Adagrad});
  EXPECT_LT(train(adagrad_graft), 0.2) << "adagrad graft";
  // Rank 2: every side (3, 5, 16 and 17) by its top two eigenpairs.
  Shampoo<TypeParam> low_rank({.learning_rate = 0.02, .inverse_every = 10, .rank = 2});
  EXPECT_LT(train(low_rank), 0.2) << "rank 2";
  Shampoo<TypeParam> low_rank_in_t(
      {.learning_rate = 0.02, .roots_in_double = false, .inverse_every = 10, .rank = 2});
  EXPECT_LT(train(low_rank_in_t), 0.2) << "rank 2, roots in T";
}

template <class T>
void expect_checkpoint_continues(Index rank) {
  // Roots at steps 3, 10, 17, 24: the checkpoint at step 12 falls between.
  const ShampooOptions o{.learning_rate = 0.02,
                         .inverse_every = 7,
                         .block_size = 6,
                         .rank = rank,
                         .start_preconditioning_step = 3,
                         .weight_decay = 1e-3};
  Problem<T> p(384);
  data::BatchSampler sampler(p.data.num_samples(), 32, 4);
  sampler.start_epoch(0);
  const Vector<T> x0 = p.net.network().initial_parameters(2);

  Shampoo<T> straight(o);
  Vector<T> x_straight = x0;
  for (Index b = 0; b < 12; ++b) straight.step(p.f, x_straight, sampler.batch(b));

  Shampoo<T> first(o);
  Vector<T> x = x0;
  for (Index b = 0; b < 6; ++b) first.step(p.f, x, sampler.batch(b));
  StateDict saved;
  first.save_state(saved);
  const StateDict loaded = StateDict::deserialize(saved.serialize(), "memory");

  // A fresh optimizer (layout unknown until its first step) ...
  Shampoo<T> resumed(o);
  resumed.load_state(loaded);
  EXPECT_EQ(resumed.step_count(), 6);
  Vector<T> x_resumed = x;
  // ... and one that has already stepped elsewhere.
  Shampoo<T> reused(o);
  Vector<T> scratch = x0;
  reused.step(p.f, scratch, sampler.batch(7));
  reused.load_state(loaded);
  Vector<T> x_reused = x;
  for (Index b = 6; b < 12; ++b) {
    resumed.step(p.f, x_resumed, sampler.batch(b));
    reused.step(p.f, x_reused, sampler.batch(b));
  }
  EXPECT_EQ(0, std::memcmp(x_straight.data(), x_resumed.data(), sizeof(T) * x0.size()));
  EXPECT_EQ(0, std::memcmp(x_straight.data(), x_reused.data(), sizeof(T) * x0.size()));
  StateDict a, b;
  straight.save_state(a);
  resumed.save_state(b);
  EXPECT_EQ(a.serialize(), b.serialize());

  resumed.reset();
  EXPECT_EQ(resumed.step_count(), 0);
  EXPECT_TRUE(resumed.block_layout().empty());
}

TYPED_TEST(ShampooTyped, CheckpointContinuesBitForBit) {
  expect_checkpoint_continues<TypeParam>(0);
  expect_checkpoint_continues<TypeParam>(3);  // low-rank roots, warm-started after the restore
}

TEST(Shampoo, StateOfAnotherShapeIsRefused) {
  Problem<double> p;
  Vector<double> x = p.net.network().initial_parameters(2);
  Shampoo<double> small_blocks({.block_size = 4});
  small_blocks.step(p.f, x, first_samples(10));
  StateDict s;
  small_blocks.save_state(s);
  Shampoo<double> large_blocks({.block_size = 64});
  large_blocks.load_state(s);  // layout not known yet: checked at the first step
  EXPECT_THROW(large_blocks.step(p.f, x, first_samples(10)), InvalidArgument);
  Shampoo<double> stepped({.block_size = 64});
  stepped.step(p.f, x, first_samples(10));
  EXPECT_THROW(stepped.load_state(s), InvalidArgument);

  // Roots of another rank: a low-rank root where this optimizer's is dense,
  // and the other way round.
  Shampoo<double> low_rank({.block_size = 4, .rank = 2});
  low_rank.step(p.f, x, first_samples(10));
  StateDict l;
  low_rank.save_state(l);
  EXPECT_NE(testing::invalid_argument_message([&] {
              Shampoo<double>({.block_size = 4}).load_state(l);
            }).find("root is low-rank, this optimizer's rank is 0"),
            std::string::npos);
  EXPECT_NE(testing::invalid_argument_message([&] {
              Shampoo<double>({.block_size = 4, .rank = 2}).load_state(s);
            }).find("root is exact, this optimizer's rank is 2"),
            std::string::npos);
}

TEST(Shampoo, NonFiniteGradientRejectsTheStep) {
  Problem<double> p;
  Shampoo<double> opt({.inverse_every = 1, .start_preconditioning_step = 1});
  Vector<double> x = p.net.network().initial_parameters(2);
  opt.step(p.f, x, first_samples(10));
  StateDict before;
  opt.save_state(before);
  x[3] = std::numeric_limits<double>::quiet_NaN();
  const Vector<double> x_before = x;
  const StepResult r = opt.step(p.f, x, first_samples(10));
  EXPECT_FALSE(r.accepted);
  EXPECT_NE(r.event.find("non-finite"), std::string::npos) << r.event;
  EXPECT_EQ(0, std::memcmp(x.data(), x_before.data(), sizeof(double) * x.size()));
  EXPECT_EQ(opt.step_count(), 1);
  StateDict after;
  opt.save_state(after);
  EXPECT_EQ(before.serialize(), after.serialize());
}

TEST(Shampoo, FailedInverseRootKeepsThePreviousRoot) {
  // A statistic poisoned through the state: its root cannot be computed at
  // the next refresh, the old root stays, the step is taken and says so.
  Problem<double> p;
  Shampoo<double> opt({.inverse_every = 2, .start_preconditioning_step = 1});
  Vector<double> x = p.net.network().initial_parameters(2);
  opt.step(p.f, x, first_samples(10));  // roots at step 1
  StateDict s;
  opt.save_state(s);
  s.arrays["shampoo.left.0"][0] = std::numeric_limits<double>::quiet_NaN();
  opt.load_state(s);
  const StepResult second = opt.step(p.f, x, first_samples(10));
  EXPECT_TRUE(second.event.empty()) << second.event;
  const StepResult third = opt.step(p.f, x, first_samples(10));  // refresh
  EXPECT_TRUE(third.accepted);
  EXPECT_NE(third.event.find("1 inverse root(s) failed"), std::string::npos) << third.event;
  EXPECT_TRUE(x.allFinite());
  StateDict after;
  opt.save_state(after);
  EXPECT_EQ(after.array("shampoo.left_root.0"), s.array("shampoo.left_root.0"));
}

TEST(Shampoo, FailedLowRankRootKeepsThePreviousRoot) {
  // The same with rank 2: the subspace iteration meets the NaN, the old
  // basis, scales and rest stay.
  Problem<double> p;
  Shampoo<double> opt({.inverse_every = 2, .rank = 2, .start_preconditioning_step = 1});
  Vector<double> x = p.net.network().initial_parameters(2);
  opt.step(p.f, x, first_samples(10));  // roots at step 1
  StateDict s;
  opt.save_state(s);
  ASSERT_TRUE(s.has_array("shampoo.left_basis.0"));
  s.arrays["shampoo.left.0"][0] = std::numeric_limits<double>::quiet_NaN();
  opt.load_state(s);
  opt.step(p.f, x, first_samples(10));
  const StepResult third = opt.step(p.f, x, first_samples(10));  // refresh
  EXPECT_TRUE(third.accepted);
  EXPECT_NE(third.event.find("1 inverse root(s) failed"), std::string::npos) << third.event;
  EXPECT_TRUE(x.allFinite());
  StateDict after;
  opt.save_state(after);
  EXPECT_EQ(after.array("shampoo.left_basis.0"), s.array("shampoo.left_basis.0"));
  EXPECT_EQ(after.array("shampoo.left_scale.0"), s.array("shampoo.left_scale.0"));
}

TEST(Shampoo, ObjectiveWithoutParameterBlocksIsOneColumn) {
  // Softmax regression has no layers: x is one [n, 1] matrix, its rows split
  // into blocks; training still works.
  const auto data = testing::blobs<double>(120);
  models::SoftmaxRegression<double> model(data);
  StochasticAdapter<models::SoftmaxRegression<double>> f(model);
  Shampoo<double> opt({.learning_rate = 0.05, .inverse_every = 5, .block_size = 6});
  Vector<double> x = Vector<double>::Zero(f.dimension());  // 3 x 4 + 3 = 15
  const auto all = first_samples(120);
  f.select_batch(all);
  const double initial = f.value_and_gradient(x, nullptr);
  for (int k = 0; k < 100; ++k) opt.step(f, x, all);
  const auto layout = opt.block_layout();
  ASSERT_EQ(layout.size(), 3u);
  EXPECT_EQ(layout[0].layer_rows, 15);
  EXPECT_EQ(layout[0].layer_cols, 1);
  EXPECT_EQ(layout[2].rows, 3);
  f.select_batch(all);
  EXPECT_LT(f.value_and_gradient(x, nullptr), 0.5 * initial);
}

TEST(Shampoo, InvalidOptionsNameTheField) {
  const auto expect_field = [](ShampooOptions o, const std::string& field) {
    try {
      o.validate();
      ADD_FAILURE() << "accepted bad " << field;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("shampoo." + field + " = "), std::string::npos)
          << e.what();
    }
  };
  expect_field({.learning_rate = -1}, "learning_rate");
  expect_field({.beta1 = 1}, "beta1");
  expect_field({.beta2 = 0}, "beta2");
  expect_field({.beta2 = 1}, "beta2");  // with Adam grafting
  expect_field({.epsilon = 0}, "epsilon");
  expect_field({.inverse_every = 0}, "inverse_every");
  expect_field({.statistics_every = 0}, "statistics_every");
  expect_field({.block_size = 0}, "block_size");
  expect_field({.rank = -1}, "rank");
  expect_field({.subspace_iterations = 0}, "subspace_iterations");
  expect_field({.graft = static_cast<ShampooGraft>(2)}, "graft");
  expect_field({.graft_epsilon = -1}, "graft_epsilon");
  expect_field({.start_preconditioning_step = 0}, "start_preconditioning_step");
  expect_field({.weight_decay = std::numeric_limits<double>::infinity()}, "weight_decay");
  EXPECT_THROW(Shampoo<float>({.block_size = -3}), InvalidArgument);
  EXPECT_THROW(ShampooOptions::from_settings({{"graft", 2}}), InvalidArgument);
  EXPECT_THROW(ShampooOptions::from_settings({{"inverse_every", 2.5}}), InvalidArgument);
  EXPECT_THROW(ShampooOptions::from_settings({{"momentum", 0.9}}), InvalidArgument);
  Shampoo<float> opt;
  EXPECT_THROW(opt.set_learning_rate(-0.1), InvalidArgument);
  EXPECT_EQ(opt.learning_rate(), 1e-3);
}

TEST(Shampoo, SettingsAndFactory) {
  const ShampooOptions o = ShampooOptions::from_settings({{"lr", 0.1},
                                                          {"beta1", 0.5},
                                                          {"beta2", 1},
                                                          {"eps", 1e-8},
                                                          {"relative_eps", 0},
                                                          {"roots_in_double", 0},
                                                          {"inverse_every", 20},
                                                          {"statistics_every", 4},
                                                          {"block_size", 64},
                                                          {"rank", 16},
                                                          {"subspace_iterations", 3},
                                                          {"graft", 0},
                                                          {"graft_eps", 1e-9},
                                                          {"start_preconditioning_step", 2},
                                                          {"weight_decay", 1e-4}});
  EXPECT_EQ(o.learning_rate, 0.1);
  EXPECT_EQ(o.beta1, 0.5);
  EXPECT_EQ(o.beta2, 1);
  EXPECT_EQ(o.epsilon, 1e-8);
  EXPECT_FALSE(o.relative_epsilon);
  EXPECT_FALSE(o.roots_in_double);
  EXPECT_EQ(o.inverse_every, 20);
  EXPECT_EQ(o.statistics_every, 4);
  EXPECT_EQ(o.block_size, 64);
  EXPECT_EQ(o.rank, 16);
  EXPECT_EQ(o.subspace_iterations, 3);
  EXPECT_EQ(o.graft, ShampooGraft::Adagrad);
  EXPECT_EQ(o.graft_epsilon, 1e-9);
  EXPECT_EQ(o.start_preconditioning_step, 2);
  EXPECT_EQ(o.weight_decay, 1e-4);

  for (const auto& [name, description] : preconditioned_catalogue()) {
    auto opt = make_preconditioned<float>(name, {{"lr", 0.25}});
    ASSERT_NE(opt, nullptr) << name;
    EXPECT_EQ(opt->name(), name);
    EXPECT_EQ(opt->learning_rate(), 0.25);
    EXPECT_FALSE(description.empty());
  }
  EXPECT_EQ(make_preconditioned<double>("adam", {}), nullptr);
  EXPECT_THROW(make_preconditioned<double>("shampoo", {{"rho", 1}}), InvalidArgument);
}

}  // namespace
}  // namespace hesse::optim
