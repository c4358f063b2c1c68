// Curvature-product benchmark: the cost of one gradient, one Hessian-vector
// product (Pearlmutter R-op) and one Gauss-Newton product of an MLP, against
// each other and against the machine's GEMM rate through Eigen.
//
// Default problem: 784-128-64-10 ReLU MLP, softmax cross-entropy, a batch of
// 1000 synthetic samples (features U[0,1], labels uniform over 10 classes,
// both from fixed seeds), float32, 2 threads. Prints one JSON object.
//
//   bench_curvature [--batch N] [--reps N] [--warmup N] [--threads N] [--double]
//                   [--sizes 784-128-64-10] [--no-breakdown] [--dump DIR]
//
// Timing: plain std::chrono::steady_clock, `warmup` untimed rounds, then the
// median (and minimum) of `reps` timed calls; gradient, HVP and Gauss-Newton
// are called in turns so a change of machine load touches them alike.
//
// FLOP count of one gradient (2*m*n*k per GEMM, the bias and elementwise work
// not counted), for Dense layers l = 1..L with W_l: [out_l, in_l], batch B:
//   forward            Z_l  = W_l A_{l-1}      2 B out_l in_l   every layer
//   weight gradient    dW_l = dZ_l A_{l-1}^T   2 B out_l in_l   every layer
//   input gradient     dA_{l-1} = W_l^T dZ_l   2 B out_l in_l   every layer but the first
// (the first layer's input is data, so no dX is formed there, as in PyTorch).
//
// --dump DIR writes the raw arrays (native endianness, the benchmark's
// precision) that bench/torch_curvature.py --check DIR reads to compare
// hesse's loss, gradient and HVP with PyTorch's on the same parameters and data:
//   params.bin  the flat parameter vector (per Dense layer W column-major, then b)
//   v.bin       the HVP / Gauss-Newton direction
//   features.bin [d, B] column-major (= [B, d] row-major)
//   labels.bin  B class indices
//   grad.bin, hv.bin, gnv.bin  hesse's results;  meta.json  sizes and the loss
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <memory>

#include "command_line.hpp"
#include "hesse/core/rng.hpp"
#include "hesse/data/dataset.hpp"
#include "hesse/nn/activation.hpp"
#include "hesse/nn/loss.hpp"
#include "hesse/nn/network_objective.hpp"
#include "hesse/nn/sequential.hpp"

namespace {

using hesse::Index;
using hesse::Matrix;
using hesse::Vector;
using Clock = std::chrono::steady_clock;

struct Options {
  Index batch = 1000;
  int reps = 50;
  int warmup = 5;
  int threads = 2;
  bool use_double = false;
  bool breakdown = true;
  std::string sizes = "784-128-64-10";
  std::string dump;
};

constexpr char kProgram[] = "bench_curvature";

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Curvature-product benchmark: the cost of one gradient, one Hessian-vector product and\n"
      "one Gauss-Newton product of an MLP (ReLU, softmax cross-entropy, synthetic batch),\n"
      "against each other and against the machine's GEMM rate through Eigen. Prints one\n"
      "JSON object.",
      kProgram};
  hesse::bench::configure(app);
  app.add_option("--batch", o.batch, "Samples in the batch")
      ->type_name("N")
      ->transform(hesse::bench::integer(1));
  app.add_option("--reps", o.reps,
                 "Timed calls of each product; the median and minimum are reported")
      ->type_name("N")
      ->transform(hesse::bench::integer(1));
  app.add_option("--warmup", o.warmup, "Untimed rounds before them")
      ->type_name("N")
      ->transform(hesse::bench::integer(1));
  app.add_option("--threads", o.threads, "OpenMP and Eigen threads")
      ->type_name("N")
      ->transform(hesse::bench::integer(1));
  app.add_flag("--double", o.use_double, "Run in float64 instead of float32");
  app.add_option("--sizes", o.sizes, "Layer sizes of the MLP, input to classes")
      ->type_name("SIZES");
  app.add_flag_callback(
      "--no-breakdown", [&o] { o.breakdown = false; },
      "Skip the per-stage breakdown of the three passes");
  app.add_option("--dump", o.dump,
                 "Write parameters, data, v and hesse's results for torch_curvature.py --check DIR")
      ->type_name("DIR");
  hesse::bench::parse(app, argc, argv);
  return o;
}

[[noreturn]] void fail(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  std::exit(2);
}

struct Stats {
  double median = 0;  // seconds
  double min = 0;
};

Stats summarize(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  const std::size_t n = t.size();
  Stats s;
  s.min = t.front();
  s.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  return s;
}

template <class F>
Stats time_it(F&& f, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t;
  t.reserve(static_cast<std::size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return summarize(std::move(t));
}

// Several calls timed in turns (a, b, c, a, b, c, ...), so a change of machine
// load during the run touches all of them alike and their ratios stay fair.
std::vector<Stats> time_in_turns(const std::vector<std::function<void()>>& fs, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i)
    for (const auto& f : fs) f();
  std::vector<std::vector<double>> t(fs.size());
  for (int i = 0; i < reps; ++i)
    for (std::size_t j = 0; j < fs.size(); ++j) {
      const auto start = Clock::now();
      fs[j]();
      t[j].push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
  std::vector<Stats> out;
  for (auto& samples : t) out.push_back(summarize(std::move(samples)));
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Minimal JSON writer: one object, keys in insertion order.
class Json {
 public:
  Json& num(const std::string& key, double v, int digits = 6) {
    std::ostringstream s;
    s.precision(digits);
    s << v;
    return raw(key, s.str());
  }
  Json& integer(const std::string& key, long long v) { return raw(key, std::to_string(v)); }
  Json& boolean(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
  Json& str(const std::string& key, const std::string& v) { return raw(key, "\"" + v + "\""); }
  Json& obj(const std::string& key, const Json& v) { return raw(key, v.text()); }
  Json& raw(const std::string& key, const std::string& v) {
    items_.push_back("\"" + key + "\": " + v);
    return *this;
  }
  std::string text(const std::string& indent = "") const {
    std::string out = "{";
    for (std::size_t i = 0; i < items_.size(); ++i)
      out += (i ? ", " : "") + std::string(indent.empty() ? "" : "\n" + indent) + items_[i];
    return out + "}";
  }

 private:
  std::vector<std::string> items_;
};

double ms(double s) { return 1e3 * s; }

// One GEMM shape timed with the same Eigen expression form the Dense layer uses.
struct GemmCase {
  std::string name;   // e.g. "fwd1 W[128x784]*X[784x1000]"
  Index m, n, k;      // C: [m, n], depth k
  int form;           // 0: A*B   1: A*B^T (weight gradient)   2: A^T*B (input gradient)
  bool in_gradient;   // part of the gradient's FLOP count
};

template <class T>
Json time_gemm(const GemmCase& g, int reps, double* seconds_out) {
  hesse::Rng rng(7);
  Matrix<T> A, B, C = Matrix<T>::Zero(g.m, g.n);
  // Shapes as stored: form 1 holds B as [n, k]; form 2 holds A as [k, m].
  A.resize(g.form == 2 ? g.k : g.m, g.form == 2 ? g.m : g.k);
  B.resize(g.form == 1 ? g.n : g.k, g.form == 1 ? g.k : g.n);
  A.setRandom();
  B.setRandom();
  std::function<void()> f;
  if (g.form == 0) f = [&] { C.noalias() = A * B; };
  else if (g.form == 1) f = [&] { C.noalias() += A * B.transpose(); };
  else f = [&] { C.noalias() = A.transpose() * B; };
  const double flops = 2.0 * double(g.m) * double(g.n) * double(g.k);
  // Enough repetitions for >= ~20 ms of samples, at least `reps`.
  const Stats once = time_it(f, 2, 3);
  const int n = std::max(reps, static_cast<int>(0.02 / std::max(once.median, 1e-7)));
  const Stats s = time_it(f, 3, std::min(n, 2000));
  if (seconds_out) *seconds_out = s.median;
  Json j;
  j.str("expr", g.form == 0 ? "C = A*B" : g.form == 1 ? "C += A*B^T" : "C = A^T*B")
      .integer("m", g.m).integer("n", g.n).integer("k", g.k)
      .num("median_ms", ms(s.median), 4)
      .num("gflops", flops / s.median * 1e-9, 4);
  return j;
}

template <class T>
void write_raw(const std::filesystem::path& path, const T* data, Index count) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(sizeof(T) * count));
  if (!out) fail("cannot write " + path.string());
}

template <class T>
int run(const Options& o) {
  using namespace hesse;
  const std::vector<Index> sizes = nn::parse_layer_sizes(o.sizes);
  const Index d = sizes.front(), classes = sizes.back(), B = o.batch;

  // Synthetic data: features U[0, 1] (seed 1), labels uniform in 0..classes-1 (seed 2).
  data::Dataset<T> data;
  data.name = "synthetic";
  data.num_classes = static_cast<int>(classes);
  data.features.resize(d, B);
  data.targets.resize(1, B);
  {
    Rng rng(1);
    Vector<T> flat(d * B);
    fill_uniform<T>(rng, flat, T(0), T(1));
    data.features = Eigen::Map<Matrix<T>>(flat.data(), d, B);
    Rng label_rng(2);
    std::uniform_int_distribution<int> label(0, static_cast<int>(classes) - 1);
    for (Index i = 0; i < B; ++i) data.targets(0, i) = static_cast<T>(label(label_rng));
  }

  nn::Sequential<T> net = nn::make_mlp<T>(sizes, nn::ActivationKind::ReLU);
  const Vector<T> x = net.initial_parameters(0);  // He normal hidden, Xavier output, zero bias
  Vector<T> v(x.size());
  {
    Rng rng(3);
    fill_normal<T>(rng, v, T(1));
  }
  nn::NetworkObjective<T> objective(net, nn::LossKind::SoftmaxCrossEntropy, data);

  Vector<T> grad, hv, gnv;
  T loss = 0;
  const std::vector<Stats> main_times = time_in_turns(
      {[&] { loss = objective.value_and_gradient(x, &grad); }, [&] { objective.hessian_vector(x, v, hv); },
       [&] { objective.gauss_newton_vector(x, v, gnv); }, [&] { (void)objective.value(x); }},
      o.warmup, o.reps);
  const Stats tg = main_times[0], th = main_times[1], tn = main_times[2], tl = main_times[3];

  // GEMMs: the square reference and every GEMM of the gradient, in the
  // expression forms of Dense::forward / Dense::backward.
  std::vector<GemmCase> cases;
  cases.push_back({"square_1024", 1024, 1024, 1024, 0, false});
  const Index L = static_cast<Index>(sizes.size()) - 1;
  double gradient_flops = 0;
  for (Index l = 0; l < L; ++l) {
    const Index in = sizes[static_cast<std::size_t>(l)], out = sizes[static_cast<std::size_t>(l) + 1];
    const std::string tag = std::to_string(l + 1);
    cases.push_back({"fwd" + tag + " W[" + std::to_string(out) + "x" + std::to_string(in) + "]*A", out, B, in, 0, true});
    cases.push_back({"dW" + tag + " dZ*A^T", out, in, B, 1, true});
    gradient_flops += 4.0 * double(B) * double(out) * double(in);
    if (l > 0) {
      cases.push_back({"dA" + tag + " W^T*dZ", in, B, out, 2, true});
      gradient_flops += 2.0 * double(B) * double(out) * double(in);
    }
  }
  Json gemm;
  double square_rate = 0, gemm_seconds_in_gradient = 0;
  for (const GemmCase& g : cases) {
    double s = 0;
    Json j = time_gemm<T>(g, 20, &s);
    if (g.name == "square_1024") square_rate = 2.0 * 1024 * 1024 * 1024 / s * 1e-9;
    if (g.in_gradient) gemm_seconds_in_gradient += s;
    gemm.obj(g.name, j);
  }
  const double gemm_rate_gradient_shapes = gradient_flops / gemm_seconds_in_gradient * 1e-9;
  const double gradient_rate = gradient_flops / tg.median * 1e-9;

  // Per-stage breakdown of the three passes, with the same layer calls that
  // NetworkObjective::chunk makes (network_objective.cpp), so the shares
  // show where time goes.
  Json breakdown;
  if (o.breakdown) {
    const Index layers = net.num_layers();
    std::vector<Matrix<T>> act(static_cast<std::size_t>(layers)), ract(static_cast<std::size_t>(layers));
    Matrix<T> delta[2], rdelta[2];
    Vector<T> g_out = Vector<T>::Zero(x.size());
    const T scale = T(1) / T(B);
    ConstMatrixMap<T> X(data.features.data(), d, B);
    ConstMatrixMap<T> Y(data.targets.data(), 1, B);
    auto input = [&](Index l) -> nn::ConstRef<T> {
      return l == 0 ? nn::ConstRef<T>(X) : nn::ConstRef<T>(act[static_cast<std::size_t>(l - 1)]);
    };
    auto off = [&](Index l) { return net.parameter_offset(l); };
    // stage name -> samples
    std::vector<std::string> names;
    std::vector<std::vector<double>> samples;
    auto record = [&](const std::string& name, Clock::time_point start) {
      const double s = seconds_since(start);
      auto it = std::find(names.begin(), names.end(), name);
      if (it == names.end()) {
        names.push_back(name);
        samples.emplace_back();
        it = names.end() - 1;
      }
      samples[static_cast<std::size_t>(it - names.begin())].push_back(s);
    };
    auto label = [&](const char* pass, Index l, const char* what) {
      return std::string(pass) + "." + std::to_string(l) + "_" + net.layer(l).describe() + "." + what;
    };
    for (int rep = 0; rep < o.warmup + o.reps; ++rep) {
      const bool keep = rep >= o.warmup;
      auto rec = [&](const std::string& name, Clock::time_point start) {
        if (keep) record(name, start);
      };
      // gradient
      g_out.setZero();
      for (Index l = 0; l < layers; ++l) {
        const auto t0 = Clock::now();
        net.layer(l).forward(x.data() + off(l), input(l), act[static_cast<std::size_t>(l)]);
        rec(label("gradient", l, "forward"), t0);
      }
      auto t0 = Clock::now();
      (void)nn::loss_value_and_gradient<T>(nn::LossKind::SoftmaxCrossEntropy, act.back(), Y, scale, &delta[0]);
      rec("gradient.loss_value_and_gradient", t0);
      int cur = 0;
      for (Index l = layers - 1; l >= 0; --l) {
        const auto i = static_cast<std::size_t>(l);
        t0 = Clock::now();
        net.layer(l).backward(x.data() + off(l), input(l), act[i], delta[cur], l > 0 ? &delta[1 - cur] : nullptr,
                              g_out.data() + off(l));
        rec(label("gradient", l, "backward"), t0);
        cur = 1 - cur;
      }
      // HVP: forward and loss gradient as above, then R-forward, loss Hessian, R-backward
      for (Index l = 0; l < layers; ++l) {
        const auto i = static_cast<std::size_t>(l);
        t0 = Clock::now();
        net.layer(l).r_forward(x.data() + off(l), v.data() + off(l), input(l), l == 0 ? nullptr : &ract[i - 1],
                               act[i], ract[i]);
        rec(label("r_forward", l, "r_forward"), t0);
      }
      t0 = Clock::now();
      nn::loss_hessian_product<T>(nn::LossKind::SoftmaxCrossEntropy, act.back(), Y, ract.back(), scale, rdelta[0]);
      rec("r_forward.loss_hessian_product", t0);
      (void)nn::loss_value_and_gradient<T>(nn::LossKind::SoftmaxCrossEntropy, act.back(), Y, scale, &delta[0]);
      g_out.setZero();
      cur = 0;
      for (Index l = layers - 1; l >= 0; --l) {
        const auto i = static_cast<std::size_t>(l);
        t0 = Clock::now();
        net.layer(l).r_backward(x.data() + off(l), v.data() + off(l), input(l), l > 0 ? &ract[i - 1] : nullptr,
                                act[i], ract[i], delta[cur], rdelta[cur], l > 0 ? &delta[1 - cur] : nullptr,
                                l > 0 ? &rdelta[1 - cur] : nullptr, g_out.data() + off(l), nullptr);
        rec(label("hvp", l, "r_backward"), t0);
        cur = 1 - cur;
      }
    }
    for (std::size_t i = 0; i < names.size(); ++i) breakdown.num(names[i], ms(summarize(samples[i]).median), 4);
  }

  // Experiment: split the batch across the threads instead of splitting each
  // GEMM. One NetworkObjective per thread on its slice of the columns, each
  // running single-threaded Eigen (Eigen does not nest inside an OpenMP
  // parallel region), results averaged with weights n_t / B. One fork/join
  // per pass instead of one per GEMM. Checked against the plain results.
  Json split;
  const int parts = o.threads;
  if (parts > 1 && B >= parts) {
    std::vector<data::Dataset<T>> slices(static_cast<std::size_t>(parts));
    std::vector<std::unique_ptr<nn::NetworkObjective<T>>> objs;
    std::vector<T> weights;
    for (int t = 0; t < parts; ++t) {
      const Index begin = B * t / parts, end = B * (t + 1) / parts;
      data::Dataset<T>& part = slices[static_cast<std::size_t>(t)];
      part.name = "slice";
      part.num_classes = data.num_classes;
      part.features = data.features.middleCols(begin, end - begin);
      part.targets = data.targets.middleCols(begin, end - begin);
      weights.push_back(T(end - begin) / T(B));
    }
    for (int t = 0; t < parts; ++t)
      objs.push_back(std::make_unique<nn::NetworkObjective<T>>(net, nn::LossKind::SoftmaxCrossEntropy,
                                                               slices[static_cast<std::size_t>(t)]));
    std::vector<Vector<T>> outs(static_cast<std::size_t>(parts));
    Vector<T> split_grad(x.size()), split_hv(x.size()), split_gnv(x.size());
    auto run_split = [&](int which, Vector<T>& combined) {
#pragma omp parallel num_threads(parts)
      {
#ifdef _OPENMP
        const auto t = static_cast<std::size_t>(omp_get_thread_num());
#else
        const std::size_t t = 0;
#endif
        if (which == 0) (void)objs[t]->value_and_gradient(x, &outs[t]);
        else if (which == 1) objs[t]->hessian_vector(x, v, outs[t]);
        else objs[t]->gauss_newton_vector(x, v, outs[t]);
      }
      combined.setZero();
      for (std::size_t t = 0; t < outs.size(); ++t) combined += weights[t] * outs[t];
    };
    const std::vector<Stats> st = time_in_turns(
        {[&] { run_split(0, split_grad); }, [&] { run_split(1, split_hv); }, [&] { run_split(2, split_gnv); }},
        o.warmup, o.reps);
    const Stats sg = st[0], sh = st[1], sn = st[2];
    const double eg = double((split_grad - grad).norm() / grad.norm());
    const double eh = double((split_hv - hv).norm() / hv.norm());
    const double en = double((split_gnv - gnv).norm() / gnv.norm());
    split.str("what", "batch split across threads, single-threaded Eigen per slice, one omp parallel per pass")
        .num("gradient_ms", ms(sg.median), 4).num("hvp_ms", ms(sh.median), 4).num("gn_ms", ms(sn.median), 4)
        .num("gradient_speedup", tg.median / sg.median, 4)
        .num("hvp_speedup", th.median / sh.median, 4)
        .num("gn_speedup", tn.median / sn.median, 4)
        .num("gradient_gflops", gradient_flops / sg.median * 1e-9, 4)
        .num("max_rel_diff_vs_plain", std::max({eg, eh, en}), 3);
  }

  if (!o.dump.empty()) {
    const std::filesystem::path dir(o.dump);
    std::filesystem::create_directories(dir);
    write_raw<T>(dir / "params.bin", x.data(), x.size());
    write_raw<T>(dir / "v.bin", v.data(), v.size());
    write_raw<T>(dir / "features.bin", data.features.data(), data.features.size());
    write_raw<T>(dir / "labels.bin", data.targets.data(), data.targets.size());
    write_raw<T>(dir / "grad.bin", grad.data(), grad.size());
    write_raw<T>(dir / "hv.bin", hv.data(), hv.size());
    write_raw<T>(dir / "gnv.bin", gnv.data(), gnv.size());
    std::ofstream meta(dir / "meta.json");
    meta.precision(17);
    meta << "{\"sizes\": \"" << o.sizes << "\", \"batch\": " << B << ", \"dtype\": \""
         << (o.use_double ? "float64" : "float32") << "\", \"loss\": " << double(loss) << "}\n";
  }

#ifdef _OPENMP
  const int omp_threads = omp_get_max_threads();
#else
  const int omp_threads = 1;
#endif
  Json problem;
  problem.str("network", o.sizes).str("activation", "relu").str("loss", "softmax-cross-entropy")
      .integer("batch", B).integer("parameters", x.size())
      .str("dtype", o.use_double ? "float64" : "float32")
      .str("data", "synthetic: features U[0,1] seed 1, labels uniform seed 2; params initial_parameters(0); v ~ N(0,1) seed 3");
  Json timing;
  timing.str("method", "steady_clock; gradient, HVP, GN, value called in turns; median (and min) of reps after warmup untimed rounds")
      .integer("reps", o.reps).integer("warmup", o.warmup);
  Json result;
  result.num("gradient_ms", ms(tg.median), 4).num("gradient_min_ms", ms(tg.min), 4)
      .num("hvp_ms", ms(th.median), 4).num("hvp_min_ms", ms(th.min), 4)
      .num("gn_ms", ms(tn.median), 4).num("gn_min_ms", ms(tn.min), 4)
      .num("value_ms", ms(tl.median), 4)
      .num("hvp_over_gradient", th.median / tg.median, 4)
      .num("gn_over_gradient", tn.median / tg.median, 4)
      .num("loss", double(loss), 8);
  Json rate;
  rate.num("gradient_gemm_flops", gradient_flops, 8)
      .str("gradient_gemms_counted", "per Dense layer: forward W*A, weight gradient dZ*A^T; input gradient W^T*dZ for all but the first layer; 2*m*n*k each; bias and elementwise work not counted")
      .num("gradient_gflops", gradient_rate, 4)
      .num("square_gemm_gflops", square_rate, 4)
      .num("gradient_fraction_of_square_gemm", gradient_rate / square_rate, 4)
      .num("gemm_only_ms_of_gradient_shapes", ms(gemm_seconds_in_gradient), 4)
      .num("gemm_gflops_of_gradient_shapes", gemm_rate_gradient_shapes, 4)
      .num("gradient_fraction_of_shape_gemm", gradient_rate / gemm_rate_gradient_shapes, 4)
      .num("non_gemm_ms_of_gradient", ms(tg.median - gemm_seconds_in_gradient), 4);
  Json top;
  top.str("benchmark", "hesse curvature products")
      .integer("threads", Eigen::nbThreads()).integer("omp_max_threads", omp_threads)
      .obj("problem", problem).obj("timing", timing).obj("results", result).obj("rate", rate)
      .obj("gemm", gemm);
  if (o.breakdown) top.obj("breakdown_ms", breakdown);
  if (parts > 1 && B >= parts) top.obj("experiment_batch_split", split);
  std::cout << top.text("  ") << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
#ifdef _OPENMP
  omp_set_num_threads(o.threads);
#endif
  Eigen::setNbThreads(o.threads);
  try {
    return o.use_double ? run<double>(o) : run<float>(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_curvature: " << e.what() << "\n";
    return 2;
  }
}
