#include "hesse/optim/shampoo.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>
#include <type_traits>

#include "hesse/core/error.hpp"
#include "hesse/linalg/dense.hpp"
#include "hesse/optim/adahessian.hpp"
#include "hesse/optim/sophia.hpp"
#include "threads.hpp"

namespace hesse::optim {

namespace {

[[noreturn]] void fail(const char* field, double value, const char* rule) {
  std::ostringstream message;
  message << "shampoo." << field << " = " << value << ": " << rule;
  throw InvalidArgument(message.str());
}

// Keeps the preconditioner finite when a statistic is zero (a layer whose
// gradient has always been zero); distributed_shampoo's floor on lambda_max.
constexpr double kSmallestLargestEigenvalue = 1e-16;
// Guards the grafting ratio |a| / |P| against P = 0 (then a = 0 too).
constexpr double kNormFloor = 1e-16;
// Seeds the first basis of a low-rank root (plus the statistic's index).
constexpr std::uint64_t kFirstBasisSeed = 0x5eed5a3b00;

using detail::Items;
using detail::parallel_for;
using detail::parallel_phases;
using detail::run_phases;
using detail::SingleThreadedProducts;

// |v|^2 as a double sum of T-precision sums over chunks of 512 entries:
// Eigen vectorises those, while v.cast<double>().squaredNorm() runs one
// scalar addition chain (0.1 ms for 10^5 entries, a tenth of a step).
template <class T>
double chunked_squared_norm(const Vector<T>& v) {
  constexpr Index kChunk = 512;
  double sum = 0;
  for (Index begin = 0; begin < v.size(); begin += kChunk)
    sum += static_cast<double>(v.segment(begin, std::min(kChunk, v.size() - begin)).squaredNorm());
  return sum;
}

}  // namespace

void ShampooOptions::validate() const {
  if (!(learning_rate >= 0 && std::isfinite(learning_rate)))
    fail("learning_rate", learning_rate, "must be finite and >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) fail("beta1", beta1, "must be in [0, 1)");
  if (!(beta2 > 0 && beta2 <= 1)) fail("beta2", beta2, "must be in (0, 1] (1: sums)");
  if (!(epsilon > 0 && std::isfinite(epsilon))) fail("epsilon", epsilon, "must be finite and > 0");
  if (inverse_every < 1) fail("inverse_every", double(inverse_every), "must be >= 1");
  if (statistics_every < 1) fail("statistics_every", double(statistics_every), "must be >= 1");
  if (block_size < 1) fail("block_size", double(block_size), "must be >= 1");
  if (rank < 0) fail("rank", double(rank), "must be >= 0 (0: exact inverse roots)");
  if (subspace_iterations < 1)
    fail("subspace_iterations", double(subspace_iterations), "must be >= 1");
  if (graft != ShampooGraft::Adagrad && graft != ShampooGraft::Adam)
    fail("graft", double(static_cast<int>(graft)), "must be 0 (adagrad) or 1 (adam)");
  if (graft == ShampooGraft::Adam && beta2 == 1)
    fail("beta2", beta2,
         "Adam grafting (graft = 1) needs beta2 < 1, its second moment is a moving average; "
         "use graft = 0 (adagrad) for sums");
  if (!(graft_epsilon > 0 && std::isfinite(graft_epsilon)))
    fail("graft_epsilon", graft_epsilon, "must be finite and > 0");
  if (start_preconditioning_step < 1)
    fail("start_preconditioning_step", double(start_preconditioning_step), "must be >= 1");
  if (!(weight_decay >= 0 && std::isfinite(weight_decay)))
    fail("weight_decay", weight_decay, "must be finite and >= 0");
}

ShampooOptions ShampooOptions::from_settings(const OptimizerSettings& settings) {
  ShampooOptions o;
  SettingsReader r("shampoo", settings);
  r.read("lr", o.learning_rate);
  r.read("beta1", o.beta1);
  r.read("beta2", o.beta2);
  r.read("eps", o.epsilon);
  r.read("relative_eps", o.relative_epsilon);
  r.read("roots_in_double", o.roots_in_double);
  r.read("inverse_every", o.inverse_every);
  r.read("statistics_every", o.statistics_every);
  r.read("block_size", o.block_size);
  r.read("rank", o.rank);
  r.read("subspace_iterations", o.subspace_iterations);
  int graft = static_cast<int>(o.graft);
  r.read("graft", graft);
  o.graft = static_cast<ShampooGraft>(graft);
  r.read("graft_eps", o.graft_epsilon);
  r.read("start_preconditioning_step", o.start_preconditioning_step);
  r.read("weight_decay", o.weight_decay);
  r.finish();
  o.validate();
  return o;
}

template <class T>
Shampoo<T>::Shampoo(ShampooOptions options) : options_(options) {
  options_.validate();
}

template <class T>
void Shampoo<T>::set_learning_rate(double lr) {
  ShampooOptions changed = options_;
  changed.learning_rate = lr;
  changed.validate();
  options_ = changed;
}

template <class T>
std::vector<typename Shampoo<T>::BlockLayout> Shampoo<T>::block_layout() const {
  std::vector<BlockLayout> out;
  if (!layout_ready_) return out;
  for (const Block& b : blocks_) {
    const Layer& l = layers_[static_cast<std::size_t>(b.layer)];
    out.push_back({b.layer, l.offset, l.rows, l.cols, b.row_begin, b.rows, b.col_begin, b.cols});
  }
  return out;
}

// Layers from the objective's parameter blocks, then their blocks. When
// load_state came first, blocks_ already holds the statistics and only
// their places are filled in (after checking the shapes agree).
template <class T>
void Shampoo<T>::prepare(const StochasticObjective<T>& f, Index dimension) {
  layers_.clear();
  const std::vector<ParameterBlock> parameter_blocks = f.parameter_blocks();
  if (parameter_blocks.empty()) layers_.push_back({0, dimension, 1});
  for (const ParameterBlock& p : parameter_blocks) {
    if (p.bias_offset == p.weight_offset + p.rows * p.cols) {
      layers_.push_back({p.weight_offset, p.rows, p.cols + 1});
    } else {
      layers_.push_back({p.weight_offset, p.rows, p.cols});
      if (p.bias_offset >= 0) layers_.push_back({p.bias_offset, p.rows, 1});
    }
  }
  std::vector<std::pair<Index, Index>> ranges;
  for (const Layer& l : layers_) {
    if (l.rows < 1 || l.cols < 1 || l.offset < 0 || l.offset + l.rows * l.cols > dimension)
      throw InvalidArgument("shampoo: a parameter block [" + std::to_string(l.rows) + ", " +
                            std::to_string(l.cols) + "] at offset " + std::to_string(l.offset) +
                            " does not fit in the " + std::to_string(dimension) + " parameters");
    ranges.emplace_back(l.offset, l.offset + l.rows * l.cols);
  }
  std::sort(ranges.begin(), ranges.end());
  uncovered_.clear();
  Index covered = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin < covered)
      throw InvalidArgument("shampoo: parameter blocks overlap at offset " + std::to_string(begin));
    if (begin > covered) uncovered_.emplace_back(covered, begin);
    covered = end;
  }
  if (covered < dimension) uncovered_.emplace_back(covered, dimension);

  std::vector<Block> fresh;
  const Index size = options_.block_size;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    for (Index r = 0; r < layer.rows; r += size)
      for (Index c = 0; c < layer.cols; c += size) {
        Block b;
        b.layer = static_cast<Index>(l);
        b.row_begin = r;
        b.rows = std::min(size, layer.rows - r);
        b.col_begin = c;
        b.cols = std::min(size, layer.cols - c);
        fresh.push_back(std::move(b));
      }
  }
  if (!blocks_.empty()) {
    bool same = blocks_.size() == fresh.size();
    for (std::size_t k = 0; same && k < fresh.size(); ++k)
      same = blocks_[k].left.rows() == fresh[k].rows && blocks_[k].right.rows() == fresh[k].cols;
    if (!same)
      throw InvalidArgument("shampoo: the loaded state's " + std::to_string(blocks_.size()) +
                            " blocks do not match this objective's " +
                            std::to_string(fresh.size()) + " blocks of block_size " +
                            std::to_string(size));
    for (std::size_t k = 0; k < fresh.size(); ++k) {
      fresh[k].left.swap(blocks_[k].left);
      fresh[k].right.swap(blocks_[k].right);
      fresh[k].left_root.swap(blocks_[k].left_root);
      fresh[k].right_root.swap(blocks_[k].right_root);
      std::swap(fresh[k].left_low, blocks_[k].left_low);
      std::swap(fresh[k].right_low, blocks_[k].right_low);
    }
  } else {
    // Identity roots until the first refresh (and after a failed one).
    const auto identity = [&](Index n, Matrix<T>& root, LowRankRoot& low) {
      if (low_rank(n)) {
        low.basis.setZero(n, options_.rank);
        low.scale.setZero(options_.rank);
        low.rest = T(1);
      } else {
        root.setIdentity(n, n);
      }
    };
    for (Block& b : fresh) {
      b.left.setZero(b.rows, b.rows);
      b.right.setZero(b.cols, b.cols);
      identity(b.rows, b.left_root, b.left_low);
      identity(b.cols, b.right_root, b.right_low);
    }
  }
  for (Block& b : fresh) {
    b.product.resize(b.rows, b.cols);
    if (low_rank(b.rows)) b.narrow_left.resize(options_.rank, b.cols);
    if (low_rank(b.cols)) b.narrow_right.resize(b.rows, options_.rank);
  }
  blocks_.swap(fresh);
  // Largest work first, so the dynamic schedule ends with the small blocks.
  schedule_.resize(blocks_.size());
  for (std::size_t k = 0; k < blocks_.size(); ++k) schedule_[k] = static_cast<Index>(k);
  const auto work = [&](Index k) {
    const Block& b = blocks_[static_cast<std::size_t>(k)];
    return b.rows * b.cols * (b.rows + b.cols);
  };
  std::stable_sort(schedule_.begin(), schedule_.end(),
                   [&](Index a, Index b) { return work(a) > work(b); });
  root_failed_.assign(2 * blocks_.size(), 0);
  if (momentum_.size() == 0) {
    momentum_.setZero(dimension);
    graft_accumulator_.setZero(dimension);
  }
  graft_direction_.resize(dimension);
  direction_.resize(dimension);
  dimension_ = dimension;
  layout_ready_ = true;
}

// (S + e I)^{-1/4} = V diag((max(lambda, 0) + e)^{-1/4}) V^T from the
// eigendecomposition S = V diag(lambda) V^T in precision P (the scalars in
// double), or for a side larger than options_.rank its low-rank form from
// the top eigenpairs; `root` or `low` is written only on success.
template <class T>
template <class P>
bool Shampoo<T>::inverse_root_in(const Matrix<T>& statistic, Matrix<T>& root, LowRankRoot& low,
                                 std::uint64_t seed, RootScratch<P>& ws) const {
  const auto ridge_for = [&](double largest) {
    return options_.relative_epsilon
               ? options_.epsilon * std::max(largest, kSmallestLargestEigenvalue)
               : options_.epsilon;
  };
  const Index n = statistic.rows();
  ws.statistic = statistic.template cast<P>();
  if (low_rank(n)) {
    const Index r = options_.rank;
    ws.basis = low.basis.template cast<P>();
    double rest_mean = 0;
    if (!linalg::top_eigenpairs<P>(ws.statistic, ws.basis, low.have_basis,
                                   options_.subspace_iterations, seed, ws.values, rest_mean))
      return false;
    const double ridge = ridge_for(std::max(ws.values.maxCoeff(), rest_mean));
    const double rest = std::pow(rest_mean + ridge, -0.25);
    if (!std::isfinite(rest)) return false;
    low.basis = ws.basis.template cast<T>();
    for (Index j = 0; j < r; ++j)
      low.scale[j] = static_cast<T>(std::pow(ws.values[j] + ridge, -0.25) - rest);
    low.rest = static_cast<T>(rest);
    low.have_basis = true;
    return true;
  }
  ws.solver.compute(ws.statistic, Eigen::ComputeEigenvectors);
  if (ws.solver.info() != Eigen::Success || !ws.solver.eigenvalues().allFinite()) return false;
  const Vector<P>& lambda = ws.solver.eigenvalues();
  const double ridge = ridge_for(std::max(static_cast<double>(lambda.maxCoeff()), 0.0));
  ws.scaled = ws.solver.eigenvectors();
  for (Index j = 0; j < n; ++j)
    ws.scaled.col(j) *=
        static_cast<P>(std::pow(std::max(static_cast<double>(lambda[j]), 0.0) + ridge, -0.25));
  ws.root.noalias() = ws.scaled * ws.solver.eigenvectors().transpose();
  if (!ws.root.allFinite()) return false;
  root = ws.root.template cast<T>();
  return true;
}

// In double, or in T with a retry in double when T fails.
template <class T>
bool Shampoo<T>::inverse_root(const Matrix<T>& statistic, Matrix<T>& root, LowRankRoot& low,
                              std::uint64_t seed, RootWorkspace& ws) const {
  if constexpr (!std::is_same_v<T, double>)
    if (!options_.roots_in_double && inverse_root_in(statistic, root, low, seed, ws.in_t))
      return true;
  return inverse_root_in(statistic, root, low, seed, ws.in_double);
}

template <class T>
StepResult Shampoo<T>::step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) {
  if (dimension_ >= 0 && x.size() != dimension_)
    throw InvalidArgument("shampoo: the optimizer's state holds " + std::to_string(dimension_) +
                          " parameters, x has " + std::to_string(x.size()));
  StepResult result;
  f.select_batch(batch);
  const std::int64_t t = this->steps_ + 1;
  const Index start = options_.start_preconditioning_step;
  const bool preconditioned = t >= start;
  const bool refresh = preconditioned && (t - start) % options_.inverse_every == 0;
  // distributed_shampoo's statistics_compute_steps: its 0-based step % k == 0.
  const bool update = (t - 1) % options_.statistics_every == 0;
  // A preconditioned step without a refresh runs on the gradient pass's own
  // threads (value_and_gradient_then, as K-FAC's plain steps do): the same
  // work, bit for bit, after the same check of the gradient.
  const bool fused = layout_ready_ && preconditioned && !refresh;
  const int threads = omp_get_max_threads();
  // Finite only when every entry is; below T's largest value it also bounds
  // every entry of G G^T.
  const auto acceptable = [](T loss, double squared_norm) {
    return std::isfinite(static_cast<double>(loss)) &&
           squared_norm <= static_cast<double>(std::numeric_limits<T>::max());
  };
  const auto evaluated = [&](T loss, double squared_norm) {
    result.loss = static_cast<double>(loss);
    result.gradient_norm = std::sqrt(squared_norm);
    result.gradient_evaluations = 1;
    if (acceptable(loss, squared_norm)) return true;
    result.accepted = false;
    result.event = "non-finite loss or gradient: step rejected, x and state unchanged";
    return false;
  };
  if (!fused) {
    const T loss = f.value_and_gradient(x, &gradient_);
    if (!evaluated(loss, chunked_squared_norm(gradient_))) return result;
    if (!layout_ready_) prepare(f, x.size());
  }

  const T beta2 = T(options_.beta2);
  const T epsilon_graft = T(options_.graft_epsilon);
  const T correction = T(1 - std::pow(options_.beta2, static_cast<double>(t)));
  // The grafting optimizer on one piece of the flat vector (arrays over a
  // block's column, a block of a layer, or a segment): its accumulator's
  // update and its direction a = g / (sqrt(v / divisor) + eps) (the
  // divisor 1 for AdaGrad is exact).
  const T divisor = options_.graft == ShampooGraft::Adagrad ? T(1) : correction;
  const auto accumulate = [&](const auto& g, auto v) {
    if (options_.graft == ShampooGraft::Adagrad)
      v += g.square();
    else
      v = beta2 * v + (T(1) - beta2) * g.square();
  };
  const auto direction = [&](const auto& g, const auto& v) {
    return g / ((v / divisor).sqrt() + epsilon_graft);
  };
  // Writes a; returns |a|^2.
  const auto graft = [&](auto g, auto accumulator, auto a) -> double {
    accumulate(g, accumulator);
    a = direction(g, accumulator);
    return static_cast<double>(a.matrix().squaredNorm());
  };
  // On a block: its direction a kept in graft_direction_ (the step is the
  // graft's), or only |a|^2 (Shampoo's step): then column by column, each
  // column's accumulator in cache, a not written.
  const auto graft_block = [&](Block& b, bool keep_direction) {
    const Layer& l = layers_[static_cast<std::size_t>(b.layer)];
    const auto piece = [&](Vector<T>& v) {
      return MatrixMap<T>(v.data() + l.offset, l.rows, l.cols)
          .block(b.row_begin, b.col_begin, b.rows, b.cols);
    };
    if (keep_direction) {
      b.graft_squared_norm = graft(piece(gradient_).array(), piece(graft_accumulator_).array(),
                                   piece(graft_direction_).array());
      return;
    }
    const auto G = piece(gradient_);
    auto accumulator = piece(graft_accumulator_);
    double sum = 0;
    for (Index j = 0; j < b.cols; ++j) {
      const auto g = G.col(j).array();
      const auto v = accumulator.col(j).array();
      accumulate(g, accumulator.col(j).array());
      sum += static_cast<double>(direction(g, v).matrix().squaredNorm());
    }
    b.graft_squared_norm = sum;
  };
  const auto graft_uncovered = [&] {
    for (const auto& [begin, end] : uncovered_)
      graft(gradient_.segment(begin, end - begin).array(),
            graft_accumulator_.segment(begin, end - begin).array(),
            graft_direction_.segment(begin, end - begin).array());
  };
  if (!fused) graft_uncovered();

  const Index num_blocks = static_cast<Index>(blocks_.size());
  const T weight = options_.beta2 < 1 ? T(1) - beta2 : T(1);
  // Gupta et al. Alg. 1 lines 4-5 (as moving averages: Anil et al. sec. 3).
  const auto update_statistics = [&](Block& b) {
    const Layer& l = layers_[static_cast<std::size_t>(b.layer)];
    const auto G = ConstMatrixMap<T>(gradient_.data() + l.offset, l.rows, l.cols)
                       .block(b.row_begin, b.col_begin, b.rows, b.cols);
    if (options_.beta2 < 1) {
      b.left.template triangularView<Eigen::Lower>() *= beta2;
      b.right.template triangularView<Eigen::Lower>() *= beta2;
    }
    b.left.template selfadjointView<Eigen::Lower>().rankUpdate(G, weight);
    b.right.template selfadjointView<Eigen::Lower>().rankUpdate(G.transpose(), weight);
  };
  // Gupta et al. Alg. 1 line 6, into the block's place in direction_.
  const auto precondition = [&](Block& b) {
    const Layer& l = layers_[static_cast<std::size_t>(b.layer)];
    const auto G = ConstMatrixMap<T>(gradient_.data() + l.offset, l.rows, l.cols)
                       .block(b.row_begin, b.col_begin, b.rows, b.cols);
    if (low_rank(b.rows)) {  // rest G + Q (scale .* (Q^T G))
      const LowRankRoot& low = b.left_low;
      b.narrow_left.noalias() = low.basis.transpose() * G;
      b.narrow_left.array().colwise() *= low.scale.array();
      b.product.noalias() = low.rest * G;
      b.product.noalias() += low.basis * b.narrow_left;
    } else {
      b.product.noalias() = b.left_root * G;
    }
    auto P = MatrixMap<T>(direction_.data() + l.offset, l.rows, l.cols)
                 .block(b.row_begin, b.col_begin, b.rows, b.cols);
    if (low_rank(b.cols)) {  // rest X + ((X Q) .* scale^T) Q^T
      const LowRankRoot& low = b.right_low;
      b.narrow_right.noalias() = b.product * low.basis;
      b.narrow_right.array().rowwise() *= low.scale.transpose().array();
      P.noalias() = low.rest * b.product;
      P.noalias() += b.narrow_right * low.basis.transpose();
    } else {
      P.noalias() = b.product * b.right_root;
    }
    b.shampoo_squared_norm = static_cast<double>(P.squaredNorm());
  };

  // Every block on one thread with Eigen single-threaded inside it: each
  // block's arithmetic is then the same for any thread count (the steps on
  // x are element-wise). Not over the fused step's gradient: a batch too
  // small to split runs its products on Eigen's threads.
  std::optional<SingleThreadedProducts> guard;
  if (!fused) guard.emplace();
  const auto block_at = [&](Index j) -> Block& {
    return blocks_[static_cast<std::size_t>(schedule_[static_cast<std::size_t>(j)])];
  };
  if (refresh) {
    parallel_for(num_blocks, threads, [&](Index j) {
      Block& b = block_at(j);
      graft_block(b, false);
      if (update) update_statistics(b);
    });
    // The eigendecompositions are the expensive part and independent.
    if (workspaces_.size() < static_cast<std::size_t>(threads))
      workspaces_.resize(static_cast<std::size_t>(threads));
    parallel_for(2 * num_blocks, threads, [&](Index j) {
      Block& b = block_at(j / 2);
      RootWorkspace& ws = workspaces_[static_cast<std::size_t>(omp_get_thread_num())];
      // Statistic 2k (left) or 2k + 1 (right) of block k; its index also
      // seeds a low-rank root's first basis.
      const Index statistic = 2 * schedule_[static_cast<std::size_t>(j / 2)] + j % 2;
      const auto seed = static_cast<std::uint64_t>(statistic) + kFirstBasisSeed;
      const bool ok = j % 2 == 0 ? inverse_root(b.left, b.left_root, b.left_low, seed, ws)
                                 : inverse_root(b.right, b.right_root, b.right_low, seed, ws);
      root_failed_[static_cast<std::size_t>(statistic)] = ok ? 0 : 1;
    });
    const auto failed = std::count(root_failed_.begin(), root_failed_.end(), 1);
    if (failed > 0)
      result.event = std::to_string(failed) +
                     " inverse root(s) failed (non-finite or no convergence): previous "
                     "roots kept";
  }
  // u = scale d (+ weight_decay x), m = beta1 m + (1 - beta1) u, x = x - lr m
  // on a block or segment (a view of each of m, x, d): one pass for m, one
  // for x.
  const T beta1 = T(options_.beta1), decay = T(options_.weight_decay);
  const T lr = T(options_.learning_rate);
  const auto take_step = [&](auto m, auto xs, auto ds, T scale) {
    if (options_.weight_decay != 0)
      m = beta1 * m + (T(1) - beta1) * (scale * ds + decay * xs);
    else
      m = beta1 * m + (T(1) - beta1) * (scale * ds);
    xs -= lr * m;
  };
  const auto take_segment_step = [&](Index begin, Index size, const Vector<T>& d, T scale) {
    take_step(momentum_.segment(begin, size).array(), x.segment(begin, size).array(),
              d.segment(begin, size).array(), scale);
  };
  if (!preconditioned) {
    parallel_for(num_blocks, threads, [&](Index j) {
      Block& b = block_at(j);
      graft_block(b, true);
      if (update) update_statistics(b);
    });
    take_segment_step(0, x.size(), graft_direction_, T(1));
    this->steps_ = t;
    return result;
  }
  // Layer-wise grafting (Agarwal et al. 2020): Shampoo's direction with the
  // length of the grafting optimizer's, |a| / |P| from the layer's blocks'
  // sums in block order. Each block's step forms its layer's scale itself
  // (every thread the same sums), so no barrier broadcasts them: the region
  // synchronises once between the phases and at its end.
  const auto layer_scale = [&](Index layer) {
    double graft = 0, shampoo = 0;
    for (const Block& b : blocks_)
      if (b.layer == layer) {
        graft += b.graft_squared_norm;
        shampoo += b.shampoo_squared_norm;
      }
    return static_cast<T>(std::sqrt(graft) / (std::sqrt(shampoo) + kNormFloor));
  };
  // Column by column: each column of m in cache for the update of x.
  const auto block_step = [&](Index j) {
    const Block& b = block_at(j);
    const Layer& l = layers_[static_cast<std::size_t>(b.layer)];
    const auto piece = [&](auto& v) {
      return MatrixMap<T>(v.data() + l.offset, l.rows, l.cols)
          .block(b.row_begin, b.col_begin, b.rows, b.cols);
    };
    auto m = piece(momentum_);
    auto xs = piece(x);
    const auto d = piece(direction_);
    const T scale = layer_scale(b.layer);
    for (Index c = 0; c < b.cols; ++c)
      take_step(m.col(c).array(), xs.col(c).array(), d.col(c).array(), scale);
  };
  const auto step_uncovered = [&] {
    for (const auto& [begin, end] : uncovered_)
      take_segment_step(begin, end - begin, graft_direction_, T(1));
  };
  if (refresh) {
    const auto first = [&](Index j) { precondition(block_at(j)); };
    parallel_phases(threads, Items{num_blocks, first}, Items{num_blocks, block_step});
    step_uncovered();
    this->steps_ = t;
    return result;
  }
  const auto first = [&](Index j) {
    Block& b = block_at(j);
    graft_block(b, false);
    if (update) update_statistics(b);
    precondition(b);
  };
  if (!fused) {
    parallel_phases(threads, Items{num_blocks, first}, Items{num_blocks, block_step});
    step_uncovered();
    this->steps_ = t;
    return result;
  }
  // Every member checks the gradient itself (the same sum on each), so no
  // barrier broadcasts the verdict. The segments outside the blocks are
  // grafted while the blocks' first phase runs and stepped after it.
  double squared_norm = 0;
  bool taken = false;
  const T loss = f.value_and_gradient_then(x, gradient_, [&](T batch_loss, bool shared) {
    const double squares = chunked_squared_norm(gradient_);
    const bool main_thread = omp_get_thread_num() == 0;
    if (main_thread) squared_norm = squares;
    if (!acceptable(batch_loss, squares)) return;
    if (shared) {
#pragma omp single nowait
      graft_uncovered();
      run_phases(true, Items{num_blocks, first}, Items{num_blocks, block_step});
#pragma omp single nowait
      step_uncovered();
    } else {
      SingleThreadedProducts products;
      graft_uncovered();
      run_phases(false, Items{num_blocks, first}, Items{num_blocks, block_step});
      step_uncovered();
    }
    if (main_thread) taken = true;
  });
  if (!evaluated(loss, squared_norm)) return result;
  HESSE_ASSERT(taken, "shampoo: an acceptable gradient was not stepped on");
  this->steps_ = t;
  return result;
}

template <class T>
void Shampoo<T>::save_state(StateDict& state) const {
  state.scalars["shampoo.step"] = static_cast<double>(this->steps_);
  if (dimension_ < 0) return;
  state.put("shampoo.momentum", momentum_);
  state.put("shampoo.graft_accumulator", graft_accumulator_);
  state.scalars["shampoo.blocks"] = static_cast<double>(blocks_.size());
  for (std::size_t k = 0; k < blocks_.size(); ++k) {
    const Block& b = blocks_[k];
    const std::string index = std::to_string(k);
    state.put("shampoo.left." + index, Matrix<T>(b.left.template selfadjointView<Eigen::Lower>()));
    state.put("shampoo.right." + index,
              Matrix<T>(b.right.template selfadjointView<Eigen::Lower>()));
    const auto put_root = [&](const std::string& side, const Matrix<T>& root,
                              const LowRankRoot& low) {
      if (root.size() > 0) {
        state.put("shampoo." + side + "_root." + index, root);
        return;
      }
      state.put("shampoo." + side + "_basis." + index, low.basis);
      Vector<T> scale(low.scale.size() + 1);
      scale << low.scale, low.rest;
      state.put("shampoo." + side + "_scale." + index, scale);
    };
    put_root("left", b.left_root, b.left_low);
    put_root("right", b.right_root, b.right_low);
  }
}

namespace {

// A square matrix stored as `name`; its side is the root of its length.
template <class T>
void load_square(const StateDict& state, const std::string& name, Matrix<T>& m) {
  const std::size_t length = state.array(name).size();
  const auto side = static_cast<Index>(std::llround(std::sqrt(static_cast<double>(length))));
  if (static_cast<std::size_t>(side * side) != length || side < 1)
    throw InvalidArgument("state: array '" + name + "' has " + std::to_string(length) +
                          " values, not a square matrix");
  m.resize(side, side);
  state.get(name, m);
}

}  // namespace

template <class T>
void Shampoo<T>::load_state(const StateDict& state) {
  const double step = state.scalar("shampoo.step");
  if (!(step >= 0 && step == std::floor(step) && step < 0x1p62))
    throw InvalidArgument("state: scalar 'shampoo.step' = " + std::to_string(step) +
                          " is not a step count");
  if (!state.has_array("shampoo.momentum")) {
    reset();
    this->steps_ = static_cast<std::int64_t>(step);
    return;
  }
  const Index n = static_cast<Index>(state.array("shampoo.momentum").size());
  if (dimension_ >= 0 && n != dimension_)
    throw InvalidArgument("state: array 'shampoo.momentum' has " + std::to_string(n) +
                          " values, the optimizer has " + std::to_string(dimension_) +
                          " parameters");
  Vector<T> momentum(n), accumulator(n);
  state.get("shampoo.momentum", momentum);
  state.get("shampoo.graft_accumulator", accumulator);
  const double count = state.scalar("shampoo.blocks");
  if (!(count >= 0 && count == std::floor(count) && count < 1e9))
    throw InvalidArgument("state: scalar 'shampoo.blocks' = " + std::to_string(count) +
                          " is not a count");
  std::vector<Block> blocks(static_cast<std::size_t>(count));
  for (std::size_t k = 0; k < blocks.size(); ++k) {
    Block& b = blocks[k];
    const std::string index = std::to_string(k);
    load_square(state, "shampoo.left." + index, b.left);
    load_square(state, "shampoo.right." + index, b.right);
    // A dense root, or a low-rank one of the same rank as this optimizer's.
    const auto load_root = [&](const std::string& side, Index n, Matrix<T>& root,
                               LowRankRoot& low) {
      const std::string basis = "shampoo." + side + "_basis." + index;
      if (!state.has_array(basis)) {
        load_square(state, "shampoo." + side + "_root." + index, root);
        if (root.rows() != n)
          throw InvalidArgument("state: block " + index + "'s " + side +
                                " root and statistic differ in size");
        if (low_rank(n))
          throw InvalidArgument("state: block " + index + "'s " + side +
                                " root is exact, this optimizer's rank is " +
                                std::to_string(options_.rank));
        return;
      }
      if (!low_rank(n))
        throw InvalidArgument("state: block " + index + "'s " + side +
                              " root is low-rank, this optimizer's rank is " +
                              std::to_string(options_.rank) + " for a side of " +
                              std::to_string(n));
      low.basis.resize(n, options_.rank);
      low.scale.resize(options_.rank);
      state.get(basis, low.basis);
      Vector<T> scale(options_.rank + 1);
      state.get("shampoo." + side + "_scale." + index, scale);
      low.scale = scale.head(options_.rank);
      low.rest = scale[options_.rank];
      low.have_basis = true;
    };
    load_root("left", b.left.rows(), b.left_root, b.left_low);
    load_root("right", b.right.rows(), b.right_root, b.right_low);
    b.rows = b.left.rows();
    b.cols = b.right.rows();
  }
  if (layout_ready_) {
    bool same = blocks.size() == blocks_.size();
    for (std::size_t k = 0; same && k < blocks.size(); ++k)
      same = blocks[k].rows == blocks_[k].rows && blocks[k].cols == blocks_[k].cols;
    if (!same)
      throw InvalidArgument("shampoo: the state's " + std::to_string(blocks.size()) +
                            " blocks do not match the optimizer's " +
                            std::to_string(blocks_.size()));
    for (std::size_t k = 0; k < blocks.size(); ++k) {
      blocks_[k].left.swap(blocks[k].left);
      blocks_[k].right.swap(blocks[k].right);
      blocks_[k].left_root.swap(blocks[k].left_root);
      blocks_[k].right_root.swap(blocks[k].right_root);
      std::swap(blocks_[k].left_low, blocks[k].left_low);
      std::swap(blocks_[k].right_low, blocks[k].right_low);
    }
  } else {
    blocks_.swap(blocks);
  }
  momentum_.swap(momentum);
  graft_accumulator_.swap(accumulator);
  dimension_ = n;
  this->steps_ = static_cast<std::int64_t>(step);
}

template <class T>
void Shampoo<T>::reset() {
  dimension_ = -1;
  layout_ready_ = false;
  layers_.clear();
  blocks_.clear();
  uncovered_.clear();
  momentum_.resize(0);
  graft_accumulator_.resize(0);
  this->steps_ = 0;
}

template <class T>
std::unique_ptr<Optimizer<T>> make_preconditioned(const std::string& name,
                                                  const OptimizerSettings& settings) {
  if (name == "shampoo")
    return std::make_unique<Shampoo<T>>(ShampooOptions::from_settings(settings));
  if (name == "adahessian")
    return std::make_unique<AdaHessian<T>>(AdaHessianOptions::from_settings(settings));
  if (name == "sophia") return std::make_unique<Sophia<T>>(SophiaOptions::from_settings(settings));
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> preconditioned_catalogue() {
  return {
      {"shampoo",
       "Shampoo: Kronecker-factored inverse 4th roots per layer, grafted to Adam or AdaGrad "
       "(Gupta et al. 2018; Anil et al. 2020)"},
      {"adahessian",
       "AdaHessian: Adam with a Hutchinson estimate of the Hessian diagonal (Yao et al. 2021)"},
      {"sophia",
       "Sophia: clipped momentum over a Gauss-Newton-Bartlett or Hutchinson diagonal (Liu et al. "
       "2023)"},
  };
}

template class Shampoo<float>;
template class Shampoo<double>;
template std::unique_ptr<Optimizer<float>> make_preconditioned<float>(const std::string&,
                                                                      const OptimizerSettings&);
template std::unique_ptr<Optimizer<double>> make_preconditioned<double>(const std::string&,
                                                                        const OptimizerSettings&);

}  // namespace hesse::optim
