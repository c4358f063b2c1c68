// Full-batch L-BFGS as a mini-batch Optimizer, so fit() and `hesse compare`
// can run the classical method beside the stochastic ones: every step
// ignores the batch it is given, evaluates the whole training set and takes
// one L-BFGS iteration (two-loop recursion, strong-Wolfe line search), as
// torch.optim.LBFGS with max_iter = 1 and line_search_fn = "strong_wolfe".
// The line search chooses the step length, so the learning rate only scales
// the first trial step.
#pragma once

#include <memory>
#include <string>

#include "hesse/linesearch/line_search.hpp"
#include "hesse/optim/lbfgs_history.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

struct FullBatchLbfgsOptions {
  double lr = 1.0;                    ///< scales the line search's first trial step
  int memory = 10;                    ///< curvature pairs kept
  double curvature_threshold = 1e-10; ///< refuse pairs with s^T y <= this |s| |y|
  linesearch::LineSearchOptions line_search;  ///< strong Wolfe (More-Thuente) by default

  void validate() const;
  static FullBatchLbfgsOptions from_settings(const OptimizerSettings& settings);
};

template <class T>
class FullBatchLbfgs final : public Optimizer<T> {
 public:
  explicit FullBatchLbfgs(FullBatchLbfgsOptions options = {});
  std::string name() const override { return "lbfgs"; }
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.lr; }
  void set_learning_rate(double lr) override { options_.lr = lr; }
  void on_numerical_failure() override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;

 private:
  FullBatchLbfgsOptions options_;
  LbfgsHistory<T> history_;
  bool have_point_ = false;  // x_, fx_, g_ hold the last evaluated point
  Vector<T> x_, g_, direction_, x_new_, g_new_, s_, y_;
  T fx_ = 0;
};

extern template class FullBatchLbfgs<float>;
extern template class FullBatchLbfgs<double>;

}  // namespace hesse::optim
