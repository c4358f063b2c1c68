// Stochastic L-BFGS with curvature pairs from one batch (the online L-BFGS of
// Schraudolph, Yu & Guenter 2007, "A stochastic quasi-Newton method for
// online convex optimization", AISTATS; the multi-batch L-BFGS of Berahas,
// Nocedal & Takac 2016, "A multi-batch L-BFGS method for machine learning",
// NeurIPS, with the overlap O_k a fixed part of the current batch). One step
// on batch B:
//
//   1. g_k = grad f_B(x_k).
//   2. p = -H_k g_k by the two-loop recursion (Nocedal & Wright, 2nd ed.,
//      Alg. 7.4; the LbfgsHistory shared with the full-batch L-BFGS) over the
//      last `memory` pairs, with H_k^0 = gamma I,
//      gamma = s^T y / y^T y of the newest pair (N&W eq. 7.20). Without
//      pairs p = -g and the step is lr min(1, 1/|g|): never longer than a
//      gradient step, nor than unit length.
//   3. x_{k+1} = x_k + a p: a from an Armijo line search on B (first trial
//      lr), or a = lr with line_search = 0.
//   4. The pair s = x_{k+1} - x_k, y = grad f_O(x_{k+1}) - grad f_O(x_k) on
//      the same samples O_k (Berahas et al. 2016, sect. 2; Schraudolph et al.
//      2007), so that y measures curvature and not the change of batch. O_k
//      is the first max(1, round(overlap |B|)) samples of B as given (the
//      sampler's order), so O_k = B with the default overlap = 1. Cost of the
//      pair, in gradient evaluations:
//        O_k = B, line search: none (the accepted point carries grad f_B);
//        O_k = B, fixed step:  one on B at x_{k+1};
//        O_k smaller than B:   two on O_k, at x_{k+1} and at x_k. The
//          search's gradient at x_{k+1} is on B, not O_k, and grad f_B(x_k)
//          does not give grad f_O(x_k) (the objective returns a mean over its
//          selection), so neither is reused; a fixed step evaluates x_{k+1}
//          on O_k only, not on B.
//      In per-sample gradients a step then costs |B| (1 + trials) + 2 |O_k|
//      against the default's |B| (1 + trials) with a line search, and
//      |B| + 2 |O_k| against 2 |B| with a fixed step.
//   5. Safeguards: with powell_damping, y is replaced by
//      theta y + (1 - theta) B s when s^T y < 0.2 s^T B s (Powell's damping,
//      N&W Procedure 18.2), with B approximated by its initial matrix
//      B^0 = I / gamma (|y|/|s| I before the first pair), since the limited
//      memory form gives H, not B. Then a pair with s^T y <= curvature_threshold
//      |s| |y| is skipped, so every stored pair has positive curvature and
//      H_k stays positive definite.
//
// Numerical trouble (NaN/Inf at x or at the new point, on B or on O_k; a
// non-descent direction) drops the history, leaves x as it was and rejects
// the step. A failed line search with pairs drops the history and searches
// once more along -g; a second failure rejects the step.
#pragma once

#include "hesse/optim/hessian_free.hpp"
#include "hesse/optim/lbfgs_history.hpp"

namespace hesse::optim {

struct StochasticLbfgsOptions {
  /// "lr": step length (the line search's first trial; 0: no step).
  double learning_rate = 1.0;
  /// "memory": number m of curvature pairs kept.
  int memory = 10;
  /// "curvature_threshold": skip a pair with s^T y <= threshold |s| |y|.
  double curvature_threshold = 1e-8;
  /// "powell_damping" (1/0): damp y towards B s before the threshold test.
  bool powell_damping = false;
  /// "line_search" (1/0): Armijo search on the batch, or a fixed step lr.
  bool line_search = true;
  /// "sufficient_decrease": c1 of the Armijo line search.
  double sufficient_decrease = 1e-4;
  /// "line_search_trials": evaluations per line search.
  int line_search_trials = 20;
  /// "overlap": y is taken on the first max(1, round(overlap |B|)) samples of
  /// the batch; in (0, 1]. Below 1 the pair costs two gradients on that part
  /// instead of none (line search) or one on B (fixed step).
  double overlap = 1.0;

  /// Throws InvalidArgument naming slbfgs.<field>, its value and the rule.
  void validate() const;
  static StochasticLbfgsOptions from_settings(const OptimizerSettings& settings);
};

template <class T>
class StochasticLbfgs final : public Optimizer<T> {
 public:
  explicit StochasticLbfgs(StochasticLbfgsOptions options = {});

  std::string name() const override { return "slbfgs"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  /// Drops the curvature pairs.
  void on_numerical_failure() override { history_.clear(); }
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;

  const StochasticLbfgsOptions& options() const { return options_; }
  /// Curvature pairs held, and pairs skipped by the safeguard since construction or reset.
  int pair_count() const { return history_.size(); }
  std::int64_t skipped_pairs() const { return skipped_pairs_; }
  /// The stored pairs (s, y after damping), for inspection.
  const LbfgsHistory<T>& history() const { return history_; }

 private:
  /// Stores (s_, y_), Powell-damped if asked, unless the safeguard refuses
  /// it; returns the event, or "".
  const char* store_pair();

  StochasticLbfgsOptions options_;
  // State: saved and restored.
  LbfgsHistory<T> history_;
  std::int64_t skipped_pairs_ = 0;
  // Workspace.
  Vector<T> gradient_, direction_, x_new_, g_new_, s_, y_;
  detail::BatchLineSearch<T> line_search_;
};

extern template class StochasticLbfgs<float>;
extern template class StochasticLbfgs<double>;

}  // namespace hesse::optim
