// Shampoo (Gupta, Koren & Singer 2018, "Shampoo: Preconditioned stochastic
// tensor optimization", ICML) in the practical form of Anil, Gupta, Koren,
// Regan & Singer (2020), "Scalable second order optimization for deep
// learning" and its reference code (google-research/scalable_shampoo,
// optax/distributed_shampoo.py): Kronecker-factored full-matrix AdaGrad per
// layer, with exponential moving averages of the statistics, epsilon
// relative to the largest eigenvalue, stale inverse roots, blocking of large
// dimensions, and layer-wise grafting of the step size to Adam or AdaGrad.
// docs/optimizers-shampoo.md gives the update as formulas, the options as a
// table and the cost per step.
//
//   hesse::optim::Shampoo<float> opt({.learning_rate = 1e-3, .inverse_every = 50});
//   hesse::optim::StochasticAdapter<hesse::nn::NetworkObjective<float>> f(objective);
//   for (auto batch : batches) opt.step(f, x, batch);
//
// Layers: each Dense layer's weight and bias are one matrix [W b] of shape
// [rows, cols + 1] (its slice of the flat vector, column-major), as in
// K-FAC's homogeneous coordinates, so the bias shares the rows' left
// statistic. A bias stored apart from its weight is its own [rows, 1]
// matrix; parameters outside every parameter block take the grafting step;
// an objective without parameter blocks is one [n, 1] matrix.
//
// A step costs one batch gradient and four products per block (two when
// the statistics are not updated, see statistics_every); the blocks are
// shared out over the OpenMP threads, each block's grafting piece and
// products on one thread, so the result does not depend on the thread
// count. Every `inverse_every` steps it also computes two symmetric
// eigendecompositions per block (in double unless roots_in_double is false,
// shared out the same way), which allocate inside Eigen. Other steps
// allocate nothing after the first. A
// loss or gradient with NaN/Inf rejects the step (accepted = false, an
// event) and leaves x and the state as they were; an inverse root that
// fails keeps the previous one (an event).
#pragma once

#include <Eigen/Eigenvalues>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

/// The diagonal method whose step length Shampoo's direction takes, layer by
/// layer (Agarwal, Anil, Hazan, Koren & Zhang 2020, "Disentangling adaptive
/// gradient methods from learning rates").
enum class ShampooGraft {
  Adagrad = 0,  ///< a = g / (sqrt(sum g^2) + graft_eps)
  Adam = 1,     ///< a = g / (sqrt(v / (1 - beta2^t)) + graft_eps), v = beta2 v + (1 - beta2) g^2
};

/// Defaults follow distributed_shampoo (beta1, beta2, epsilon, relative
/// epsilon, graft epsilon, start step, decay); the learning rate, the
/// grafting type and inverse_every are hesse's (see their fields).
struct ShampooOptions {
  /// Adam's default: with Adam grafting each layer's step has the length of
  /// Adam's, so Adam's learning rate carries over.
  double learning_rate = 1e-3;
  /// Momentum on the grafted direction, a moving average
  /// m = beta1 m + (1 - beta1) u (distributed_shampoo's
  /// moving_average_for_momentum), so the step length matches the graft's.
  double beta1 = 0.9;
  /// Decay of the statistics L, R and of Adam grafting's second moment; 1
  /// sums them (Gupta et al.'s original Shampoo, needs AdaGrad grafting).
  double beta2 = 0.999;
  /// Ridge added before the inverse roots: (L + eps lambda_max(L) I)^{-1/4}
  /// (relative, distributed_shampoo's matrix_epsilon), or (L + eps I)^{-1/4}.
  double epsilon = 1e-6;
  bool relative_epsilon = true;
  /// The inverse roots' eigendecompositions in double (true) or in T
  /// (false; for T = float a refresh takes about 0.65 of the time, and a
  /// decomposition that fails in float is redone in double, as Shi et al.'s
  /// implementation does; distributed_shampoo computes its roots in float32
  /// unless JAX's 64-bit mode is on).
  bool roots_in_double = true;
  /// Recompute the inverse roots every this many steps, starting at
  /// start_preconditioning_step (Anil et al. sec. 4: stale roots computed
  /// asynchronously). 100 is the default of Shi et al. (2023), "A
  /// distributed data-parallel PyTorch implementation of the distributed
  /// Shampoo optimizer"; it keeps the eigendecompositions' cost per step
  /// small (docs/optimizers-shampoo.md).
  Index inverse_every = 100;
  /// Update the statistics L, R only at steps 1, 1 + k, 1 + 2k, ... (each
  /// update decays by beta2 once); between them a step costs two products
  /// per block instead of four. distributed_shampoo's
  /// statistics_compute_steps (its default 1, as here).
  Index statistics_every = 1;
  /// Dimensions larger than this are split into blocks of this size (the
  /// last one smaller), each block with its own statistics (Anil et al.
  /// sec. 3.4; distributed_shampoo recommends 128).
  Index block_size = 128;
  /// 0: every inverse root is exact. r > 0: a side of a block of dimension
  /// n > r keeps the top r eigenpairs (Q, d) of its statistic S and the mean
  /// m of its other n - r eigenvalues (from the trace),
  ///   (S + e I)^{-1/4} ~= Q diag((d + e)^{-1/4}) Q^T + (m + e)^{-1/4} (I - Q Q^T),
  /// exact when the other eigenvalues are equal: the form of K-FAC's
  /// KfacOptions::rank (Sketchy, Feinberg et al. 2023, keeps Shampoo's
  /// statistics low-rank in the same way). Applying it costs 4 n r per row
  /// or column of the block instead of 2 n^2, and a refresh finds (Q, d) by
  /// warm-started subspace iteration (linalg::top_eigenpairs) instead of a
  /// full eigendecomposition; the statistics stay exact, with e relative to
  /// the largest of d and m.
  Index rank = 0;
  /// Products with S per refresh of a low-rank root, from the previous basis
  /// (the first refresh starts from a seeded Gaussian basis and does three
  /// times as many): KfacOptions::subspace_iterations.
  Index subspace_iterations = 2;
  ShampooGraft graft = ShampooGraft::Adam;
  double graft_epsilon = 1e-10;  ///< distributed_shampoo's diagonal_epsilon
  /// Steps 1 .. start - 1 take the grafting optimizer's step; the first
  /// inverse roots are computed at this step.
  Index start_preconditioning_step = 5;
  /// Coupled decay added to the grafted direction before momentum:
  /// u = grafted + weight_decay x (distributed_shampoo's default form).
  double weight_decay = 0;

  /// Throws InvalidArgument naming shampoo.<field>, its value and the rule.
  void validate() const;
  /// Reads "lr", "beta1", "beta2", "eps", "relative_eps", "roots_in_double",
  /// "inverse_every", "statistics_every", "block_size", "rank", "subspace_iterations",
  /// "graft" (0 adagrad, 1 adam), "graft_eps",
  /// "start_preconditioning_step", "weight_decay"; throws InvalidArgument
  /// for any other name.
  static ShampooOptions from_settings(const OptimizerSettings& settings);
};

/// Shampoo with grafting; at step t (from 1), for every layer matrix G (the
/// batch gradient's slice) and every block G_b of it:
///   L_b = beta2 L_b + w G_b G_b^T,   R_b = beta2 R_b + w G_b^T G_b
///         (w = 1 - beta2, or 1 when beta2 = 1), when (t - 1) % statistics_every == 0
///   roots, when t >= start and (t - start) % inverse_every == 0:
///         L_b^{-1/4} = (L_b + e I)^{-1/4},  R_b^{-1/4} = (R_b + e I)^{-1/4}
///         by symmetric eigendecomposition (negative rounding clamped to 0;
///         low-rank plus a multiple of I for a side larger than rank > 0)
///   P_b = L_b^{-1/4} G_b R_b^{-1/4}                    (Gupta et al. Alg. 1)
///   a   = the grafting optimizer's direction for G (element-wise)
///   u   = (|a| / |P|) P over the whole layer, or a when t < start
///   u  += weight_decay x
///   m   = beta1 m + (1 - beta1) u,   x = x - lr m
/// State: "shampoo.step", "shampoo.momentum", "shampoo.graft_accumulator",
/// and per block k (layer by layer, row blocks outer, column blocks inner)
/// "shampoo.left.k", "shampoo.right.k", "shampoo.left_root.k",
/// "shampoo.right_root.k" (for a low-rank side "shampoo.left_basis.k", [n, r],
/// and "shampoo.left_scale.k", the r scales then the rest; likewise right);
/// "shampoo.blocks" counts them.
template <class T>
class Shampoo final : public Optimizer<T> {
 public:
  explicit Shampoo(ShampooOptions options = {});
  std::string name() const override { return "shampoo"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;
  const ShampooOptions& options() const { return options_; }

  /// Where one preconditioned block sits: rows [row_begin, row_begin + rows)
  /// and columns [col_begin, col_begin + cols) of the column-major
  /// [layer_rows, layer_cols] matrix at `offset` of the flat vector.
  struct BlockLayout {
    Index layer = 0;
    Index offset = 0, layer_rows = 0, layer_cols = 0;
    Index row_begin = 0, rows = 0, col_begin = 0, cols = 0;
  };
  /// The blocks in state order; empty before the first step.
  std::vector<BlockLayout> block_layout() const;

 private:
  // A column-major [rows, cols] matrix at `offset` of the flat vector.
  struct Layer {
    Index offset = 0, rows = 0, cols = 0;
  };
  // An inverse root of ShampooOptions::rank: rest I + basis diag(scale) basis^T.
  struct LowRankRoot {
    Matrix<T> basis;          // [n, r], orthonormal columns
    Vector<T> scale;          // [r]: (d + e)^{-1/4} - rest
    T rest = 1;               // (m + e)^{-1/4}
    bool have_basis = false;  // basis holds a subspace to warm-start from
  };
  struct Block {
    Index layer = 0, row_begin = 0, rows = 0, col_begin = 0, cols = 0;
    Matrix<T> left, right;            // L: [rows, rows], R: [cols, cols]; lower triangles
    Matrix<T> left_root, right_root;  // (L + e I)^{-1/4}, (R + e I)^{-1/4}; empty if low rank
    LowRankRoot left_low, right_low;  // the roots of a side larger than rank > 0
    Matrix<T> product;                // L^{-1/4} G_b: [rows, cols]
    Matrix<T> narrow_left;            // Q_L^T G_b: [r, cols] (low-rank left side)
    Matrix<T> narrow_right;           // L^{-1/4} G_b Q_R: [rows, r] (low-rank right side)
    double graft_squared_norm = 0;    // |a_b|^2 of this step
    double shampoo_squared_norm = 0;  // |P_b|^2 of this step
  };
  // Scratch for one thread's eigendecompositions in precision S.
  template <class S>
  struct RootScratch {
    Matrix<S> statistic, scaled, root, basis;
    Vector<double> values;
    Eigen::SelfAdjointEigenSolver<Matrix<S>> solver;
  };
  struct RootWorkspace {
    RootScratch<double> in_double;
    RootScratch<T> in_t;
  };

  void prepare(const StochasticObjective<T>& f, Index dimension);
  // Whether a side of dimension n has a low-rank root.
  bool low_rank(Index n) const { return options_.rank > 0 && n > options_.rank; }
  // The root of `statistic` into `root`, or into `low` when its side is low
  // rank (`seed` starts its first basis); neither is written on failure.
  bool inverse_root(const Matrix<T>& statistic, Matrix<T>& root, LowRankRoot& low,
                    std::uint64_t seed, RootWorkspace& ws) const;
  template <class S>
  bool inverse_root_in(const Matrix<T>& statistic, Matrix<T>& root, LowRankRoot& low,
                       std::uint64_t seed, RootScratch<S>& ws) const;

  ShampooOptions options_;
  Index dimension_ = -1;       // known after the first step or load_state
  bool layout_ready_ = false;  // layers_ and the blocks' places known (first step)
  std::vector<Layer> layers_;
  std::vector<Block> blocks_;
  std::vector<std::pair<Index, Index>> uncovered_;  // [begin, end) outside every layer
  std::vector<Index> schedule_;                     // blocks_ indices, largest work first
  std::vector<RootWorkspace> workspaces_;           // one per OpenMP thread of a refresh
  std::vector<char> root_failed_;                   // per statistic, this step
  Vector<T> gradient_, graft_accumulator_, graft_direction_, direction_, momentum_;
};

/// The optimizer of this family called `name` ("shampoo", "adahessian",
/// "sophia") with `settings` over its defaults, or null for any other name;
/// throws InvalidArgument for an unknown setting or an invalid value.
template <class T>
std::unique_ptr<Optimizer<T>> make_preconditioned(const std::string& name,
                                                  const OptimizerSettings& settings);

/// The names make_preconditioned knows, each with a one-line description.
std::vector<std::pair<std::string, std::string>> preconditioned_catalogue();

extern template class Shampoo<float>;
extern template class Shampoo<double>;

}  // namespace hesse::optim
