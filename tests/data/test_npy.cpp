#include <gtest/gtest.h>

#include <cstdlib>

#include "data_test_util.hpp"
#include "hesse/data/csv.hpp"
#include "hesse/data/npy.hpp"

namespace hesse::data {
namespace {

using testing::expect_data_error;
using testing::fixture;
using testing::read_binary;
using testing::TempDir;

// tests/fixtures/data/make_fixtures.py writes, with numpy.save,
// features[i, j] = (3 i + j) / 4 (float types) or 3 i + j (integer types)
// for 5 samples and 3 features, and labels[i] = 7 i mod 3.
void expect_grid(const Dataset<double>& data, bool integer_values) {
  ASSERT_EQ(data.num_samples(), 5);
  ASSERT_EQ(data.num_features(), 3);
  for (Index i = 0; i < 5; ++i)
    for (Index j = 0; j < 3; ++j)
      EXPECT_DOUBLE_EQ(data.features(j, i),
                       static_cast<double>(3 * i + j) / (integer_values ? 1.0 : 4.0));
  for (Index i = 0; i < 5; ++i) EXPECT_EQ(data.label(i), (7 * i) % 3);
  EXPECT_EQ(data.num_classes, 3);
  EXPECT_EQ(data.class_names, (std::vector<std::string>{"0", "1", "2"}));
}

TEST(Npy, ElementTypesAgreeWithNumpy) {
  expect_grid(load_npy<double>(fixture("features_f4.npy"), fixture("labels_i8.npy")), false);
  expect_grid(load_npy<double>(fixture("features_f8.npy"), fixture("labels_i4.npy")), false);
  expect_grid(load_npy<double>(fixture("features_u1.npy"), fixture("labels_u1.npy")), true);
  expect_grid(load_npy<double>(fixture("features_i4.npy"), fixture("labels_i8.npy")), true);
}

TEST(Npy, FortranOrderVersion2AndGzip) {
  expect_grid(load_npy<double>(fixture("features_fortran.npy"), fixture("labels_i8.npy")), false);
  expect_grid(load_npy<double>(fixture("features_v2.npy"), fixture("labels_i8.npy.gz")), false);
}

TEST(Npy, ImagesAreFlattenedPerSample) {
  const auto data = load_npy<float>(fixture("features_3d.npy"), fixture("labels_i8.npy"));
  ASSERT_EQ(data.num_features(), 4);
  EXPECT_FLOAT_EQ(data.features(3, 4), 19.0f / 4.0f);
}

TEST(Npy, FloatTargetsAreRegression) {
  const auto data = load_npy<double>(fixture("features_f8.npy"), fixture("targets_f8.npy"));
  EXPECT_FALSE(data.is_classification());
  ASSERT_EQ(data.targets.rows(), 2);
  ASSERT_EQ(data.targets.cols(), 5);
  EXPECT_DOUBLE_EQ(data.targets(1, 4), 9.0 / 4.0);
}

// Random data written by numpy next to the same values printed exactly as
// text; the NPY reader must agree with the CSV reader bit for bit.
TEST(Npy, AgreesWithLiveNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not installed";
  TempDir dir;
  const std::string script =
      "import numpy as np, sys\n"
      "rng = np.random.default_rng(7)\n"
      "x = (rng.standard_normal((40, 6)) * 10.0 ** rng.integers(-30, 30, (40, 6))).astype('<f8')\n"
      "y = rng.integers(0, 4, 40).astype('<i8')\n"
      "d = sys.argv[1]\n"
      "np.save(d + '/x.npy', x)\n"
      "np.save(d + '/y.npy', y)\n"
      "with open(d + '/xy.csv', 'w') as f:\n"
      "    for row, label in zip(x, y):\n"
      "        f.write(','.join(repr(float(v)) for v in row) + ',' + str(label) + '\\n')\n";
  const auto script_path = dir.write("make.py", script);
  const std::string command =
      "/usr/bin/python3 " + script_path.string() + " " + dir.path().string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  const auto from_npy = load_npy<double>(dir.path() / "x.npy", dir.path() / "y.npy");
  const auto from_csv = load_csv<double>(dir.path() / "xy.csv");
  EXPECT_EQ(from_npy.features, from_csv.features);
  EXPECT_EQ(from_npy.targets, from_csv.targets);
}

TEST(NpyErrors, UnsupportedElementType) {
  expect_data_error(
      [] { load_npy<double>(fixture("features_big_endian.npy"), fixture("labels_i8.npy")); },
      {"features_big_endian.npy", "byte ", "unsupported element type '>f4'"});
}

TEST(NpyErrors, NanValue) {
  // Element [2, 1] of a float32 C-order array after the 128-byte header.
  expect_data_error([] { load_npy<double>(fixture("features_nan.npy"), fixture("labels_i8.npy")); },
                    {"features_nan.npy", "byte 156", "expected a finite number at [2, 1]"});
}

TEST(NpyErrors, SampleCountMismatch) {
  expect_data_error(
      [] { load_npy<double>(fixture("features_f4.npy"), fixture("labels_short.npy")); },
      {"labels_short.npy", "(4,) labels", "features_f4.npy has 5 samples"});
}

TEST(NpyErrors, NegativeClassLabel) {
  expect_data_error(
      [] { load_npy<double>(fixture("features_f4.npy"), fixture("labels_negative.npy")); },
      {"labels_negative.npy", "byte 128", "class label -1 of sample 0 is out of range"});
}

TEST(NpyErrors, Truncated) {
  TempDir dir;
  const auto bytes = read_binary(fixture("features_f4.npy"));
  const auto cut = dir.write("cut.npy", bytes.substr(0, bytes.size() - 3));
  expect_data_error([&] { load_npy<double>(cut, fixture("labels_i8.npy")); },
                    {"cut.npy", "byte 185", "shape (5, 3) of <f4"});
  const auto longer = dir.write("long.npy", bytes + "abcd");
  expect_data_error([&] { load_npy<double>(longer, fixture("labels_i8.npy")); },
                    {"long.npy", "byte 188", "needs 60 bytes", "has 64"});
  const auto header = dir.write("header.npy", bytes.substr(0, 40));
  expect_data_error([&] { load_npy<double>(header, fixture("labels_i8.npy")); },
                    {"header.npy", "byte 40", "inside the header"});
}

TEST(NpyErrors, BadMagicAndHeader) {
  TempDir dir;
  auto bytes = read_binary(fixture("features_f4.npy"));
  auto magic = bytes;
  magic[1] = 'M';
  expect_data_error(
      [&] { load_npy<double>(dir.write("magic.npy", magic), fixture("labels_i8.npy")); },
      {"magic.npy", "byte 0", "\\x93NUMPY"});
  auto version = bytes;
  version[6] = 9;
  expect_data_error(
      [&] { load_npy<double>(dir.write("version.npy", version), fixture("labels_i8.npy")); },
      {"version.npy", "byte 6", "version 9"});
  auto header = bytes;
  header[header.find("False")] = 'f';
  expect_data_error(
      [&] { load_npy<double>(dir.write("header.npy", header), fixture("labels_i8.npy")); },
      {"header.npy", "byte ", "True or False"});
  auto shape = bytes;
  shape[shape.find("(5, 3)") + 1] = 'x';
  expect_data_error(
      [&] { load_npy<double>(dir.write("shape.npy", shape), fixture("labels_i8.npy")); },
      {"shape.npy", "byte ", "non-negative integer in 'shape'"});
}

TEST(NpyErrors, WrongRanks) {
  expect_data_error([] { load_npy<double>(fixture("labels_i8.npy"), fixture("labels_i8.npy")); },
                    {"labels_i8.npy", "expected features of shape [n, d]"});
  expect_data_error(
      [] { load_npy<double>(fixture("features_f4.npy"), fixture("features_3d.npy")); },
      {"features_3d.npy", "expected labels of shape [n] or [n, t]"});
}

}  // namespace
}  // namespace hesse::data
