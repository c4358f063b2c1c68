// K-FAC: Kronecker-factored approximate curvature (Martens & Grosse 2015).
//
// Each Dense layer's block of the Fisher is approximated by A (x) G, with
//   A = E[abar abar^T], abar = [a; 1] the layer's input (and a 1 for the bias),
//   G = E[g g^T],       g the gradient of a sample's loss in the layer's output,
// (M&G sec. 3), so the block's natural-gradient step is a pair of small
// matrix products, V = G^-1 grad[W b] A^-1 (M&G sec. 4.2).
//
//   hesse::optim::Kfac<float> kfac({.learning_rate = 1e-2, .damping = 0.1});
//   // or by name: hesse::optim::make_optimizer<float>("kfac", {{"lr", 1e-2}})
//   hesse::optim::StochasticAdapter<hesse::nn::NetworkObjective<float>> f(objective);
//   for (auto batch : batches) kfac.step(f, x, batch);
//
// One step, with lambda = damping and eta = weight_decay:
//   1. Every statistics_every steps: the batch's A, G and gradient from one
//      forward and two backward passes (NetworkObjective::kronecker_factors),
//      folded into exponential moving averages (M&G sec. 5; the first update
//      initialises them). Other steps: the gradient only.
//   2. grad += eta x (L2 weight decay, coupled: it is part of the objective
//      whose curvature K-FAC approximates; M&G sec. 6.3 add its eta to
//      the damping).
//   3. Every inverse_every steps: the damped inverses. Cholesky variant,
//      factored Tikhonov damping (M&G sec. 6.3):
//        gamma = sqrt(lambda + eta),
//        pi    = sqrt((tr(A) / dim A) / (tr(G) / dim G)),
//        A^-1 <- (A + pi gamma I)^-1,   G^-1 <- (G + gamma / pi I)^-1.
//      Eigen variant: A = Q_A diag(d_A) Q_A^T, G = Q_G diag(d_G) Q_G^T and
//      the exact Tikhonov damping of the Kronecker product (as in the PyTorch
//      implementation of Wang et al., KFAC-Pytorch):
//        (A (x) G + (lambda + eta) I)^-1 vec(grad)
//          = vec(Q_G [(Q_G^T grad Q_A) ./ (d_G d_A^T + lambda + eta)] Q_A^T).
//      With rank = r > 0, a factor larger than r keeps its top r eigenpairs
//      and the mean of its other eigenvalues (KfacLowRankInverse), so
//      applying its inverse costs O(n r) per gradient row instead of O(n^2).
//   4. V = G^-1 grad[W b] A^-1 per Dense block (two GEMMs, four for the
//      eigen variant); parameters outside Dense blocks get V = grad.
//   5. KL / norm constraint (Ba, Grosse & Martens 2017): V *= nu,
//      nu = min(1, sqrt(kl_clip / (lr^2 V^T grad))).
//   6. Momentum on the preconditioned step, as torch.optim.SGD:
//      b = momentum b + V (b = V on the first step), x <- x - lr b.
//   7. With adaptive_damping, every damping_every steps: the reduction ratio
//      of the step delta taken,
//        rho = (h(x + delta) - h(x)) / (grad^T delta + 1/2 delta^T (F + eta I) delta),
//      with F the exact Gauss-Newton matrix of the batch (M&G sec. 6.5; one
//      extra loss evaluation and one Gauss-Newton-vector product), and
//      lambda <- omega lambda if rho > 3/4, lambda <- lambda / omega if
//      rho < 1/4, omega = (19/20)^damping_every. A step whose model change
//      is >= 0 (the learning rate overshoots the model's minimiser by more
//      than twice) counts as rho = -inf. With the Cholesky variant
//      a new lambda takes effect at the next inverse refresh (as in M&G); the
//      eigen variant uses it at once.
//
// Numerical trouble (NaN/Inf in the loss, gradient, factors or update; a
// Cholesky or eigen failure; a non-finite loss after the step) rejects the
// step: x, the averages, the momentum and the step count stay as they were,
// damping is multiplied by failure_damping_factor, the inverses are
// recomputed on the next step and StepResult.event says what happened.
//
// After the first step (or a load_state) a step allocates nothing in the
// optimizer: factors, inverses, the momentum buffer and every workspace are
// members (an eigen-variant or low-rank refresh allocates inside Eigen).
// The Cholesky variant's preconditioning runs over the OpenMP threads in
// fixed slices, each a single-threaded Eigen product, so the result does not
// depend on the thread count; the step on x (element-wise) follows in the
// same OpenMP region. A refresh is shared out too: a factor per item (its
// Cholesky factorisation, low-rank inverse or eigendecomposition), then
// fixed slices of 128 columns of each dense inverse. The eigen variant's
// four products run over the threads by the same slices. The objective's
// passes keep their thread slices.
// docs/optimizers-kfac.md has the options, costs and references.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hesse/core/rng.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

/// How K-FAC inverts its damped factors.
enum class KfacInverse {
  Cholesky = 0,  ///< (A + pi gamma I)^-1 and (G + gamma/pi I)^-1: factored damping, 2 GEMMs a step
  Eigen = 1,     ///< eigenbases of A and G: exact damping of A (x) G, 4 GEMMs a step
};

struct KfacOptions {
  /// Step scale. 1e-2 with momentum 0.9 is the common setting of the PyTorch
  /// K-FAC implementations on classification networks; kl_clip bounds
  /// the step when the preconditioned gradient is large.
  double learning_rate = 1e-2;
  /// Tikhonov damping lambda added to the Fisher (M&G sec. 6.3); the
  /// adaptive rule starts from it. KFAC-Pytorch (Wang et al.) defaults to
  /// 1e-3 and tunes over 1e-3..3e-2; on the 784-128-64-10 MLP of hesse's
  /// training benchmark 0.1 trains fastest and most steadily (Fashion-MNIST
  /// test accuracy after 500 steps: 0.833 with 1e-3, 0.866 with 3e-2, 0.870
  /// with 0.1; docs/optimizers-kfac.md, "Defaults").
  double damping = 0.1;
  /// Heavy-ball momentum on the preconditioned update (torch.optim.SGD form).
  double momentum = 0.9;
  /// Decay of the factors' exponential moving averages: M&G sec. 5 use
  /// min(1 - 1/k, 0.95); 0.95 is also KFAC-Pytorch's and KFAC-JAX's.
  double ema_decay = 0.95;
  /// Steps between refreshes of the damped inverses: KFAC-Pytorch's TInv.
  /// M&G's experiments use T3 = 20; on the benchmark MLP 20, 50 and 100
  /// give the same accuracy per step while a refresh costs 25-45
  /// single-threaded milliseconds, 15-25 Adam steps (docs: "Defaults").
  Index inverse_every = 100;
  /// Steps between updates of the factor averages: KFAC-Pytorch's TCov. A
  /// statistics step adds a second backward pass and the rank-B updates of
  /// A and G (about two Adam steps on the benchmark MLP).
  Index statistics_every = 10;
  /// Share of the batch a statistics step takes A and G from: its first
  /// max(1, round(fraction |B|)) samples (the gradient stays on all of B).
  /// Below 1 the factors' rank-|B| updates shrink in proportion, at the
  /// price of one more forward pass on those samples; some K-FAC
  /// implementations have the same knob as a covariance batch ratio.
  double statistics_fraction = 1;
  /// Labels of the backward pass behind G: sampled from the model (the true
  /// Fisher, M&G sec. 5) or the data's (the empirical Fisher).
  nn::FisherKind fisher = nn::FisherKind::True;
  KfacInverse inverse = KfacInverse::Cholesky;
  /// 0: every factor is inverted exactly. r > 0 (Cholesky variant only): a
  /// factor F of dimension n > r is replaced by its top r eigenpairs (Q, d)
  /// and the mean m of its other n - r eigenvalues, so that
  ///   (F + delta I)^-1 ~= Q diag(1 / (d + delta)) Q^T + (I - Q Q^T) / (m + delta),
  /// exact when the other eigenvalues are equal and keeping tr(F). Applying it
  /// costs 4 n r per row of the gradient instead of 2 n^2 (Puiu 2022,
  /// "Randomized K-FACs"; here by warm-started subspace iteration, so a
  /// refresh costs about 2 (subspace_iterations + 1) n^2 r flops).
  Index rank = 0;
  /// Products with F per refresh of a low-rank factor, warm-started from the
  /// previous basis (the first refresh starts from a seeded Gaussian basis
  /// and does three times as many).
  Index subspace_iterations = 2;
  /// Levenberg-Marquardt adjustment of damping from the reduction ratio (M&G
  /// sec. 6.5). Off by default, as in KFAC-JAX (KFAC-Pytorch has none).
  bool adaptive_damping = false;
  /// Steps between damping adjustments: M&G's T1 = 5.
  Index damping_every = 5;
  /// omega = damping_decay^damping_every: M&G's 19/20.
  double damping_decay = 19.0 / 20.0;
  /// Bounds of the adapted (and the failure-raised) damping.
  double min_damping = 1e-8;
  double max_damping = 1e4;
  /// Bound on lr^2 V^T grad, the step's predicted KL change (Ba, Grosse &
  /// Martens 2017); 1e-3 as KFAC-Pytorch. 0 turns the constraint off.
  double kl_clip = 1e-3;
  /// L2 penalty eta/2 |x|^2: eta x is added to the gradient before
  /// preconditioning and eta to the damping (M&G sec. 6.3).
  double weight_decay = 0;
  /// Damping is multiplied by this after a rejected step or
  /// on_numerical_failure().
  double failure_damping_factor = 10;
  /// Seeds the labels sampled for the true Fisher.
  std::uint64_t seed = 0;

  /// Throws InvalidArgument naming kfac.<field>, its value and the rule.
  void validate() const;
  /// Reads "lr", "damping", "momentum", "ema_decay", "inverse_every",
  /// "statistics_every", "statistics_fraction", "fisher" (0 true, 1
  /// empirical), "inverse" (0
  /// Cholesky, 1 eigen), "adaptive_damping", "damping_every",
  /// "damping_decay", "min_damping", "max_damping", "kl_clip", "rank",
  /// "subspace_iterations",
  /// "weight_decay", "failure_damping_factor", "seed"; refuses other names.
  static KfacOptions from_settings(const OptimizerSettings& settings);
};

/// The low-rank damped inverse of KfacOptions::rank for a symmetric positive
/// semidefinite factor F of dimension n:
///   (F + shift I)^-1 ~= rest I + basis diag(scale) basis^T,
/// with basis the top-r eigenvectors of F (eigenvalues d), m the mean of F's
/// other n - r eigenvalues (from its trace), rest = 1 / (m + shift) and
/// scale = 1 / (d + shift) - rest.
template <class T>
struct KfacLowRankInverse {
  Matrix<T> basis;  ///< [n, r], orthonormal columns
  Vector<T> scale;  ///< [r]
  T rest = 0;
  bool have_basis = false;  ///< basis holds a subspace to warm-start from

  /// Sizes basis [n, r] and scale [r] (zeros, no basis to warm-start from).
  void resize(Index n, Index r);
  /// `iterations` steps of subspace iteration from the current basis (from a
  /// Gaussian basis seeded by `seed`, with three times the iterations, when
  /// there is none), then Rayleigh-Ritz. Reads only the lower triangle of F.
  /// Returns false (and forgets the basis) if anything is not finite.
  /// Allocates its workspaces.
  bool compute(const Eigen::Ref<const Matrix<T>>& F, double shift, Index iterations,
               std::uint64_t seed);
};

extern template struct KfacLowRankInverse<float>;
extern template struct KfacLowRankInverse<double>;

/// K-FAC for networks of Dense layers (nn::NetworkObjective behind a
/// StochasticObjective). State: "kfac.layout", "kfac.A.<b>", "kfac.G.<b>",
/// the inverses ("kfac.A_inverse.<b>", "kfac.G_inverse.<b>", or for the
/// eigen variant "kfac.A_eigenvectors.<b>", "kfac.A_eigenvalues.<b>", ...),
/// "kfac.momentum_buffer", "kfac.damping", "kfac.step", "kfac.rng" and flags.
template <class T>
class Kfac final : public Optimizer<T> {
 public:
  explicit Kfac(KfacOptions options = {});
  std::string name() const override { return "kfac"; }
  /// Throws InvalidArgument if f has no network behind it (f.network() is
  /// null) or x does not match it.
  StepResult step(StochasticObjective<T>& f, Vector<T>& x, std::span<const Index> batch) override;
  double learning_rate() const override { return options_.learning_rate; }
  void set_learning_rate(double lr) override;
  /// Multiplies damping by failure_damping_factor and refreshes the inverses
  /// on the next step.
  void on_numerical_failure() override;
  void save_state(StateDict& state) const override;
  void load_state(const StateDict& state) override;
  void reset() override;

  const KfacOptions& options() const { return options_; }
  /// The current lambda (adapted or raised after failures).
  double damping() const { return damping_; }
  /// The factors' moving averages, in parameter_blocks() order (empty before
  /// the first step). Only the lower triangles are kept; the strictly upper
  /// triangles are zero (read them as selfadjointView<Eigen::Lower>()). The
  /// state ("kfac.A.<b>", "kfac.G.<b>") holds the full symmetric matrices.
  const nn::KroneckerFactors<T>& factors() const { return factors_; }
  /// The last reduction ratio of the adaptive rule (NaN before one was computed).
  double last_reduction_ratio() const { return last_rho_; }

 private:
  // A factor approximated by rank (KfacOptions::rank).
  struct LowRank : KfacLowRankInverse<T> {
    bool active = false;
  };
  struct Block {
    ParameterBlock layout;
    Index width = 0;  // cols + 1 with a bias, cols without
    // Its left slices: left_slices_[first_left, first_left + left_count).
    std::size_t first_left = 0, left_count = 0;
    // Cholesky: the damped inverses. Eigen: the eigenvectors Q_A, Q_G, with
    // the eigenvalues (clipped at 0) in a_values, g_values.
    Matrix<T> a_inverse, g_inverse;
    Vector<T> a_values, g_values;
    LowRank a_low, g_low;
    // [rows, width]: grad A^-1 (Cholesky); Q_G^T grad and its scaling (eigen).
    Matrix<T> product;
    Matrix<T> rotated;  // [rows, width]: Q_G^T grad Q_A (eigen variant)
    Eigen::LLT<Matrix<T>> a_llt, g_llt;
    Eigen::SelfAdjointEigenSolver<Matrix<T>> a_eigen, g_eigen;
  };
  // A slice of one block's preconditioning, fixed at allocation whatever the
  // thread count, so the results are too. Cholesky variant: right slices are
  // columns [begin, begin + count) of G^-1 grad A^-1, each from grad A^-1 of
  // its own columns; with a low-rank A^-1 they need grad Q_A, summed from
  // the left slices' shares grad[:, slice] Q_A[slice, :]. Eigen variant:
  // left slices are columns of its first and third products, right slices
  // rows of its second and fourth.
  struct Slice {
    std::size_t block = 0;
    Index begin = 0, count = 0;
    Matrix<T> work;      // low-rank G^-1: [r, count], Q_G^T (grad A^-1)[:, slice]
    Matrix<T> partial;   // low-rank A^-1: [rows, r], left: the slice's share of grad Q_A;
                         // right: grad Q_A S_A
    double dot = 0;      // right slices: the slice's share of V^T grad
    double squares = 0;  // right slices: the slice's share of |grad|^2
  };

  // Columns [begin, begin + count) of factor `factor`'s dense inverse (2b:
  // block b's A, 2b + 1: its G), solved as one item of a refresh.
  struct InverseSlice {
    Index factor = 0, begin = 0, count = 0;
  };

  // First step after construction, reset or load_state: checks f and x
  // against the blocks (allocating them when fresh).
  void set_up(StochasticObjective<T>& f, const Vector<T>& x);
  void allocate(const std::vector<ParameterBlock>& layout, Index dimension);
  // Inverts the damped factors `candidates` into the blocks over `threads`
  // OpenMP threads (a factor, or a slice of a dense inverse's columns, per
  // item; the same result on any thread count); false (with the reason,
  // naming the first failed block) on a failed factorisation.
  bool refresh_inverses(const nn::KroneckerFactors<T>& candidates, std::string& why, int threads);
  // update_ = the preconditioned gradient_ in slices over `threads` OpenMP
  // threads (Cholesky variant: two phases, one with no low-rank A^-1; eigen
  // variant: four), then step_chunk(j, update_^T gradient_) for every
  // j < chunks over the threads (Cholesky: in the same OpenMP region).
  // Returns update_^T gradient_.
  template <class StepChunk>
  double precondition(int threads, Index chunks, const StepChunk& step_chunk);
  // The Cholesky variant's preconditioning and step_chunk calls, run by
  // every member of a team inside a parallel region (shared: orphaned omp for
  // loops, two barriers or one) or by one thread: precondition's region, or the
  // gradient pass's own (value_and_gradient_then).
  // Returns update_dot_gradient().
  template <class StepChunk>
  double precondition_slices(bool shared, Index chunks, const StepChunk& step_chunk);
  // update_^T gradient_ from the right slices' shares in slice order (the
  // same sum on any thread count), then the ranges outside the blocks; NaN
  // when |gradient_|^2, summed alike, is not finite (no step is taken then).
  double update_dot_gradient() const;
  void left_slice(Slice& s);   // s.partial = grad[:, slice] Q_A[slice, :]
  void right_slice(Slice& s);  // update[:, slice] = G^-1 (grad A^-1)[:, slice]
  // A right slice's shares of V^T grad and |grad|^2 (s.dot, s.squares):
  // its part of update_ and of gradient_.
  template <class Out, class Grad>
  static void record_shares(Slice& s, const Out& out, const Grad& grad);
  void copy_plain();  // update_ = gradient_ outside the Dense blocks
  // The eigen variant's products by the same slices, first or second pass.
  void eigen_left_slice(Slice& s, bool second);
  void eigen_right_slice(Slice& s, bool second, T shift);
  StepResult reject(StepResult result, const std::string& why);
  void raise_damping();

  KfacOptions options_;
  double damping_;
  Rng rng_;
  Index dimension_ = 0;   // 0: no blocks yet
  bool checked_ = false;  // f's blocks were compared with ours
  std::vector<Block> blocks_;
  std::vector<std::pair<Index, Index>> plain_ranges_;  // [begin, end) outside Dense blocks
  std::vector<Slice> left_slices_, right_slices_;
  std::vector<InverseSlice> inverse_slices_;
  std::vector<char> factor_ok_;  // a refresh's verdict per factor (2b: A, 2b + 1: G)
  // factors_: the moving averages. batch_factors_: a statistics step's batch
  // factors, then the candidate averages, swapped in when the step is taken.
  nn::KroneckerFactors<T> factors_, batch_factors_;
  Vector<T> gradient_, update_, momentum_buffer_, trial_, curvature_product_;
  bool have_factors_ = false;
  bool have_inverses_ = false;
  bool have_momentum_ = false;
  bool refresh_pending_ = false;
  double last_rho_;
};

extern template class Kfac<float>;
extern template class Kfac<double>;

/// The "kfac" entry of make_optimizer: KfacOptions::from_settings(settings).
template <class T>
std::unique_ptr<Optimizer<T>> make_kfac(const OptimizerSettings& settings);

}  // namespace hesse::optim
