// fit(): stopping rules, evaluation, schedules, clipping, the NaN guard,
// callbacks, logs and checkpoints that resume bit for bit. The optimizer here
// is a small momentum SGD of the test's own, so these tests exercise fit()
// alone.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../common/errors.hpp"
#include "../common/small_network.hpp"
#include "hesse/optim/stochastic_lbfgs.hpp"
#include "hesse/train/fit.hpp"

namespace hesse::train {
namespace {

template <class T>
class TestSgd : public optim::Optimizer<T> {
 public:
  explicit TestSgd(double lr, double momentum = 0.9) : lr_(lr), momentum_(momentum) {}
  std::string name() const override { return "test-sgd"; }
  optim::StepResult step(optim::StochasticObjective<T>& f, Vector<T>& x,
                         std::span<const Index> batch) override {
    f.select_batch(batch);
    optim::StepResult r;
    r.loss = double(f.value_and_gradient(x, &g_));
    r.gradient_norm = double(g_.norm());
    if (buffer_.size() != x.size()) buffer_.setZero(x.size());
    buffer_ = T(momentum_) * buffer_ + g_;
    x -= T(lr_) * buffer_;
    ++this->steps_;
    return r;
  }
  double learning_rate() const override { return lr_; }
  void set_learning_rate(double lr) override { lr_ = lr; }
  void on_numerical_failure() override { ++failures_told; }
  void save_state(optim::StateDict& s) const override {
    s.put("test.buffer", buffer_);
    s.scalars["test.steps"] = double(this->steps_);
  }
  void load_state(const optim::StateDict& s) override {
    buffer_.resize(Index(s.array("test.buffer").size()));
    s.get("test.buffer", buffer_);
    this->steps_ = std::int64_t(s.scalar("test.steps"));
  }
  void reset() override { buffer_.resize(0); }
  int failures_told = 0;

 private:
  double lr_, momentum_;
  Vector<T> g_, buffer_;
};

// Blows the parameters up at chosen steps.
template <class T>
class Exploding final : public TestSgd<T> {
 public:
  Exploding(double lr, std::vector<int> bad_steps) : TestSgd<T>(lr), bad_(std::move(bad_steps)) {}
  optim::StepResult step(optim::StochasticObjective<T>& f, Vector<T>& x,
                         std::span<const Index> batch) override {
    ++calls;
    auto r = TestSgd<T>::step(f, x, batch);
    for (int b : bad_)
      if (b == calls || b < 0) x[0] = std::numeric_limits<T>::quiet_NaN();
    return r;
  }
  int calls = 0;

 private:
  std::vector<int> bad_;
};

struct Recorder final : Callback {
  std::vector<StepRecord> steps;
  std::vector<EvaluationRecord> evals;
  std::vector<std::string> hooks;
  Index stop_at_step = -1;
  void on_begin(const FitOptions&, Index) override { hooks.push_back("begin"); }
  bool on_step(const StepRecord& r) override {
    steps.push_back(r);
    return r.step != stop_at_step;
  }
  bool on_evaluation(const EvaluationRecord& r) override {
    evals.push_back(r);
    return true;
  }
  bool on_epoch_end(Index) override {
    hooks.push_back("epoch");
    return true;
  }
  void on_numerical_failure(Index, const std::string&) override { hooks.push_back("failure"); }
  void on_end(const FitResult&) override { hooks.push_back("end"); }
};

class Fit : public ::testing::Test {
 protected:
  data::Dataset<double> train = testing::blobs<double>(384, 7);
  data::Dataset<double> test = testing::blobs<double>(192, 8);
  nn::Sequential<double> net = testing::small_mlp<double>();
  Vector<double> x = net.initial_parameters(3);
  static constexpr auto kLoss = nn::LossKind::SoftmaxCrossEntropy;
};

TEST_F(Fit, ReachesATargetAccuracyAndRecordsWhen) {
  TestSgd<double> opt(0.05);
  Recorder rec;
  Callback* cbs[] = {&rec};
  const FitResult r = fit(net, kLoss, train, &test, opt, x,
                          {.epochs = 50, .batch_size = 32, .eval_every_steps = 4,
                           .target_accuracy = 0.9},
                          cbs);
  EXPECT_EQ(r.reason, StopReason::TargetAccuracy) << r.message;
  EXPECT_TRUE(r.reached_target);
  EXPECT_GE(r.final_test_accuracy, 0.9);
  EXPECT_GT(r.seconds_to_target, 0);
  EXPECT_EQ(r.seconds_to_target, r.history.back().seconds);
  EXPECT_EQ(r.steps % 4, 0) << "stops at an evaluation";
  EXPECT_EQ(Index(rec.steps.size()), r.steps);
  EXPECT_EQ(rec.evals.size(), r.history.size());
  for (std::size_t i = 0; i < rec.evals.size(); ++i) EXPECT_EQ(rec.evals[i].step, Index(4 * (i + 1)));
  EXPECT_EQ(rec.hooks.front(), "begin");
  EXPECT_EQ(rec.hooks.back(), "end");
  EXPECT_NEAR(r.epochs, double(r.steps) / 12.0, 1e-12);
}

TEST_F(Fit, RunsTheEpochsAndEvaluatesEachEpochByDefault) {
  TestSgd<double> opt(0.01);
  Recorder rec;
  Callback* cbs[] = {&rec};
  const FitResult r = fit(net, kLoss, train, &test, opt, x, {.epochs = 3, .batch_size = 100}, cbs);
  EXPECT_EQ(r.reason, StopReason::EpochsCompleted);
  EXPECT_EQ(r.steps, 12);  // 384 samples: 3 full batches and one of 84
  ASSERT_EQ(r.history.size(), 3u);
  EXPECT_EQ(r.history[2].step, 12);
  EXPECT_EQ(std::count(rec.hooks.begin(), rec.hooks.end(), "epoch"), 3);
  EXPECT_LT(r.history[2].test_loss, r.history[0].test_loss);
  // The training loss of an evaluation is the mean of its batches' losses.
  double mean = 0;
  for (int i = 8; i < 12; ++i) mean += rec.steps[std::size_t(i)].loss / 4;
  EXPECT_NEAR(r.history[2].train_loss, mean, 1e-12);
}

TEST_F(Fit, StopsAtMaxStepsTargetLossTimeLimitAndCallbacks) {
  {
    TestSgd<double> opt(0.01);
    const auto r = fit(net, kLoss, train, &test, opt, x, {.epochs = 100, .max_steps = 7});
    EXPECT_EQ(r.reason, StopReason::MaxSteps);
    EXPECT_EQ(r.steps, 7);
    EXPECT_EQ(r.history.back().step, 7) << "the last point is evaluated";
  }
  {
    TestSgd<double> opt(0.05);
    const auto r = fit(net, kLoss, train, &test, opt, x,
                       {.epochs = 100, .batch_size = 32, .target_loss = 0.2});
    EXPECT_EQ(r.reason, StopReason::TargetLoss);
    EXPECT_LE(r.final_test_loss, 0.2);
  }
  {
    TestSgd<double> opt(0.01);
    const auto r = fit(net, kLoss, train, &test, opt, x,
                       {.epochs = 1000000, .time_limit_seconds = 0.05});
    EXPECT_EQ(r.reason, StopReason::TimeLimit);
    EXPECT_GE(r.seconds, 0.05);
  }
  {
    TestSgd<double> opt(0.01);
    Recorder rec;
    rec.stop_at_step = 5;
    Callback* cbs[] = {&rec};
    const auto r = fit(net, kLoss, train, &test, opt, x, {.epochs = 10}, cbs);
    EXPECT_EQ(r.reason, StopReason::Callback);
    EXPECT_EQ(r.steps, 5);
  }
  {
    TestSgd<double> opt(0.0);  // no progress: early stopping after `patience` evaluations
    EarlyStopping early(3);
    Callback* cbs[] = {&early};
    const auto r = fit(net, kLoss, train, &test, opt, x, {.epochs = 100, .batch_size = 64}, cbs);
    EXPECT_EQ(r.reason, StopReason::Callback);
    EXPECT_EQ(r.history.size(), 4u);
  }
}

TEST_F(Fit, ScheduleSetsTheLearningRateOfEveryStep) {
  TestSgd<double> opt(0.1);
  Recorder rec;
  Callback* cbs[] = {&rec};
  FitOptions o{.epochs = 2, .batch_size = 32};
  o.schedule = parse_schedule("cosine,warmup:4");
  const auto r = fit(net, kLoss, train, &test, opt, x, o, cbs);
  ASSERT_EQ(r.steps, 24);
  Schedule expected = o.schedule;
  expected.total_steps = 24;
  for (const auto& s : rec.steps)
    EXPECT_NEAR(s.learning_rate, 0.1 * expected.factor(s.step - 1), 1e-15) << s.step;
  EXPECT_NEAR(rec.steps[0].learning_rate, 0.1 * 0.01, 1e-15);
  EXPECT_NEAR(rec.steps[4].learning_rate, 0.1, 1e-15);
  EXPECT_EQ(opt.learning_rate(), 0.1) << "the base rate is restored at the end";
}

TEST_F(Fit, ClipsTheGradientNorm) {
  TestSgd<double> opt(0.01, 0.0);
  Recorder rec;
  Callback* cbs[] = {&rec};
  fit(net, kLoss, train, &test, opt, x, {.epochs = 1, .gradient_clip_norm = 1e-3}, cbs);
  for (const auto& s : rec.steps) EXPECT_LE(s.gradient_norm, 1e-3 * (1 + 1e-12));
}

// Stochastic L-BFGS computes a batch's gradient in parts when O_k is smaller
// than the batch; the clip applies to the batch gradient as a whole, so with
// a clip below every batch gradient's norm each step's |g| is the clip (parts
// clipped one by one sum to less when they point apart).
TEST_F(Fit, ClipsTheWholeBatchGradientOfAStepInParts) {
  constexpr double kClip = 1e-3;
  auto opt = optim::make_optimizer<double>("slbfgs", {{"overlap_size", 32}, {"line_search", 0},
                                                      {"lr", 0.5}});
  Recorder rec;
  Callback* cbs[] = {&rec};
  fit(net, kLoss, train, &test, *opt, x,
      {.epochs = 2, .batch_size = 128, .batch_overlap = 32, .gradient_clip_norm = kClip}, cbs);
  ASSERT_EQ(rec.steps.size(), 8u);  // 1 + ceil((384 - 128) / 96) = 4 steps an epoch
  for (const auto& s : rec.steps) EXPECT_NEAR(s.gradient_norm, kClip, 1e-12 * kClip) << s.step;
}

// K-FAC computes the gradient in its statistics pass on statistics steps and
// on the network's threads on plain ones, Shampoo likewise on plain steps:
// the clip applies on every kind of step.
TEST_F(Fit, ClipsTheGradientOfKfacAndShampooOnEveryKindOfStep) {
  constexpr double kClip = 1e-3;
  const std::vector<std::pair<std::string, optim::OptimizerSettings>> cases{
      {"kfac", {{"statistics_every", 1}}},
      {"kfac", {{"statistics_every", 3}, {"inverse_every", 5}}},
      {"shampoo", {{"statistics_every", 2}}}};
  for (const auto& [name, settings] : cases) {
    auto opt = optim::make_optimizer<double>(name, settings);
    Recorder rec;
    Callback* cbs[] = {&rec};
    Vector<double> start = x;
    fit(net, kLoss, train, &test, *opt, start,
        {.epochs = 1, .batch_size = 32, .gradient_clip_norm = kClip}, cbs);
    ASSERT_EQ(rec.steps.size(), 12u) << name;
    for (const auto& s : rec.steps)
      EXPECT_NEAR(s.gradient_norm, kClip, 1e-12 * kClip) << name << " step " << s.step;
  }
}

TEST_F(Fit, NanGuardRestoresTheLastGoodStateAndLowersTheRate) {
  Exploding<double> opt(0.05, {3});
  Recorder rec;
  Callback* cbs[] = {&rec};
  const auto r = fit(net, kLoss, train, &test, opt, x,
                     {.epochs = 2, .batch_size = 32, .eval_every_steps = 2}, cbs);
  EXPECT_EQ(r.reason, StopReason::EpochsCompleted);
  EXPECT_EQ(r.numerical_failures, 1);
  EXPECT_EQ(opt.failures_told, 1);
  EXPECT_TRUE(x.allFinite());
  EXPECT_NE(std::find(rec.hooks.begin(), rec.hooks.end(), "failure"), rec.hooks.end());
  EXPECT_NEAR(rec.steps[3].learning_rate, 0.025, 1e-15) << "rate halved after the failure";
  ASSERT_FALSE(r.events.empty());
  EXPECT_NE(r.events[0].find("restored the last good state"), std::string::npos) << r.events[0];
}

TEST_F(Fit, PersistentFailureStopsWithTheLastGoodParameters) {
  Exploding<double> opt(0.05, {-1});
  const auto r = fit(net, kLoss, train, &test, opt, x,
                     {.epochs = 5, .max_consecutive_failures = 3});
  EXPECT_EQ(r.reason, StopReason::NumericalFailure);
  EXPECT_EQ(r.steps, 3);
  EXPECT_TRUE(x.allFinite());
  EXPECT_EQ(x, net.initial_parameters(3)) << "no good step was taken, so x is the start";
}

TEST_F(Fit, CheckpointResumesBitForBit) {
  const auto dir = std::filesystem::temp_directory_path() / "hesse_fit_checkpoint_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "run.ckpt").string();
  FitOptions o{.epochs = 3, .batch_size = 50, .seed = 4, .eval_every_steps = 5};
  o.schedule = parse_schedule("step:7:0.5");

  Vector<double> straight = x;
  TestSgd<double> a(0.05);
  const auto ra = fit(net, kLoss, train, &test, a, straight, o);

  // Stop after 13 steps (the last checkpoint is at step 10), resume to the end.
  Vector<double> first = x;
  TestSgd<double> b(0.05);
  FitOptions ob = o;
  ob.checkpoint_path = path;
  ob.max_steps = 13;
  fit(net, kLoss, train, &test, b, first, ob);
  TestSgd<double> c(0.05);
  Vector<double> resumed = net.initial_parameters(99);
  FitOptions oc = o;
  oc.resume_from = path;
  const auto rc = fit(net, kLoss, train, &test, c, resumed, oc);
  EXPECT_EQ(rc.steps, ra.steps);
  EXPECT_EQ(0, std::memcmp(straight.data(), resumed.data(), sizeof(double) * std::size_t(x.size())))
      << "resumed run differs from the uninterrupted one";
  ASSERT_EQ(rc.history.size(), ra.history.size());
  EXPECT_EQ(rc.history.back().test_loss, ra.history.back().test_loss);

  auto other = testing::small_mlp<double>(4, 8, 3);
  Vector<double> y = other.initial_parameters(1);
  EXPECT_THROW(fit(other, kLoss, train, &test, b, y, oc), InvalidArgument);
  std::ofstream(path) << "not a checkpoint";
  EXPECT_THROW(fit(net, kLoss, train, &test, c, resumed, oc), DataError);
  std::filesystem::remove_all(dir);
}

// Keeps every batch it is given.
template <class T>
class BatchRecorder final : public TestSgd<T> {
 public:
  BatchRecorder() : TestSgd<T>(0.01) {}
  optim::StepResult step(optim::StochasticObjective<T>& f, Vector<T>& x,
                         std::span<const Index> batch) override {
    batches.emplace_back(batch.begin(), batch.end());
    return TestSgd<T>::step(f, x, batch);
  }
  std::vector<std::vector<Index>> batches;
};

// batch_overlap reaches the sampler: 384 samples in windows of 100 with
// stride 80 are 5 steps an epoch (the last of 64 samples), each batch starts
// with the previous one's last 20 within an epoch, and an epoch's steps are
// what on_begin hears and what fractional epochs count.
TEST_F(Fit, BatchOverlapMakesConsecutiveBatchesShareSamples) {
  BatchRecorder<double> opt;
  struct StepsPerEpoch final : Callback {
    Index steps = 0;
    void on_begin(const FitOptions&, Index steps_per_epoch) override { steps = steps_per_epoch; }
  } begin;
  Callback* cbs[] = {&begin};
  const auto r = fit(net, kLoss, train, &test, opt, x,
                     {.epochs = 2, .batch_size = 100, .batch_overlap = 20}, cbs);
  EXPECT_EQ(begin.steps, 5);
  ASSERT_EQ(r.steps, 10);
  EXPECT_EQ(r.epochs, 2.0);
  ASSERT_EQ(opt.batches.size(), 10u);
  for (std::size_t k = 0; k < 10; ++k) {
    EXPECT_EQ(opt.batches[k].size(), k % 5 == 4 ? 64u : 100u) << k;
    if (k % 5 == 0) continue;  // an epoch's first batch shares nothing by design
    const auto& previous = opt.batches[k - 1];
    EXPECT_TRUE(std::equal(previous.end() - 20, previous.end(), opt.batches[k].begin())) << k;
  }
}

// Stochastic L-BFGS with O_k the 16 samples consecutive batches share: a
// run stopped after 13 steps (last checkpoint at step 10, a pair pending)
// and resumed ends bit for bit where the uninterrupted run ends.
TEST_F(Fit, CheckpointResumesBitForBitWithOverlappingBatches) {
  const auto dir = std::filesystem::temp_directory_path() / "hesse_fit_overlap_checkpoint_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "run.ckpt").string();
  const FitOptions o{.epochs = 3, .batch_size = 64, .batch_overlap = 16, .seed = 4,
                     .eval_every_steps = 5};
  auto make = [] { return optim::make_optimizer<double>("slbfgs", {{"overlap_size", 16}}); };

  Vector<double> straight = x;
  auto a = make();
  const auto ra = fit(net, kLoss, train, &test, *a, straight, o);
  EXPECT_EQ(ra.steps, 24);  // 1 + ceil((384 - 64) / 48) = 8 steps an epoch

  Vector<double> first = x;
  auto b = make();
  FitOptions ob = o;
  ob.checkpoint_path = path;
  ob.max_steps = 13;
  fit(net, kLoss, train, &test, *b, first, ob);
  auto c = make();
  Vector<double> resumed = net.initial_parameters(99);
  FitOptions oc = o;
  oc.resume_from = path;
  const auto rc = fit(net, kLoss, train, &test, *c, resumed, oc);
  EXPECT_EQ(rc.steps, ra.steps);
  EXPECT_EQ(0, std::memcmp(straight.data(), resumed.data(), sizeof(double) * std::size_t(x.size())))
      << "resumed run differs from the uninterrupted one";
  ASSERT_EQ(rc.history.size(), ra.history.size());
  EXPECT_EQ(rc.history.back().test_loss, ra.history.back().test_loss);
  const auto& lbfgs = dynamic_cast<const optim::StochasticLbfgs<double>&>(*a);
  EXPECT_EQ(lbfgs.extra_overlap_gradients(), 2);  // epochs 1 and 2 begin
  EXPECT_EQ(lbfgs.reused_overlap_gradients(), 21);
  // What the batches depend on is in the checkpoint.
  const auto saved = optim::StateDict::load(path);
  EXPECT_EQ(saved.text("fit.training_samples"), "384");
  EXPECT_EQ(saved.text("fit.batch_size"), "64");
  EXPECT_EQ(saved.text("fit.batch_overlap"), "16");
  EXPECT_EQ(saved.text("fit.drop_last"), "false");
  EXPECT_EQ(saved.text("fit.seed"), "4");
  std::filesystem::remove_all(dir);
}

// Resuming with another batch order is refused, naming the setting, the
// checkpoint's value and the run's: the training set's size, batch_size,
// batch_overlap, drop_last and seed. A checkpoint written before they were
// recorded resumes unchecked.
TEST_F(Fit, ResumeRefusesACheckpointWithOtherBatchSettings) {
  const auto dir = std::filesystem::temp_directory_path() / "hesse_fit_batch_settings_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "run.ckpt").string();
  FitOptions o{.epochs = 2, .batch_size = 64, .batch_overlap = 16, .seed = 4,
               .eval_every_steps = 5, .max_steps = 6};
  o.checkpoint_path = path;
  {
    TestSgd<double> opt(0.05);
    Vector<double> y = x;
    fit(net, kLoss, train, &test, opt, y, o);
  }
  FitOptions resume = o;
  resume.checkpoint_path.clear();
  resume.max_steps = 0;
  resume.resume_from = path;
  auto message = [&](const FitOptions& options, const data::Dataset<double>& data) {
    TestSgd<double> opt(0.05);
    Vector<double> y = x;
    return testing::invalid_argument_message(
        [&] { fit(net, kLoss, data, &test, opt, y, options); });
  };
  auto expected = [&](const std::string& setting, const std::string& saved,
                      const std::string& requested) {
    return "fit: checkpoint " + path + " was written with " + setting + " = " + saved +
           ", this run has " + setting + " = " + requested + ": resuming needs the same batches";
  };
  EXPECT_EQ(message(resume, train), "");
  FitOptions changed = resume;
  changed.batch_size = 128;
  EXPECT_EQ(message(changed, train), expected("batch_size", "64", "128"));
  changed = resume;
  changed.batch_overlap = 0;
  EXPECT_EQ(message(changed, train), expected("batch_overlap", "16", "0"));
  changed = resume;
  changed.drop_last = true;
  EXPECT_EQ(message(changed, train), expected("drop_last", "false", "true"));
  changed = resume;
  changed.seed = 5;
  EXPECT_EQ(message(changed, train), expected("seed", "4", "5"));
  const data::Dataset<double> fewer = testing::blobs<double>(383, 7);
  EXPECT_EQ(message(resume, fewer), expected("training_samples", "384", "383"));
  // The same number of samples, one feature value changed: another set.
  data::Dataset<double> edited = train;
  edited.features(2, 100) += 0.5;
  const std::string edited_message = message(resume, edited);
  EXPECT_EQ(edited_message.rfind("fit: checkpoint " + path + " was written on another training set "
                                 "(CRC-32 of its features and targets ",
                                 0),
            0u)
      << edited_message;
  EXPECT_NE(edited_message.find("): resuming needs the same data"), std::string::npos);
  const std::string saved_crc = optim::StateDict::load(path).text("fit.training_set_crc32");
  EXPECT_EQ(saved_crc.size(), 8u);
  // One label changed: another set too.
  data::Dataset<double> relabelled = train;
  relabelled.targets(0, 7) = relabelled.targets(0, 7) == 0 ? 1 : 0;
  EXPECT_NE(message(resume, relabelled), "");

  optim::StateDict old = optim::StateDict::load(path);
  for (const char* key : {"fit.training_samples", "fit.batch_size", "fit.batch_overlap",
                          "fit.drop_last", "fit.seed", "fit.training_set_crc32"})
    old.texts.erase(key);
  old.save(path);
  changed = resume;
  changed.seed = 5;
  EXPECT_EQ(message(changed, train), "");
  std::filesystem::remove_all(dir);
}

// The checkpoint's training-set checksum is over the values as floats: a
// float copy of a double set gives the same one, so a run may resume in the
// other precision on the same data.
TEST_F(Fit, TrainingSetChecksumIsTheSameInFloatAndDouble) {
  const auto dir = std::filesystem::temp_directory_path() / "hesse_fit_crc_test";
  std::filesystem::create_directories(dir);
  const std::string double_path = (dir / "double.ckpt").string();
  const std::string float_path = (dir / "float.ckpt").string();
  FitOptions o{.epochs = 1, .batch_size = 64, .eval_every_steps = 2, .max_steps = 2};
  o.checkpoint_path = double_path;
  {
    TestSgd<double> opt(0.05);
    Vector<double> y = x;
    fit(net, kLoss, train, &test, opt, y, o);
  }
  data::Dataset<float> train_f, test_f;
  train_f.features = train.features.cast<float>();
  train_f.targets = train.targets.cast<float>();
  train_f.num_classes = train.num_classes;
  test_f.features = test.features.cast<float>();
  test_f.targets = test.targets.cast<float>();
  test_f.num_classes = test.num_classes;
  o.checkpoint_path = float_path;
  {
    const nn::Sequential<float> net_f = testing::small_mlp<float>();
    TestSgd<float> opt(0.05);
    Vector<float> y = net_f.initial_parameters(3);
    fit(net_f, kLoss, train_f, &test_f, opt, y, o);
  }
  const std::string a = optim::StateDict::load(double_path).text("fit.training_set_crc32");
  const std::string b = optim::StateDict::load(float_path).text("fit.training_set_crc32");
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(a, b);
  std::filesystem::remove_all(dir);
}

// fit() with batch_overlap and stochastic L-BFGS taking its pairs on the
// shared samples reaches a stated test loss. Measured: see the printed line.
TEST_F(Fit, StochasticLbfgsOnOverlappingBatchesReachesATargetLoss) {
  auto opt = optim::make_optimizer<double>("slbfgs", {{"overlap_size", 32}});
  const auto r = fit(net, kLoss, train, &test, *opt, x,
                     {.epochs = 10, .batch_size = 128, .batch_overlap = 32,
                      .eval_every_steps = 1, .target_loss = 0.2});
  const auto& lbfgs = dynamic_cast<const optim::StochasticLbfgs<double>&>(*opt);
  std::printf("slbfgs, batches of 128 sharing 32: %s after %lld steps, %lld pairs from the next "
              "batch's head, %lld from a gradient on O_k\n",
              r.message.c_str(), static_cast<long long>(r.steps),
              static_cast<long long>(lbfgs.reused_overlap_gradients()),
              static_cast<long long>(lbfgs.extra_overlap_gradients()));
  EXPECT_EQ(r.reason, StopReason::TargetLoss) << r.message;
  EXPECT_LE(r.steps, 20);
  EXPECT_EQ(r.numerical_failures, 0);
  EXPECT_GT(lbfgs.reused_overlap_gradients(), lbfgs.extra_overlap_gradients());
}

TEST_F(Fit, JsonLinesLogHasEveryEvaluationAndTheResult) {
  const auto dir = std::filesystem::temp_directory_path() / "hesse_fit_jsonl_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.jsonl").string();
  JsonLinesLogger log(path, "sgd", true);
  Callback* cbs[] = {&log};
  TestSgd<double> opt(0.05);
  const auto r = fit(net, kLoss, train, &test, opt, x, {.epochs = 2, .batch_size = 64}, cbs);
  std::ifstream in(path);
  int evals = 0, steps = 0, results = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["run"], "sgd");
    if (j["type"] == "eval") {
      ++evals;
      EXPECT_TRUE(j["test_accuracy"].is_number());
    }
    steps += j["type"] == "step";
    if (j["type"] == "result") {
      ++results;
      EXPECT_EQ(j["steps"], r.steps);
    }
  }
  EXPECT_EQ(evals, 2);
  EXPECT_EQ(steps, 12);
  EXPECT_EQ(results, 1);
  std::filesystem::remove_all(dir);
}

TEST_F(Fit, BadOptionsNameTheField) {
  TestSgd<double> opt(0.05);
  auto expect_message = [&](FitOptions o, const std::string& part) {
    const std::string message =
        testing::invalid_argument_message([&] { fit(net, kLoss, train, &test, opt, x, o); });
    EXPECT_NE(message.find(part), std::string::npos)
        << "expected " << part << ", got '" << message << "'";
  };
  expect_message({.epochs = 0}, "FitOptions.epochs");
  expect_message({.batch_size = -1}, "FitOptions.batch_size");
  expect_message({.target_accuracy = 1.5}, "FitOptions.target_accuracy");
  expect_message({.gradient_clip_norm = -1}, "FitOptions.gradient_clip_norm");
  EXPECT_EQ(testing::invalid_argument_message([&] {
              fit(net, kLoss, train, &test, opt, x, {.batch_size = 32, .batch_overlap = 32});
            }),
            "FitOptions.batch_overlap = 32: must be in [0, batch_size = 32)");
  EXPECT_EQ(testing::invalid_argument_message([&] {
              fit(net, kLoss, train, &test, opt, x, {.batch_size = 32, .batch_overlap = -1});
            }),
            "FitOptions.batch_overlap = -1: must be in [0, batch_size = 32)");
  Vector<double> short_x(3);
  EXPECT_THROW(fit(net, kLoss, train, &test, opt, short_x, {}), InvalidArgument);
  Vector<double> nan_x = x;
  nan_x[2] = NAN;
  EXPECT_THROW(fit(net, kLoss, train, &test, opt, nan_x, {}), InvalidArgument);
  const data::Dataset<double>* no_test = nullptr;
  EXPECT_THROW(fit(net, kLoss, train, no_test, opt, x, {.target_accuracy = 0.9}), InvalidArgument);
}

TEST(Schedule, FactorsMatchTheirDefinitions) {
  Schedule step = parse_schedule("step:10:0.5");
  EXPECT_EQ(step.factor(0), 1.0);
  EXPECT_EQ(step.factor(9), 1.0);
  EXPECT_EQ(step.factor(10), 0.5);
  EXPECT_EQ(step.factor(25), 0.25);
  Schedule cosine = parse_schedule("cosine:0.1");
  cosine.total_steps = 100;
  EXPECT_NEAR(cosine.factor(0), 1.0, 1e-15);
  EXPECT_NEAR(cosine.factor(50), 0.55, 1e-15);
  EXPECT_NEAR(cosine.factor(100), 0.1, 1e-15);
  EXPECT_NEAR(cosine.factor(1000), 0.1, 1e-15);
  Schedule warm = parse_schedule("constant,warmup:10");
  EXPECT_NEAR(warm.factor(0), 0.01, 1e-15);
  EXPECT_NEAR(warm.factor(5), 0.01 + 0.99 * 0.5, 1e-15);
  EXPECT_EQ(warm.factor(10), 1.0);
  EXPECT_EQ(to_string(parse_schedule("cosine,warmup:5")), "cosine,warmup:5");
  for (const char* bad : {"", "linear", "step:0:0.5", "step:10", "step:10:2", "cosine,warm:3",
                          "cosine,warmup:x", "step:a:0.5"})
    EXPECT_THROW(parse_schedule(bad), InvalidArgument) << bad;
}

}  // namespace
}  // namespace hesse::train
