#include "hesse/nn/network_objective.hpp"

#include <omp.h>

#include <algorithm>
#include <random>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::nn {

void NetworkObjectiveOptions::validate() const {
  HESSE_REQUIRE(chunk_size > 0, "NetworkObjectiveOptions.chunk_size = " +
                                    std::to_string(chunk_size) + ": must be positive");
  HESSE_REQUIRE(l2 >= 0,
                "NetworkObjectiveOptions.l2 = " + std::to_string(l2) + ": must be non-negative");
  HESSE_REQUIRE(max_dense_dimension > 0,
                "NetworkObjectiveOptions.max_dense_dimension must be positive");
  HESSE_REQUIRE(threads >= 0, "NetworkObjectiveOptions.threads = " + std::to_string(threads) +
                                  ": must be >= 0 (0: all OpenMP threads)");
  HESSE_REQUIRE(min_samples_per_thread > 0, "NetworkObjectiveOptions.min_samples_per_thread = " +
                                                std::to_string(min_samples_per_thread) +
                                                ": must be positive");
}

template <class T>
NetworkObjective<T>::NetworkObjective(Sequential<T> network, LossKind loss,
                                      const data::Dataset<T>& data, NetworkObjectiveOptions options)
    : network_(std::move(network)), loss_(loss), data_(&data), options_(options) {
  options_.validate();
  HESSE_REQUIRE(network_.num_layers() > 0, "network objective: the network has no layers");
  HESSE_REQUIRE(!data.is_sparse(),
                "network objective: data set '" + data.name +
                    "' has sparse features; networks need dense ones (to_dense())");
  HESSE_REQUIRE(data.num_samples() > 0, "network objective: data set '" + data.name + "' is empty");
  HESSE_REQUIRE(data.features.cols() == data.targets.cols(),
                "network objective: data set '" + data.name + "' has " +
                    std::to_string(data.features.cols()) + " feature columns but " +
                    std::to_string(data.targets.cols()) + " targets");
  HESSE_REQUIRE(data.num_features() == network_.input_size(),
                "network objective: the network takes " + std::to_string(network_.input_size()) +
                    " inputs but data set '" + data.name + "' has " +
                    std::to_string(data.num_features()) + " features");
  validate_loss(loss, network_.output_size(), data.targets.rows(), data.num_classes);
  const auto layers = static_cast<std::size_t>(network_.num_layers());
  workspaces_.resize(
      static_cast<std::size_t>(options_.threads > 0 ? options_.threads : omp_get_max_threads()));
  for (Workspace& ws : workspaces_)
    for (Buffers& set : ws.sets) {
      set.activations.resize(layers);
      set.r_activations.resize(layers);
    }
  block_of_layer_.assign(layers, -1);
  const auto blocks = network_.parameter_blocks();
  for (std::size_t b = 0; b < blocks.size(); ++b)
    block_of_layer_[static_cast<std::size_t>(blocks[b].layer)] = Index(b);
  // A's lower triangle by panels of 64 columns (the first, longest, first).
  constexpr Index kPanelColumns = 64;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const Index size = blocks[b].cols + 1;
    for (Index j = 0; j < size; j += kPanelColumns)
      panels_.push_back({b, blocks[b].layer, j, std::min(kPanelColumns, size - j)});
  }
  std::stable_sort(panels_.begin(), panels_.end(), [&](const Panel& p, const Panel& q) {
    return (blocks[p.block].cols + 1 - p.begin) * p.width >
           (blocks[q.block].cols + 1 - q.begin) * q.width;
  });
  panel_checks_.assign(panels_.size(), T(0));
  for (Index l = 0; l < network_.num_layers(); ++l)
    if (network_.layer(l).num_parameters() > 0 &&
        (dynamic_cast<const Dense<T>*>(&network_.layer(l)) == nullptr ||
         block_of_layer_[static_cast<std::size_t>(l)] < 0))
      squares_supported_ = false;
}

template <class T>
void NetworkObjective<T>::select_batch(std::span<const Index> indices) {
  HESSE_REQUIRE(!indices.empty(), "select_batch: empty batch");
  for (const Index i : indices)
    HESSE_REQUIRE(i >= 0 && i < num_samples(), "select_batch: sample index " + std::to_string(i) +
                                                   " out of range [0, " +
                                                   std::to_string(num_samples()) + ")");
  batch_.assign(indices.begin(), indices.end());
  all_selected_ = false;
}

template <class T>
void NetworkObjective<T>::select_all() {
  all_selected_ = true;
  batch_.clear();
}

template <class T>
void NetworkObjective<T>::check_sizes(const Vector<T>& x, const Vector<T>* v,
                                      const char* call) const {
  HESSE_REQUIRE(x.size() == dimension(), std::string(call) + ": x has " + std::to_string(x.size()) +
                                             " entries, the network has " +
                                             std::to_string(dimension()) + " parameters");
  if (v)
    HESSE_REQUIRE(v->size() == dimension(), std::string(call) + ": v has " +
                                                std::to_string(v->size()) + " entries, expected " +
                                                std::to_string(dimension()));
}

// Forward pass: activations[l] = layer_l(activations[l-1]), activations[-1] = X.
template <class T>
void NetworkObjective<T>::forward(Workspace& ws, const T* x, ConstRef<T> X) {
  for (Index l = 0; l < network_.num_layers(); ++l) {
    const auto i = static_cast<std::size_t>(l);
    network_.layer(l).forward(x + network_.parameter_offset(l),
                              l == 0 ? X : ConstRef<T>(ws.cur().activations[i - 1]),
                              ws.cur().activations[i]);
  }
}

// R-forward pass: r_activations[l] = d/de activations[l](x + e v). The data
// do not depend on x, so the first layer gets RX = null (zero).
template <class T>
void NetworkObjective<T>::r_forward(Workspace& ws, const T* x, const T* v, ConstRef<T> X) {
  for (Index l = 0; l < network_.num_layers(); ++l) {
    const auto i = static_cast<std::size_t>(l);
    const Index offset = network_.parameter_offset(l);
    network_.layer(l).r_forward(x + offset, v + offset,
                                l == 0 ? X : ConstRef<T>(ws.cur().activations[i - 1]),
                                l == 0 ? nullptr : &ws.cur().r_activations[i - 1],
                                ws.cur().activations[i], ws.cur().r_activations[i]);
  }
}

template <class T>
void NetworkObjective<T>::chunk(Workspace& ws, Pass pass, const T* x, const T* v, T* out,
                                ConstRef<T> X, ConstRef<T> Y, T scale) {
  const Index layers = network_.num_layers();
  const auto last = static_cast<std::size_t>(layers - 1);
  forward(ws, x, X);
  const Matrix<T>& outputs = ws.cur().activations[last];
  auto input_of = [&](Index l) {
    return l == 0 ? X : ConstRef<T>(ws.cur().activations[static_cast<std::size_t>(l - 1)]);
  };

  switch (pass) {
    case Pass::Value:
      ws.loss += loss_value_and_gradient<T>(loss_, outputs, Y, scale, nullptr);
      return;

    case Pass::Gradient:
    case Pass::GaussNewtonVector: {
      // Gradient: backpropagate dL/dZ. Gauss-Newton: backpropagate
      // u = H_loss (J v) instead, which gives J^T H_loss J v.
      if (pass == Pass::Gradient) {
        ws.loss += loss_value_and_gradient<T>(loss_, outputs, Y, scale, &ws.cur().delta[0]);
      } else {
        r_forward(ws, x, v, X);
        loss_hessian_product<T>(loss_, outputs, Y, ws.cur().r_activations[last], scale,
                                ws.cur().delta[0]);
      }
      backward_pass(ws, x, X, out, false);
      return;
    }

    case Pass::Kronecker:
      kronecker_chunk(ws, x, out, X, Y, scale);
      return;

    case Pass::SampledGradient: {
      ws.loss += loss_value_and_gradient<T>(loss_, outputs, Y, scale, nullptr);
      const Index per = randoms_per_sample(loss_, outputs.rows());
      sample_targets<T>(loss_, outputs, randoms_.data() + ws.chunk_start * per, ws.cur().sampled_y);
      loss_value_and_gradient<T>(loss_, outputs, ws.cur().sampled_y, scale, &ws.cur().delta[0]);
      backward_pass(ws, x, X, out, false);
      return;
    }

    case Pass::SquaredGradient:
      // scale = 1 (see run): column i of the adjoints is sample i's own
      // gradient, as in a single-sample call.
      ws.loss += loss_value_and_gradient<T>(loss_, outputs, Y, scale, &ws.cur().delta[0]);
      backward_pass(ws, x, X, out, false, ws.squares.data());
      return;

    case Pass::HessianVector: {
      // Pearlmutter (1994): differentiate the backward pass along v.
      int current = 0;
      ws.loss += loss_value_and_gradient<T>(loss_, outputs, Y, scale, &ws.cur().delta[current]);
      r_forward(ws, x, v, X);
      loss_hessian_product<T>(loss_, outputs, Y, ws.cur().r_activations[last], scale,
                              ws.cur().r_delta[current]);
      for (Index l = layers - 1; l >= 0; --l) {
        const auto i = static_cast<std::size_t>(l);
        const Index offset = network_.parameter_offset(l);
        network_.layer(l).r_backward(
            x + offset, v + offset, input_of(l), l > 0 ? &ws.cur().r_activations[i - 1] : nullptr,
            ws.cur().activations[i], ws.cur().r_activations[i], ws.cur().delta[current],
            ws.cur().r_delta[current], l > 0 ? &ws.cur().delta[1 - current] : nullptr,
            l > 0 ? &ws.cur().r_delta[1 - current] : nullptr, out + offset, nullptr);
        current = 1 - current;
      }
      return;
    }
  }
}

// Backpropagates ws.cur().delta[0] (the adjoint of the outputs) through every
// layer; out += the parameters' adjoint unless null. With collect_g, each
// Dense layer's output adjoint dS is also summed as dS dS^T into g_sums.
template <class T>
void NetworkObjective<T>::backward_pass(Workspace& ws, const T* x, ConstRef<T> X, T* out,
                                        bool collect_g, T* squares) {
  int current = 0;
  for (Index l = network_.num_layers() - 1; l >= 0; --l) {
    const auto i = static_cast<std::size_t>(l);
    if (collect_g && block_of_layer_[i] >= 0) {
      Matrix<T>& sum = ws.g_sums[static_cast<std::size_t>(block_of_layer_[i])];
      sum.template selfadjointView<Eigen::Lower>().rankUpdate(ws.cur().delta[current]);
    }
    const Index offset = network_.parameter_offset(l);
    if (squares && block_of_layer_[i] >= 0)
      accumulate_squares(ws, l == 0 ? X : ConstRef<T>(ws.cur().activations[i - 1]),
                         ws.cur().delta[current], squares + offset);
    network_.layer(l).backward(x + offset, l == 0 ? X : ConstRef<T>(ws.cur().activations[i - 1]),
                               ws.cur().activations[i], ws.cur().delta[current],
                               l > 0 ? &ws.cur().delta[1 - current] : nullptr,
                               out ? out + offset : nullptr);
    current = 1 - current;
  }
}

// Sample i's gradient of a Dense layer is [d_i a_i^T, d_i], so the sum of
// its squares is (D o D)(A o A)^T and the row sums of D o D: one GEMM of the
// size of the gradient's (Dangel et al. 2020, BackPACK's second moment).
template <class T>
void NetworkObjective<T>::accumulate_squares(Workspace& ws, ConstRef<T> A, const Matrix<T>& D,
                                             T* squares) {
  const Index rows = D.rows(), cols = A.rows(), batch = D.cols();
  if (ws.square_scratch.size() < (rows + cols) * batch)
    ws.square_scratch.resize((rows + cols) * batch);
  MatrixMap<T> D2(ws.square_scratch.data(), rows, batch);
  MatrixMap<T> A2(ws.square_scratch.data() + rows * batch, cols, batch);
  D2 = D.array().square().matrix();
  A2 = A.array().square().matrix();
  MatrixMap<T>(squares, rows, cols).noalias() += D2 * A2.transpose();
  VectorMap<T>(squares + rows * cols, rows) += D2.rowwise().sum();
}

// Martens & Grosse (2015), sec. 3: A from each Dense layer's input with a
// homogeneous 1 for the bias; G from a backward pass whose labels are drawn
// from the model (true Fisher) or are the data's (empirical Fisher).
template <class T>
void NetworkObjective<T>::kronecker_chunk(Workspace& ws, const T* x, T* out, ConstRef<T> X,
                                          ConstRef<T> Y, T scale) {
  const Matrix<T>& outputs = ws.cur().activations.back();
  if (ws.clear_sums) {  // this slice's first chunk: only the lower triangles are ever read
    if (!a_by_panels_)
      for (Matrix<T>& sum : ws.a_sums) sum.template triangularView<Eigen::Lower>().setZero();
    for (Matrix<T>& sum : ws.g_sums) sum.template triangularView<Eigen::Lower>().setZero();
    ws.clear_sums = false;
  }
  if (a_by_panels_) {
    // The slice is this one chunk; its inputs stay in the workspace for a_panels().
    ws.input_data = X.data();
    ws.input_rows = X.rows();
    ws.input_cols = X.cols();
    ws.input_stride = X.outerStride();
  }
  for (Index l = 0; l < network_.num_layers() && !a_by_panels_; ++l) {
    const Index b = block_of_layer_[static_cast<std::size_t>(l)];
    if (b < 0) continue;
    ConstRef<T> input =
        l == 0 ? X : ConstRef<T>(ws.cur().activations[static_cast<std::size_t>(l - 1)]);
    Matrix<T>& sum = ws.a_sums[static_cast<std::size_t>(b)];
    const Index c = input.rows();
    sum.topLeftCorner(c, c).template selfadjointView<Eigen::Lower>().rankUpdate(input);
    sum.row(c).head(c) += input.rowwise().sum().transpose();
    sum(c, c) += T(input.cols());
  }
  const bool empirical = fisher_kind_ == FisherKind::Empirical;
  ws.loss += loss_value_and_gradient<T>(loss_, outputs, Y, scale,
                                        out || empirical ? &ws.cur().delta[0] : nullptr);
  if (out || empirical) backward_pass(ws, x, X, out, empirical);
  if (!empirical) {
    const Index per = randoms_per_sample(loss_, outputs.rows());
    sample_targets<T>(loss_, outputs, randoms_.data() + ws.chunk_start * per, ws.cur().sampled_y);
    loss_value_and_gradient<T>(loss_, outputs, ws.cur().sampled_y, scale, &ws.cur().delta[0]);
    backward_pass(ws, x, X, nullptr, true);
  }
}

template <class T>
void NetworkObjective<T>::draw_randoms(Rng& rng, bool normal) {
  const Index per = randoms_per_sample(loss_, network_.output_size());
  randoms_.resize(static_cast<std::size_t>(num_selected() * per));
  if (normal) {
    std::normal_distribution<double> draw(0.0, 1.0);
    for (double& r : randoms_) r = draw(rng);
  } else {
    std::uniform_real_distribution<double> draw(0.0, 1.0);
    for (double& r : randoms_) r = draw(rng);
  }
}

template <class T>
double NetworkObjective<T>::kronecker_pass(const Vector<T>& x, FisherKind kind, Rng& rng,
                                           Vector<T>* gradient) {
  const auto blocks = network_.parameter_blocks();
  fisher_kind_ = kind;
  if (kind == FisherKind::True) draw_randoms(rng, loss_ == LossKind::MeanSquaredError);
  const Index selected = num_selected();
  const int slices = slices_for(selected);
  // When every slice is a single chunk its inputs are all still there after
  // the slices, and A is formed by panels of its own (no per-slice sums).
  a_by_panels_ = (selected + slices - 1) / slices <= options_.chunk_size;
  kron_slices_ = slices;
  // Sized here, zeroed by each slice on its own thread (kronecker_chunk).
  for (int t = 0; t < slices; ++t) {
    Workspace& ws = workspaces_[static_cast<std::size_t>(t)];
    ws.a_sums.resize(blocks.size());
    ws.g_sums.resize(blocks.size());
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const Index a = blocks[b].cols + 1, g = blocks[b].rows;
      if (!a_by_panels_ && (ws.a_sums[b].rows() != a || ws.a_sums[b].cols() != a))
        ws.a_sums[b].resize(a, a);
      if (ws.g_sums[b].rows() != g || ws.g_sums[b].cols() != g) ws.g_sums[b].resize(g, g);
    }
    ws.clear_sums = true;
  }
  return run(Pass::Kronecker, x, nullptr, gradient, a_by_panels_);
}

template <class T>
Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>> NetworkObjective<T>::slice_input(
    int t, Index l) const {
  const Workspace& ws = workspaces_[static_cast<std::size_t>(t)];
  if (l == 0)
    return {ws.input_data, ws.input_rows, ws.input_cols, Eigen::OuterStride<>(ws.input_stride)};
  const Matrix<T>& a = ws.cur().activations[static_cast<std::size_t>(l - 1)];
  return {a.data(), a.rows(), a.cols(), Eigen::OuterStride<>(a.rows())};
}

template <class T>
void NetworkObjective<T>::a_panels() {
  const auto count = static_cast<std::ptrdiff_t>(panels_.size());
  // Orphaned: shared out over the enclosing region's threads, or all on the
  // calling thread outside one. Each panel is the same arithmetic whichever
  // thread takes it.
#pragma omp for schedule(dynamic, 1)
  for (std::ptrdiff_t p = 0; p < count; ++p) a_panel(static_cast<std::size_t>(p));
}

// Columns [j0, j0 + w) of A's lower triangle (rows j0 ..): the slices'
// inputs X_t [c, n_t] give X X^T (rows and columns < c), their row sums (row
// c, the homogeneous coordinate) and n (A(c, c)); then the mean, the moving
// average and the NaN/Inf check, column by column.
template <class T>
void NetworkObjective<T>::a_panel(std::size_t index) {
  const Panel& p = panels_[index];
  Matrix<T>& A = kron_out_->A[p.block];
  const Index size = A.rows(), c = size - 1, j0 = p.begin, w = p.width;
  const Index rows = size - j0;
  const Index wc = std::min(w, c - j0);  // the panel's columns that are inputs (not the 1)
  auto dst = A.block(j0, j0, rows, w);
  Index n = 0;
  for (int t = 0; t < kron_slices_; ++t) {
    const auto X = slice_input(t, p.layer);
    n += X.cols();
    if (wc > 0) {
      auto products = dst.topLeftCorner(c - j0, wc);
      auto sums = dst.row(c - j0).head(wc);
      if (t == 0) {
        products.noalias() = X.middleRows(j0, c - j0) * X.middleRows(j0, wc).transpose();
        sums.noalias() = X.middleRows(j0, wc).rowwise().sum().transpose();
      } else {
        products.noalias() += X.middleRows(j0, c - j0) * X.middleRows(j0, wc).transpose();
        sums.noalias() += X.middleRows(j0, wc).rowwise().sum().transpose();
      }
    }
  }
  if (wc < w) dst(c - j0, wc) = static_cast<T>(n);  // the panel holds column c
  const T scale = T(1) / static_cast<T>(n);
  const Matrix<T>* old = kron_previous_ ? &kron_previous_->A[p.block] : nullptr;
  T check = 0;
  for (Index k = 0; k < w; ++k) {
    dst.col(k).head(k).setZero();  // the product's strictly upper part in the diagonal block
    check += average_column(dst.col(k).tail(rows - k), scale, old, j0 + k);
  }
  panel_checks_[index] = check;
}

template <class T>
template <class Column>
T NetworkObjective<T>::average_column(Column column, T scale, const Matrix<T>* old, Index j) const {
  column *= scale;
  if (old) column = kron_keep_ * old->col(j).tail(column.size()) + kron_take_ * column;
  return (column.array() * T(0)).sum();
}

template <class T>
T NetworkObjective<T>::kronecker_factor_averages(const Vector<T>& x, FisherKind kind, Rng& rng,
                                                 const KroneckerFactors<T>* previous, double decay,
                                                 KroneckerFactors<T>& out, Vector<T>* gradient,
                                                 Index& nonfinite_block) {
  check_sizes(x, nullptr, "kronecker_factor_averages");
  const auto blocks = network_.parameter_blocks();
  if (previous) {
    HESSE_REQUIRE(previous != &out, "kronecker_factor_averages: previous and out are the same");
    HESSE_REQUIRE(decay >= 0 && decay < 1, "kronecker_factor_averages: decay = " +
                                               std::to_string(decay) + " is not in [0, 1)");
    HESSE_REQUIRE(previous->A.size() == blocks.size() && previous->G.size() == blocks.size(),
                  "kronecker_factor_averages: previous has " + std::to_string(previous->A.size()) +
                      " blocks, the network " + std::to_string(blocks.size()));
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const Index a = blocks[b].cols + 1, g = blocks[b].rows;
      HESSE_REQUIRE(previous->A[b].rows() == a && previous->A[b].cols() == a &&
                        previous->G[b].rows() == g && previous->G[b].cols() == g,
                    "kronecker_factor_averages: the previous factors of block " +
                        std::to_string(b) + " are not " + std::to_string(a) + " x " +
                        std::to_string(a) + " and " + std::to_string(g) + " x " +
                        std::to_string(g));
    }
  }
  out.A.resize(blocks.size());
  out.G.resize(blocks.size());
  for (std::size_t b = 0; b < blocks.size(); ++b) {  // a_panel writes into out.A
    const Index size = blocks[b].cols + 1;
    if (out.A[b].rows() != size || out.A[b].cols() != size) out.A[b].setZero(size, size);
  }
  kron_previous_ = previous;
  kron_out_ = &out;
  kron_keep_ = static_cast<T>(previous ? decay : 0.0);
  kron_take_ = T(1) - kron_keep_;
  double loss = kronecker_pass(x, kind, rng, gradient);
  const int slices = kron_slices_;
  kron_out_ = nullptr;
  kron_previous_ = nullptr;
  // The slices' sums in a fixed order, then means. The output adjoints carry
  // the 1/N of the mean loss: g_i = N dS_i, so mean_i g_i g_i^T = N sum_i
  // dS_i dS_i^T. Column by column, each column's passes run in cache.
  const T n = static_cast<T>(num_selected());
  nonfinite_block = -1;
  const auto reduce = [&](Matrix<T>& dst, const Matrix<T>* old,
                          std::vector<Matrix<T>> Workspace::*sums, std::size_t b, T scale) {
    const Index size = (workspaces_.front().*sums)[b].rows();
    if (dst.rows() != size || dst.cols() != size) dst.setZero(size, size);
    T check = 0;
    for (Index j = 0; j < size; ++j) {
      auto column = dst.col(j).tail(size - j);
      column = (workspaces_.front().*sums)[b].col(j).tail(size - j);
      for (int t = 1; t < slices; ++t)
        column += (workspaces_[static_cast<std::size_t>(t)].*sums)[b].col(j).tail(size - j);
      check += average_column(column, scale, old, j);
    }
    if (check != T(0) && nonfinite_block < 0) nonfinite_block = static_cast<Index>(b);
  };
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    if (a_by_panels_) {  // A is done: its panels' checks
      T check = 0;
      for (std::size_t p = 0; p < panels_.size(); ++p)
        if (panels_[p].block == b) check += panel_checks_[p];
      if (check != T(0) && nonfinite_block < 0) nonfinite_block = static_cast<Index>(b);
    } else {
      reduce(out.A[b], previous ? &previous->A[b] : nullptr, &Workspace::a_sums, b, T(1) / n);
    }
    reduce(out.G[b], previous ? &previous->G[b] : nullptr, &Workspace::g_sums, b, n);
  }
  if (options_.l2 > 0) {
    loss += 0.5 * options_.l2 * static_cast<double>(x.squaredNorm());
    if (gradient) *gradient += static_cast<T>(options_.l2) * x;
  }
  return static_cast<T>(loss);
}

template <class T>
T NetworkObjective<T>::kronecker_factors(const Vector<T>& x, FisherKind kind, Rng& rng,
                                         KroneckerFactors<T>& factors, Vector<T>* gradient) {
  check_sizes(x, nullptr, "kronecker_factors");
  Index nonfinite = -1;
  const T loss =
      kronecker_factor_averages(x, kind, rng, nullptr, 0.0, factors, gradient, nonfinite);
  for (Matrix<T>& F : factors.A) F = F.template selfadjointView<Eigen::Lower>();
  for (Matrix<T>& F : factors.G) F = F.template selfadjointView<Eigen::Lower>();
  return loss;
}

template <class T>
T NetworkObjective<T>::sampled_target_gradient(const Vector<T>& x, Rng& rng, Vector<T>& gradient) {
  check_sizes(x, nullptr, "sampled_target_gradient");
  draw_randoms(rng, loss_ == LossKind::MeanSquaredError);
  double loss = run(Pass::SampledGradient, x, nullptr, &gradient);
  if (options_.l2 > 0) loss += 0.5 * options_.l2 * static_cast<double>(x.squaredNorm());
  return static_cast<T>(loss);
}

template <class T>
T NetworkObjective<T>::squared_gradient_sum(const Vector<T>& x, Vector<T>& out,
                                            Vector<T>* gradient) {
  check_sizes(x, nullptr, "squared_gradient_sum");
  if (!squares_supported_) {
    for (Index l = 0; l < network_.num_layers(); ++l)
      if (network_.layer(l).num_parameters() > 0 &&
          dynamic_cast<const Dense<T>*>(&network_.layer(l)) == nullptr)
        throw InvalidArgument("squared_gradient_sum: layer " + std::to_string(l) + " (" +
                              network_.layer(l).describe() +
                              ") has parameters but is not Dense; the one-pass rule covers "
                              "Dense layers only (take single-sample gradients instead)");
    throw InvalidArgument("squared_gradient_sum: a parametrised layer is not a parameter block");
  }
  const double l2 = options_.l2;
  const Index n = dimension();
  // sum_i g_i, for `gradient` and for the l2 cross term.
  Vector<T>* sum = gradient ? gradient : (l2 > 0 ? &gradient_sum_ : nullptr);
  for (Workspace& ws : workspaces_) ws.squares.setZero(n);
  double loss = run(Pass::SquaredGradient, x, nullptr, sum);
  out = workspaces_.front().squares;  // fixed order; unused workspaces hold zeros
  for (std::size_t t = 1; t < workspaces_.size(); ++t) out += workspaces_[t].squares;
  const double samples = static_cast<double>(num_selected());
  loss /= samples;
  if (l2 > 0) {
    const T lambda = static_cast<T>(l2);
    out.array() += (T(2) * lambda) * x.array() * sum->array() +
                   (static_cast<T>(samples) * lambda * lambda) * x.array().square();
    loss += 0.5 * l2 * static_cast<double>(x.squaredNorm());
  }
  if (gradient) {
    *gradient /= static_cast<T>(samples);
    if (l2 > 0) *gradient += static_cast<T>(l2) * x;
  }
  return static_cast<T>(loss);
}

template <class T>
int NetworkObjective<T>::slices_for(Index samples) const {
  const Index by_size = samples / options_.min_samples_per_thread;
  return static_cast<int>(std::max<Index>(1, std::min<Index>(Index(workspaces_.size()), by_size)));
}

template <class T>
void NetworkObjective<T>::run_slice(Workspace& ws, Pass pass, const T* x, const T* v, T* out,
                                    Index begin, Index end, T scale) {
  const data::Dataset<T>& data = *data_;
  for (Index start = begin; start < end; start += options_.chunk_size) {
    const Index count = std::min(options_.chunk_size, end - start);
    ws.use(count);
    ws.chunk_start = start;
    if (all_selected_) {
      chunk(ws, pass, x, v, out, data.features.middleCols(start, count),
            data.targets.middleCols(start, count), scale);
    } else {
      ws.cur().gathered_x.resize(data.features.rows(), count);
      ws.cur().gathered_y.resize(data.targets.rows(), count);
      for (Index j = 0; j < count; ++j) {
        const Index sample = batch_[static_cast<std::size_t>(start + j)];
        ws.cur().gathered_x.col(j) = data.features.col(sample);
        ws.cur().gathered_y.col(j) = data.targets.col(sample);
      }
      chunk(ws, pass, x, v, out, ws.cur().gathered_x, ws.cur().gathered_y, scale);
    }
  }
}

template <class T>
double NetworkObjective<T>::run(Pass pass, const Vector<T>& x, const Vector<T>* v, Vector<T>* out,
                                bool a_panels, const AfterGradient* then) {
  const Index selected = num_selected();
  // The squared-gradient pass needs each sample's own gradient: weight 1.
  const T scale = pass == Pass::SquaredGradient ? T(1) : T(1) / static_cast<T>(selected);
  const T* v_data = v ? v->data() : nullptr;
  // The loss and its gradient carry the l2 term; the products add theirs.
  const bool with_l2 = pass == Pass::Gradient || pass == Pass::Value;
  const double l2 = with_l2 ? l2_term(x) : 0.0;
  const bool l2_gradient = with_l2 && options_.l2 > 0;
  const int slices = slices_for(selected);
  if (slices == 1) {
    if (out) out->setZero(dimension());
    // Too few samples to split: one slice, Eigen's products use the threads.
    Workspace& ws = workspaces_.front();
    ws.loss = 0;
    run_slice(ws, pass, x.data(), v_data, out ? out->data() : nullptr, 0, selected, scale);
    if (a_panels) this->a_panels();
    const double loss = ws.loss + l2;
    if (out && l2_gradient) *out += static_cast<T>(options_.l2) * x;
    if (!then) return loss;
    // A team of its own for `then`, as the caller would have opened.
    const int threads = static_cast<int>(workspaces_.size());
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
      (*then)(static_cast<T>(loss), omp_get_num_threads() > 1);
    } else {
      (*then)(static_cast<T>(loss), false);
    }
    return loss;
  }
  // Inside the region Eigen runs each product on the calling thread only. The
  // team may be smaller than asked (a call from inside another parallel
  // region gets one thread), so each member takes every team-th slice. Slice
  // 0 accumulates into `out` itself; after the barrier each member adds the
  // other slices' shares, in slice order, to its own range of `out`: the
  // same sums as adding whole vectors one after another, with no serial pass
  // over them after the region.
  const Index n = dimension();
#pragma omp parallel num_threads(slices)
  {
    const int team = omp_get_num_threads();
    const int member = omp_get_thread_num();
    for (int t = member; t < slices; t += team) {
      Workspace& ws = workspaces_[static_cast<std::size_t>(t)];
      ws.loss = 0;
      T* share = nullptr;
      if (out && t == 0) {
        out->setZero(n);
        share = out->data();
      } else if (out) {
        ws.out.setZero(n);
        share = ws.out.data();
      }
      run_slice(ws, pass, x.data(), v_data, share, selected * t / slices,
                selected * (t + 1) / slices, scale);
    }
    if (out || a_panels) {
#pragma omp barrier
    }
    if (out) {
      // Ranges of whole cache lines (16 floats or 8 doubles).
      constexpr Index line = 64 / static_cast<Index>(sizeof(T));
      const Index lines = (n + line - 1) / line;
      const Index begin = std::min(n, lines * member / team * line);
      const Index end = std::min(n, lines * (member + 1) / team * line);
      auto range = out->segment(begin, end - begin);
      for (int t = 1; t < slices; ++t)
        range += workspaces_[static_cast<std::size_t>(t)].out.segment(begin, end - begin);
      if (l2_gradient) range += static_cast<T>(options_.l2) * x.segment(begin, end - begin);
    }
    if (a_panels) this->a_panels();  // reads the slices' inputs, not `out`
    if (then) {
      // The gradient is complete after this barrier; every member forms the
      // same loss and the team goes on with `then` instead of sleeping.
#pragma omp barrier
      (*then)(static_cast<T>(slices_loss(slices) + l2), team > 1);
    }
  }
  return slices_loss(slices) + l2;
}

template <class T>
double NetworkObjective<T>::slices_loss(int slices) const {
  double loss = 0;
  for (int t = 0; t < slices; ++t)  // fixed order: deterministic sums
    loss += workspaces_[static_cast<std::size_t>(t)].loss;
  return loss;
}

template <class T>
double NetworkObjective<T>::l2_term(const Vector<T>& x) const {
  return options_.l2 > 0 ? 0.5 * options_.l2 * static_cast<double>(x.squaredNorm()) : 0.0;
}

template <class T>
T NetworkObjective<T>::value(const Vector<T>& x) {
  return value_and_gradient(x, nullptr);
}

template <class T>
T NetworkObjective<T>::value_and_gradient(const Vector<T>& x, Vector<T>* gradient) {
  check_sizes(x, nullptr, "value_and_gradient");
  return static_cast<T>(run(gradient ? Pass::Gradient : Pass::Value, x, nullptr, gradient));
}

template <class T>
T NetworkObjective<T>::value_and_gradient_then(const Vector<T>& x, Vector<T>& gradient,
                                               const AfterGradient& then) {
  check_sizes(x, nullptr, "value_and_gradient_then");
  return static_cast<T>(run(Pass::Gradient, x, nullptr, &gradient, false, &then));
}

template <class T>
void NetworkObjective<T>::hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Hv) {
  check_sizes(x, &v, "hessian_vector");
  run(Pass::HessianVector, x, &v, &Hv);
  if (options_.l2 > 0) Hv += static_cast<T>(options_.l2) * v;
}

template <class T>
void NetworkObjective<T>::gauss_newton_vector(const Vector<T>& x, const Vector<T>& v,
                                              Vector<T>& Gv) {
  check_sizes(x, &v, "gauss_newton_vector");
  run(Pass::GaussNewtonVector, x, &v, &Gv);
  if (options_.l2 > 0) Gv += static_cast<T>(options_.l2) * v;
}

template <class T>
void NetworkObjective<T>::hessian(const Vector<T>& x, Matrix<T>& H) {
  const Index n = dimension();
  HESSE_REQUIRE(n <= options_.max_dense_dimension,
                "hessian: the model has " + std::to_string(n) +
                    " parameters, more than max_dense_dimension = " +
                    std::to_string(options_.max_dense_dimension) +
                    "; use Hessian-vector products instead");
  H.resize(n, n);
  unit_.setZero(n);
  for (Index i = 0; i < n; ++i) {
    unit_[i] = T(1);
    hessian_vector(x, unit_, column_);
    H.col(i) = column_;
    unit_[i] = T(0);
  }
}

template <class T>
double NetworkObjective<T>::accuracy(const Vector<T>& x) {
  check_sizes(x, nullptr, "accuracy");
  const data::Dataset<T>& data = *data_;
  HESSE_REQUIRE(data.is_classification(),
                "accuracy: data set '" + data.name + "' is not a classification set");
  const Index selected = num_selected();
  Index correct = 0;
  for (Index start = 0; start < selected; start += options_.chunk_size) {
    const Index count = std::min(options_.chunk_size, selected - start);
    Workspace& ws = workspaces_.front();
    ws.use(count);
    ws.cur().gathered_x.resize(data.features.rows(), count);
    ws.cur().gathered_y.resize(1, count);
    for (Index j = 0; j < count; ++j) {
      const Index sample = all_selected_ ? start + j : batch_[static_cast<std::size_t>(start + j)];
      ws.cur().gathered_x.col(j) = data.features.col(sample);
      ws.cur().gathered_y(0, j) = data.targets(0, sample);
    }
    forward(ws, x.data(), ws.cur().gathered_x);
    const Matrix<T>& outputs = ws.cur().activations.back();
    for (Index j = 0; j < count; ++j) {
      Index predicted = 0;
      if (outputs.rows() == 1)
        predicted = outputs(0, j) > T(0) ? 1 : 0;
      else
        outputs.col(j).maxCoeff(&predicted);
      correct += predicted == static_cast<Index>(ws.cur().gathered_y(0, j));
    }
  }
  return static_cast<double>(correct) / static_cast<double>(selected);
}

template class NetworkObjective<float>;
template class NetworkObjective<double>;

}  // namespace hesse::nn
