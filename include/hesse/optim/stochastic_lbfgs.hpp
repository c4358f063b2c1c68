// Stochastic L-BFGS with curvature pairs from one batch (the online L-BFGS of
// Schraudolph, Yu & Guenter 2007, "A stochastic quasi-Newton method for
// online convex optimization", AISTATS) or from the overlap of consecutive
// batches (the multi-batch L-BFGS of Berahas, Nocedal & Takac 2016, "A
// multi-batch L-BFGS method for machine learning", NeurIPS). One step on
// batch B at x_k:
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
//      2007), so that y measures curvature and not the change of batch.
//      O_k is the LAST m = overlap_size (or max(1, round(overlap |B|)))
//      samples of B as given.
//        m = |B| (the default overlap = 1): O_k = B and the pair is formed in
//          the step, from the search's gradient at x_{k+1} (free) or, with a
//          fixed step, from one more gradient on B at x_{k+1}.
//        m < |B|: the step computes g_k in contiguous parts of B (the head,
//          the middle and the tail O_k, each a select_batch and a
//          value_and_gradient, combined with weights |part| / |B|: each part
//          is a mean plus any regularisation, so the weights, which sum to 1,
//          give the batch mean with the regularisation once) and keeps x_k,
//          grad f_O(x_k) and O_k's indices: the pending pair. The NEXT step,
//          at x_{k+1} (whatever fit() did to x in between is inside s), forms
//          the pair before its direction. When its batch starts with O_k's
//          indices in order (data::BatchSampler with overlap = m, as
//          Berahas et al.'s S_k and S_{k+1} share O_k), grad f_O(x_{k+1}) is
//          the head part of that step's own batch gradient: no evaluation
//          beyond the batch gradients. Otherwise (batches that do not
//          overlap, a new epoch, a batch of another size) it costs one
//          gradient on O_k at x_{k+1}. A pair with s = 0 (x did not move) is
//          dropped. Head and tail may share samples (m > |B| / 2): the
//          shared run is a part of both.
//   5. Safeguards: with powell_damping, y is replaced by
//      theta y + (1 - theta) B s when s^T y < 0.2 s^T B s (Powell's damping,
//      N&W Procedure 18.2), with B approximated by its initial matrix
//      B^0 = I / gamma (|y|/|s| I before the first pair), since the limited
//      memory form gives H, not B. Then a pair with s^T y <= curvature_threshold
//      |s| |y| is skipped, so every stored pair has positive curvature and
//      H_k stays positive definite.
//
// StepResult::gradient_evaluations counts batch gradients: g_k is one
// whether computed whole or in parts; the search's trials, the fixed step's
// gradient at x_{k+1} (m = |B| only) and the gradient on O_k when the batch
// does not start with it are one each, whatever their size.
//
// Numerical trouble (NaN/Inf at x, in any part or on O_k; at the new point
// of a fixed step with m = |B|; a non-descent direction) drops the history
// and the pending pair, leaves x as it was and rejects the step. A failed
// line search with pairs drops the history and searches once more along -g;
// a second failure rejects the step. With m < |B| a fixed step does not
// evaluate the new point: the next step's gradient does.
//
// Gradient clipping (an objective whose value_and_gradient clips, as fit()'s
// gradient_clip_norm does): the parts are taken with
// value_and_unclipped_gradient and clip_gradient is applied to their sums, so
// g_k is the batch gradient clipped as a whole, and the head and the tail are
// O_{k-1}'s and O_k's gradients clipped as wholes, as value_and_gradient on
// O_k would give them (so y does not depend on which way its ends were had;
// with O_k = B, y is the difference of two clipped batch gradients).
#pragma once

#include <span>
#include <vector>

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
  /// "overlap": y is taken on the last max(1, round(overlap |B|)) samples of
  /// the batch, O_k; in (0, 1]. Below |B| the pair is formed at the next
  /// step, from its own batch gradient when its batch starts with O_k
  /// (data::BatchSampler's overlap), else from one gradient on O_k.
  double overlap = 1.0;
  /// "overlap_size": |O_k| when > 0 (capped at |B|), overriding `overlap`;
  /// set it to the sampler's overlap (FitOptions::batch_overlap).
  Index overlap_size = 0;

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
  /// Drops the curvature pairs and the pending pair.
  void on_numerical_failure() override {
    history_.clear();
    pending_ = false;
  }
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;

  const StochasticLbfgsOptions& options() const { return options_; }
  /// Curvature pairs held, and pairs skipped by the safeguard since construction or reset.
  int pair_count() const { return history_.size(); }
  std::int64_t skipped_pairs() const { return skipped_pairs_; }
  /// With O_k smaller than the batch: pairs whose grad f_O(x_{k+1}) was the
  /// head of the next batch gradient (no evaluation of its own), and pairs
  /// that evaluated it on O_k, since construction or reset.
  std::int64_t reused_overlap_gradients() const { return reused_overlap_gradients_; }
  std::int64_t extra_overlap_gradients() const { return extra_overlap_gradients_; }
  /// Whether a pair waits for the next step (x_k, grad f_O(x_k) and O_k kept),
  /// and O_k's sample indices.
  bool has_pending_pair() const { return pending_; }
  std::span<const Index> pending_overlap() const {
    return pending_ ? std::span<const Index>(pending_samples_) : std::span<const Index>();
  }
  /// The stored pairs (s, y after damping), for inspection.
  const LbfgsHistory<T>& history() const { return history_; }

 private:
  /// Stores (s_, y_), Powell-damped if asked, unless the safeguard refuses
  /// it; returns the event, or "".
  const char* store_pair();
  /// g_k (into gradient_) and the batch loss at x on `batch`, in parts when
  /// the head (the first `head` samples) or the tail O_k (the last
  /// `overlap_size`, unless it is the whole batch) must be had on their own:
  /// their gradients go to head_gradient_ and tail_gradient_.
  T batch_gradient(StochasticObjective<T>& f, const Vector<T>& x, std::span<const Index> batch,
                   Index head, Index overlap_size);

  StochasticLbfgsOptions options_;
  // State: saved and restored.
  LbfgsHistory<T> history_;
  std::int64_t skipped_pairs_ = 0;
  std::int64_t reused_overlap_gradients_ = 0, extra_overlap_gradients_ = 0;
  // The pending pair (O_k smaller than the batch): x_k, grad f_O(x_k), O_k.
  bool pending_ = false;
  Vector<T> pending_x_, pending_gradient_;
  std::vector<Index> pending_samples_;
  // Workspace.
  Vector<T> gradient_, direction_, x_new_, g_new_, s_, y_;
  Vector<T> part_gradient_, head_gradient_, tail_gradient_;
  detail::BatchLineSearch<T> line_search_;
};

extern template class StochasticLbfgs<float>;
extern template class StochasticLbfgs<double>;

}  // namespace hesse::optim
