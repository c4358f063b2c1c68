// A network, a loss and a data set as an objective of the flat parameter
// vector x, with every tier of hesse/objective/concepts.hpp computed exactly:
//
//   value_and_gradient   forward pass, backpropagation
//   hessian_vector       Pearlmutter's R-op: forward, R-forward, then the
//                        backward pass and its R-op in one sweep (no finite
//                        differences)
//   gauss_newton_vector  G v = J^T H_loss J v: R-forward (J v), the loss
//                        Hessian, one ordinary backward pass (Schraudolph 2002)
//   hessian              dense, from n Hessian-vector products (small n only)
//
// The objective is the mean loss over the selected samples (all by default,
// or a mini-batch chosen with select_batch) plus l2/2 |x|^2. Samples are
// processed in chunks of `chunk_size` so memory stays bounded on large sets.
// Workspaces are reused: after the first call of each kind nothing is
// allocated. An objective is not thread-safe; use one per thread.
//
// Threads: the selected samples are split into one contiguous slice per
// OpenMP thread, each slice is processed with single-threaded products in one
// parallel region, and the per-thread sums are added in thread order. One
// region per call instead of one per matrix product keeps both cores busy even
// when the machine is loaded (see docs/benchmarks.md). Results are
// deterministic for a given thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hesse/core/function_ref.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/nn/loss.hpp"
#include "hesse/nn/sequential.hpp"

namespace hesse::nn {

struct NetworkObjectiveOptions {
  Index chunk_size = 2048;            ///< samples per pass; bounds activation memory
  double l2 = 0;                      ///< adds l2/2 |x|^2 to the objective
  Index max_dense_dimension = 20000;  ///< hessian() refuses larger models
  int threads = 0;                    ///< 0: all OpenMP threads (omp_get_max_threads)
  Index min_samples_per_thread = 16;  ///< below this, one slice with Eigen's own threading
  void validate() const;
};

/// Which labels the backward pass of a Fisher statistic uses.
enum class FisherKind {
  True,       ///< labels drawn from the model's predictive distribution (Martens & Grosse 2015)
  Empirical,  ///< the data's own labels (the empirical Fisher)
};

/// Per-layer second moments of a Dense layer's inputs and output gradients,
/// in Sequential::parameter_blocks() order (Martens & Grosse 2015, sec. 3):
///   A[l] = mean_i abar_i abar_i^T, abar_i = [a_i; 1]: [cols + 1, cols + 1]
///   G[l] = mean_i g_i g_i^T, g_i = d loss_i / d s_i:  [rows, rows]
/// where a_i is the layer's input and s_i = W a_i + b its output for sample
/// i. The block's parameters [W b] read column-major are exactly its slice
/// of the flat vector, so its Fisher block is approximately A[l] (x) G[l].
template <class T>
struct KroneckerFactors {
  std::vector<Matrix<T>> A;
  std::vector<Matrix<T>> G;
};

template <class T>
class NetworkObjective {
 public:
  using Scalar = T;

  /// Keeps a reference to `data`, which must outlive the objective.
  NetworkObjective(Sequential<T> network, LossKind loss, const data::Dataset<T>& data,
                   NetworkObjectiveOptions options = {});

  Index dimension() const { return network_.num_parameters(); }
  Index num_samples() const { return data_->num_samples(); }
  Index num_selected() const { return all_selected_ ? num_samples() : Index(batch_.size()); }
  /// Restricts every evaluation to these samples (copied); throws on an index out of range.
  void select_batch(std::span<const Index> indices);
  void select_all();

  T value(const Vector<T>& x);
  T value_and_gradient(const Vector<T>& x, Vector<T>* gradient);
  /// What runs on a team of threads once a gradient is complete: every
  /// member calls it with the loss and `shared`. With `shared` the members
  /// are a team of more than one inside a parallel region and share work
  /// through orphaned `omp for` loops; without it one thread does all.
  using AfterGradient = FunctionRef<void(T loss, bool shared)>;
  /// value_and_gradient, then `then` on the gradient pass's own threads,
  /// after a barrier, instead of in a parallel region of the caller's: with
  /// OMP_WAIT_POLICY=PASSIVE the threads would fall asleep at the end of one
  /// region and be woken for the next (K-FAC's and Shampoo's
  /// preconditioning; docs/nn.md, "Work after the gradient"). The loss and
  /// gradient are those value_and_gradient returns, bit for bit; the return
  /// value is the loss.
  T value_and_gradient_then(const Vector<T>& x, Vector<T>& gradient, const AfterGradient& then);
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Hv);
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Gv);
  void hessian(const Vector<T>& x, Matrix<T>& H);

  /// Mean loss over the selected samples (with their real labels) and the
  /// Kronecker factors of the Fisher; also the gradient when `gradient` is
  /// not null, from the same forward pass. The true Fisher's labels come from
  /// `rng`, drawn in a fixed order, so results do not depend on the threads.
  T kronecker_factors(const Vector<T>& x, FisherKind kind, Rng& rng, KroneckerFactors<T>& factors,
                      Vector<T>* gradient);

  /// K-FAC's statistics step: the factors of kronecker_factors folded into
  /// exponential moving averages and kept to their lower triangles. For every
  /// block b,
  ///   lower(out.A[b]) = decay lower(previous->A[b]) + (1 - decay) lower(A_b),
  /// A_b the batch's factor (out = the batch's factors when `previous` is
  /// null), and likewise G; the strictly upper triangles of out are not
  /// written (zero when out is sized here, as on a first call). When every
  /// thread's slice of the selection is one chunk (a mini-batch), each A is
  /// formed after the slices by panels of 64 columns of its lower triangle,
  /// shared out over the same threads: the slices' inputs X_t multiplied
  /// straight into out, then the mean, the average and the NaN/Inf check
  /// while the panel is in cache; no per-thread copies of A and no serial
  /// reduction (on the benchmark network the first layer's A is 785 x 785).
  /// Otherwise, and always for G, the slices' lower-triangular sums are
  /// added, scaled, averaged and checked in one pass. Returns the mean loss (and the
  /// gradient, as kronecker_factors); `nonfinite_block` is the first block
  /// with a NaN or Inf in out, -1 when there is none. `previous` must have the
  /// factors' shapes and must not be `&out`; 0 <= decay < 1.
  T kronecker_factor_averages(const Vector<T>& x, FisherKind kind, Rng& rng,
                              const KroneckerFactors<T>* previous, double decay,
                              KroneckerFactors<T>& out, Vector<T>* gradient,
                              Index& nonfinite_block);

  /// The gradient of the mean loss over the selected samples with targets
  /// drawn from the model (nn::sample_targets) instead of the data's; its
  /// outer product estimates the Gauss-Newton matrix (Sophia's GNB
  /// estimator). Returns the mean loss with the data's real labels.
  T sampled_target_gradient(const Vector<T>& x, Rng& rng, Vector<T>& gradient);

  /// Whether squared_gradient_sum can run: every layer with parameters is
  /// Dense (a user's own parametrised layer makes it refuse).
  bool has_squared_gradient_sum() const { return squares_supported_; }

  /// out = sum over the selected samples i of (grad f_i(x))^2 entrywise, f_i
  /// the objective on sample i alone (its loss plus l2/2 |x|^2): what a loop
  /// of single-sample value_and_gradient calls would square and add, from one
  /// forward and one backward pass over the selection. For a Dense layer with
  /// per-sample output adjoints D: [rows, B] and inputs A: [cols, B],
  ///   sum_i (d_i a_i^T) o (d_i a_i^T) = (D o D)(A o A)^T,
  /// and the bias part is the row sums of D o D (the per-sample second moment
  /// of BackPACK, Dangel et al. 2020). With l2 > 0,
  ///   sum_i (g_i + l2 x)^2 = sum_i g_i^2 + 2 l2 x o sum_i g_i + B l2^2 x^2.
  /// Returns the mean loss and, when `gradient` is not null, writes the mean
  /// gradient as value_and_gradient would. Hessian-free's diagonal
  /// preconditioner (Martens 2010 sect. 4.7) is its main user. Throws
  /// InvalidArgument when has_squared_gradient_sum() is false.
  T squared_gradient_sum(const Vector<T>& x, Vector<T>& out, Vector<T>* gradient = nullptr);

  /// Fraction of selected samples whose predicted class is the label
  /// (classification only; for one output the threshold is 0).
  double accuracy(const Vector<T>& x);

  const Sequential<T>& network() const { return network_; }
  std::vector<optim::ParameterBlock> parameter_blocks() const {
    return network_.parameter_blocks();
  }
  LossKind loss() const { return loss_; }
  const data::Dataset<T>& data() const { return *data_; }
  const NetworkObjectiveOptions& options() const { return options_; }

 private:
  enum class Pass {
    Value,
    Gradient,
    HessianVector,
    GaussNewtonVector,
    Kronecker,
    SampledGradient,
    SquaredGradient,
  };

  // Everything one thread needs for its slice of the samples.
  // What a chunk of one size needs (each matrix has the chunk's columns).
  struct Buffers {
    Index cols = -1;  // the chunk size these were last used for
    std::vector<Matrix<T>> activations, r_activations;
    Matrix<T> delta[2], r_delta[2];
    Matrix<T> gathered_x, gathered_y, sampled_y;
  };
  struct Workspace {
    // Three sets of chunk buffers, so that selections cycling through up to
    // three sizes (a batch and its curvature subset or overlap; stochastic
    // L-BFGS's head, middle and tail parts of a batch) reuse their matrices
    // instead of resizing them at every call: use(cols) picks the set last
    // used for cols, or else the least recently used one; cur() is the
    // chunk's set.
    static constexpr int kSets = 3;
    Buffers sets[kSets];
    std::uint64_t last_used[kSets] = {};
    std::uint64_t uses = 0;
    int current = 0;
    Buffers& use(Index cols) {
      if (sets[current].cols != cols) {
        int pick = 0;
        for (int k = 0; k < kSets; ++k) {
          if (sets[k].cols == cols) {
            pick = k;
            break;
          }
          if (last_used[k] < last_used[pick]) pick = k;
        }
        current = pick;
        sets[current].cols = cols;
      }
      last_used[current] = ++uses;
      return sets[current];
    }
    Buffers& cur() { return sets[current]; }
    const Buffers& cur() const { return sets[current]; }
    Vector<T> out;  // this slice's share of the gradient or product
    double loss = 0;
    // Kronecker and sampled-target passes: this slice's sums and where its
    // current chunk starts in the selection (to find the chunk's randoms).
    std::vector<Matrix<T>> a_sums, g_sums;
    bool clear_sums = false;  // zero the lower triangles of the sums before the first chunk
    // Kronecker pass with A by panels: this slice's network input (its only chunk).
    const T* input_data = nullptr;
    Index input_rows = 0, input_cols = 0, input_stride = 0;
    Index chunk_start = 0;
    // Squared-gradient pass: this slice's sum of squared per-sample
    // gradients, and room for D o D and A o A of one layer (only grows).
    Vector<T> squares, square_scratch;
  };

  // Runs `pass` over the selected samples; out receives the gradient or
  // product. Returns the loss (mean over the selected samples).
  // With a_panels, every thread then forms A by column panels (a_panels()).
  double slices_loss(int slices) const;
  double l2_term(const Vector<T>& x) const;  // l2/2 |x|^2
  // The loss and gradient passes include the l2 term. `then`: run on the
  // team once the gradient is complete (value_and_gradient_then;
  // Pass::Gradient only).
  double run(Pass pass, const Vector<T>& x, const Vector<T>* v, Vector<T>* out,
             bool a_panels = false, const AfterGradient* then = nullptr);
  // Samples [begin, end) of the selection, chunk by chunk, into ws.loss and `out`.
  void run_slice(Workspace& ws, Pass pass, const T* x, const T* v, T* out, Index begin, Index end,
                 T scale);
  void chunk(Workspace& ws, Pass pass, const T* x, const T* v, T* out, ConstRef<T> X, ConstRef<T> Y,
             T scale);
  void forward(Workspace& ws, const T* x, ConstRef<T> X);
  void r_forward(Workspace& ws, const T* x, const T* v, ConstRef<T> X);
  int slices_for(Index samples) const;
  void check_sizes(const Vector<T>& x, const Vector<T>* v, const char* call) const;
  void draw_randoms(Rng& rng, bool normal);
  // The Kronecker pass into the used workspaces' lower-triangular sums;
  // returns the loss and the number of slices used.
  // The slices used are kron_slices_.
  double kronecker_pass(const Vector<T>& x, FisherKind kind, Rng& rng, Vector<T>* gradient);
  // The Kronecker pass's A factors when every slice is one chunk: after the
  // slices, column panels of each A's lower triangle, shared out over the
  // threads (an orphaned omp for), each panel the products of the slices'
  // inputs folded into the averages (kron_out_, kron_previous_).
  void a_panels();
  void a_panel(std::size_t p);
  // The mean and the moving average of column j of a factor's lower
  // triangle (rows j ..), in place; returns its x * 0 sum (0 exactly when
  // every entry is finite). `old` is null for no average.
  template <class Column>
  T average_column(Column column, T scale, const Matrix<T>* old, Index j) const;
  // Layer l's input in slice t of the last Kronecker pass.
  Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>> slice_input(int t, Index l) const;
  // squares (not null): each Dense layer adds its (D o D)(A o A)^T there.
  void backward_pass(Workspace& ws, const T* x, ConstRef<T> X, T* out, bool collect_g,
                     T* squares = nullptr);
  // squares += [(D o D)(A o A)^T, (D o D) 1] for one Dense layer's slice.
  void accumulate_squares(Workspace& ws, ConstRef<T> A, const Matrix<T>& D, T* squares);
  // Kronecker pass over one chunk, after the forward pass.
  void kronecker_chunk(Workspace& ws, const T* x, T* out, ConstRef<T> X, ConstRef<T> Y, T scale);

  Sequential<T> network_;
  LossKind loss_;
  const data::Dataset<T>* data_;
  NetworkObjectiveOptions options_;
  bool all_selected_ = true;
  std::vector<Index> batch_;

  std::vector<Workspace> workspaces_;  // one per thread
  std::vector<Index> block_of_layer_;  // Dense layer -> parameter block, -1 otherwise
  // A by panels: the panels (block, its layer, first column, width), each
  // panel's NaN check, and the averaging the pass was asked for.
  struct Panel {
    std::size_t block = 0;
    Index layer = 0, begin = 0, width = 0;
  };
  std::vector<Panel> panels_;
  std::vector<T> panel_checks_;
  bool a_by_panels_ = false;
  int kron_slices_ = 1;
  const KroneckerFactors<T>* kron_previous_ = nullptr;
  KroneckerFactors<T>* kron_out_ = nullptr;
  T kron_keep_ = 0, kron_take_ = 1;
  FisherKind fisher_kind_ = FisherKind::True;
  std::vector<double> randoms_;  // per selected sample, drawn before a pass
  Vector<T> unit_, column_;
  bool squares_supported_ = true;  // no parametrised layer but Dense
  Vector<T> gradient_sum_;         // sum_i g_i for the l2 cross term
};

extern template class NetworkObjective<float>;
extern template class NetworkObjective<double>;

}  // namespace hesse::nn
