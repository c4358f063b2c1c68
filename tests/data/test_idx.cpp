#include <gtest/gtest.h>

#include "data_test_util.hpp"
#include "hesse/data/idx.hpp"

namespace hesse::data {
namespace {

using testing::expect_data_error;
using testing::fixture;
using testing::read_binary;
using testing::TempDir;

// The fixtures hold 4 images of 2x3 pixels, pixel j of image i = 10 i + j,
// and the labels 3, 1, 4, 1 (tests/fixtures/data/make_fixtures.py).
void expect_tiny(const Dataset<float>& data) {
  ASSERT_EQ(data.num_samples(), 4);
  ASSERT_EQ(data.num_features(), 6);
  for (Index i = 0; i < 4; ++i)
    for (Index j = 0; j < 6; ++j)
      EXPECT_FLOAT_EQ(data.features(j, i), static_cast<float>(10 * i + j) / 255.0f);
  EXPECT_EQ(data.label(0), 3);
  EXPECT_EQ(data.label(1), 1);
  EXPECT_EQ(data.label(2), 4);
  EXPECT_EQ(data.label(3), 1);
  EXPECT_EQ(data.num_classes, 5);
  EXPECT_EQ(data.class_names.size(), 5u);
}

TEST(Idx, Plain) {
  expect_tiny(
      load_idx<float>(fixture("tiny-images-idx3-ubyte"), fixture("tiny-labels-idx1-ubyte")));
}

TEST(Idx, Gzip) {
  expect_tiny(
      load_idx<float>(fixture("tiny-images-idx3-ubyte.gz"), fixture("tiny-labels-idx1-ubyte.gz")));
}

TEST(Idx, DoubleMatchesFloat) {
  const auto d =
      load_idx<double>(fixture("tiny-images-idx3-ubyte"), fixture("tiny-labels-idx1-ubyte"));
  EXPECT_DOUBLE_EQ(d.features(5, 3), 35.0 / 255.0);
}

class IdxErrors : public ::testing::Test {
 protected:
  std::string images_ = read_binary(fixture("tiny-images-idx3-ubyte"));
  std::string labels_ = read_binary(fixture("tiny-labels-idx1-ubyte"));
  TempDir dir_;
};

TEST_F(IdxErrors, WrongMagic) {
  auto bad = images_;
  bad[3] = 1;
  const auto images = dir_.write("bad-images", bad);
  const auto labels = dir_.write("labels", labels_);
  expect_data_error(
      [&] { load_idx<float>(images, labels); },
      {"bad-images", "byte 0", "expected magic number 0x00000803", "found 0x00000801"});
  // Images and labels swapped.
  expect_data_error([&] { load_idx<float>(labels, labels); }, {"byte 0", "0x00000803"});
}

TEST_F(IdxErrors, Truncated) {
  const auto images = dir_.write("short-images", images_.substr(0, images_.size() - 1));
  const auto labels = dir_.write("labels", labels_);
  expect_data_error([&] { load_idx<float>(images, labels); },
                    {"short-images", "byte 39", "4 x 2 x 3", "ends after 23 data bytes"});
  const auto header = dir_.write("header-images", images_.substr(0, 9));
  expect_data_error([&] { load_idx<float>(header, labels); },
                    {"header-images", "byte 9", "inside the header"});
  const auto magic = dir_.write("magic-images", images_.substr(0, 2));
  expect_data_error([&] { load_idx<float>(magic, labels); }, {"magic-images", "byte 2"});
}

TEST_F(IdxErrors, TrailingBytes) {
  const auto images = dir_.write("long-images", images_ + "xy");
  const auto labels = dir_.write("labels", labels_);
  expect_data_error([&] { load_idx<float>(images, labels); },
                    {"long-images", "byte 40", "2 bytes more"});
}

TEST_F(IdxErrors, CountMismatch) {
  auto fewer = labels_.substr(0, labels_.size() - 1);
  fewer[7] = 3;
  const auto images = dir_.write("images", images_);
  const auto labels = dir_.write("few-labels", fewer);
  expect_data_error([&] { load_idx<float>(images, labels); },
                    {"few-labels", "3 labels", "has 4 images"});
}

TEST_F(IdxErrors, MissingFile) {
  const auto images = dir_.write("images", images_);
  expect_data_error([&] { load_idx<float>(images, dir_.path() / "absent-labels"); },
                    {"absent-labels", "no such file"});
}

TEST_F(IdxErrors, CorruptGzip) {
  auto gz = read_binary(fixture("tiny-images-idx3-ubyte.gz"));
  const auto truncated = dir_.write("cut-images.gz", gz.substr(0, gz.size() - 12));
  const auto labels = dir_.write("labels", labels_);
  expect_data_error([&] { load_idx<float>(truncated, labels); }, {"cut-images.gz", "byte"});
}

}  // namespace
}  // namespace hesse::data
