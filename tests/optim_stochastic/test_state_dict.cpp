#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "../common/errors.hpp"
#include "../common/small_network.hpp"
#include "hesse/core/atomic_file.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

TEST(StateDict, RoundTripIsExactForFloatDoubleAndRng) {
  StateDict s;
  Vector<float> vf(3);
  vf << 1.0f / 3.0f, -0.0f, std::numeric_limits<float>::denorm_min();
  Matrix<double> md(2, 2);
  md << 1.0 / 7.0, 2, std::nextafter(1.0, 2.0), -5e-300;
  s.put("vf", vf);
  s.put("md", md);
  s.scalars["step"] = 42;
  Rng rng(123);
  rng();
  s.put_rng("rng", rng);

  const StateDict t = StateDict::deserialize(s.serialize(), "memory");
  Vector<float> vf2(3);
  Matrix<double> md2(2, 2);
  t.get("vf", vf2);
  t.get("md", md2);
  EXPECT_EQ(0, std::memcmp(vf.data(), vf2.data(), sizeof(float) * 3));
  EXPECT_EQ(0, std::memcmp(md.data(), md2.data(), sizeof(double) * 4));
  EXPECT_EQ(t.scalar("step"), 42);
  Rng rng2;
  t.get_rng("rng", rng2);
  EXPECT_EQ(rng(), rng2());
}

TEST(StateDict, MalformedBytesNameTheProblem) {
  StateDict s;
  s.put("a", Vector<double>::Ones(4));
  const std::string bytes = s.serialize();
  EXPECT_THROW(StateDict::deserialize("garbage", "f.state"), DataError);
  try {
    StateDict::deserialize(bytes.substr(0, bytes.size() - 5), "f.state");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("f.state: truncated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(StateDict::deserialize(bytes + "x", "f.state"), DataError);
  Vector<double> wrong(3);
  EXPECT_THROW(s.get("a", wrong), InvalidArgument);
  EXPECT_THROW(s.array("missing"), InvalidArgument);
}

TEST(StateDict, SaveIsAtomicAndLoadsBack) {
  const auto dir = std::filesystem::temp_directory_path() / "hesse_state_dict_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "s.state").string();
  StateDict s;
  s.scalars["x"] = 1.5;
  s.save(path);
  s.scalars["x"] = 2.5;
  s.save(path);  // replaces
  EXPECT_EQ(StateDict::load(path).scalar("x"), 2.5);
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename(), "s.state") << "temporary file left behind";
  EXPECT_THROW(StateDict::load((dir / "missing").string()), DataError);
  std::filesystem::remove_all(dir);
}

TEST(SettingsReader, ReadsKnownAndRefusesUnknown) {
  double lr = 0.1;
  Index k = 10;
  bool nesterov = false;
  const OptimizerSettings good{{"lr", 0.5}, {"k", 3}, {"nesterov", 1}};
  SettingsReader r("sgd", good);
  r.read("lr", lr);
  r.read("k", k);
  r.read("nesterov", nesterov);
  r.finish();
  EXPECT_EQ(lr, 0.5);
  EXPECT_EQ(k, 3);
  EXPECT_TRUE(nesterov);

  const OptimizerSettings bad{{"lr", 0.5}, {"momentun", 0.9}};
  SettingsReader r2("sgd", bad);
  r2.read("lr", lr);
  EXPECT_NE(
      testing::invalid_argument_message([&] { r2.finish(); }).find("unknown setting 'momentun'"),
      std::string::npos);
  const OptimizerSettings frac{{"k", 2.5}};
  SettingsReader r3("kfac", frac);
  EXPECT_THROW(r3.read("k", k), InvalidArgument);
}

TEST(StochasticAdapter, ForwardsANetworkObjectiveAndItsBlocks) {
  const auto data = testing::blobs<double>(60);
  nn::NetworkObjective<double> net(testing::small_mlp<double>(), nn::LossKind::SoftmaxCrossEntropy,
                                   data);
  StochasticAdapter<nn::NetworkObjective<double>> f(net);
  EXPECT_EQ(f.dimension(), 4 * 16 + 16 + 16 * 3 + 3);
  EXPECT_TRUE(f.has_hessian_vector());
  EXPECT_TRUE(f.has_gauss_newton_vector());
  EXPECT_EQ(f.network(), &net);
  const auto blocks = f.parameter_blocks();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].rows, 16);
  EXPECT_EQ(blocks[0].cols, 4);
  EXPECT_EQ(blocks[0].bias_offset, 64);
  EXPECT_EQ(blocks[1].weight_offset, 80);
  EXPECT_EQ(blocks[1].layer, 2);
  const Vector<double> x = net.network().initial_parameters(1);
  const std::vector<Index> batch{0, 5, 9};
  f.select_batch(batch);
  Vector<double> g1, g2;
  const double v1 = f.value_and_gradient(x, &g1);
  net.select_batch(batch);
  const double v2 = net.value_and_gradient(x, &g2);
  EXPECT_EQ(v1, v2);
  EXPECT_EQ(g1, g2);
}

}  // namespace
}  // namespace hesse::optim
