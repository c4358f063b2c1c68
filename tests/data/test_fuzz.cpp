// Mutation fuzzing of every loader: valid small files with bytes flipped,
// overwritten, inserted, deleted and cut off, a few thousand times with a
// fixed seed. Each load must either succeed or raise DataError; anything else
// (another exception, a crash, an out-of-bounds read that the ASan+UBSan
// build catches) fails.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "data_test_util.hpp"
#include "hesse/data/csv.hpp"
#include "hesse/data/idx.hpp"
#include "hesse/data/libsvm.hpp"
#include "hesse/data/npy.hpp"

namespace hesse::data {
namespace {

using testing::fixture;
using testing::read_binary;
using testing::TempDir;

constexpr int kMutationsPerFormat = 600;

// Bytes that matter to the parsers, so mutations hit delimiters and digits
// more often than uniform random bytes would.
constexpr std::string_view kInterestingBytes("\0\xff\n\r,:;.-+ eE0179#'()\x93", 23);

std::string mutate(std::string bytes, std::mt19937_64& rng) {
  auto pick = [&](std::size_t bound) {
    return static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, bound - 1)(rng));
  };
  auto random_byte = [&] {
    return pick(2) ? kInterestingBytes[pick(kInterestingBytes.size())]
                   : static_cast<char>(pick(256));
  };
  const int edits = 1 + static_cast<int>(pick(3));
  for (int e = 0; e < edits && !bytes.empty(); ++e) {
    const std::size_t at = pick(bytes.size());
    switch (pick(5)) {
      case 0:
        bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(8)));
        break;
      case 1:
        bytes[at] = random_byte();
        break;
      case 2:
        bytes.insert(at, pick(4) + 1, random_byte());
        break;
      case 3:
        bytes.erase(at, pick(8) + 1);
        break;
      case 4:
        bytes.resize(at);
        break;
    }
  }
  return bytes;
}

// Loads mutated copies of `inputs` (file name -> valid contents); `load`
// reads the files from the given directory.
void fuzz(const std::vector<std::pair<std::string, std::string>>& inputs, std::uint64_t seed,
          const std::function<void(const std::filesystem::path&)>& load) {
  TempDir dir;
  for (const auto& [name, contents] : inputs) dir.write(name, contents);
  std::mt19937_64 rng(seed);
  int loaded = 0, rejected = 0;
  for (int round = 0; round < kMutationsPerFormat; ++round) {
    // One file mutated per round; the others stay valid.
    const std::size_t victim =
        std::uniform_int_distribution<std::size_t>(0, inputs.size() - 1)(rng);
    const std::string mutated = mutate(inputs[victim].second, rng);
    dir.write(inputs[victim].first, mutated);
    try {
      load(dir.path());
      ++loaded;
    } catch (const DataError&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "round " << round << ": " << typeid(e).name() << ": " << e.what() << "\nmutated "
             << inputs[victim].first << " (" << mutated.size() << " bytes)";
    }
    dir.write(inputs[victim].first, inputs[victim].second);
  }
  // Both outcomes occur, or the mutations are too weak or too strong to test much.
  EXPECT_GT(loaded, 0);
  EXPECT_GT(rejected, 0);
}

TEST(Fuzz, Csv) {
  const std::string csv = "f1,f2,f3,label\n1.5,-2,3e2,0\n4,5.25,-6e-1,1\n7,8,9,2\n0,0,0,1\n";
  fuzz({{"data.csv", csv}}, 1, [](const auto& dir) {
    load_csv<float>(dir / "data.csv");
    CsvOptions options;
    options.task = Task::Regression;
    options.label_index = 0;
    load_csv<double>(dir / "data.csv", options);
  });
}

TEST(Fuzz, CsvSklearnHeader) {
  const std::string csv = "3,2,setosa,versicolor\n5.1,3.5,0\n4.9,3.0,1\n4.7,3.2,0\n";
  fuzz({{"iris.csv", csv}}, 2, [](const auto& dir) {
    CsvOptions options;
    options.sklearn_header = true;
    load_csv<double>(dir / "iris.csv", options);
  });
}

TEST(Fuzz, Libsvm) {
  const std::string svm = "+1 1:0.708 2:1 4:-0.32 # note\n-1 1:0.58 3:0.33\n+1 2:-1 13:1\n-1\n";
  fuzz({{"heart", svm}}, 3, [](const auto& dir) {
    load_libsvm<double>(dir / "heart").to_dense();
    LibsvmOptions options;
    options.num_features = 13;
    options.task = Task::Regression;
    load_libsvm<float>(dir / "heart", options);
  });
}

TEST(Fuzz, Idx) {
  fuzz({{"images", read_binary(fixture("tiny-images-idx3-ubyte"))},
        {"labels", read_binary(fixture("tiny-labels-idx1-ubyte"))}},
       4, [](const auto& dir) { load_idx<float>(dir / "images", dir / "labels"); });
}

TEST(Fuzz, IdxGzip) {
  fuzz({{"images.gz", read_binary(fixture("tiny-images-idx3-ubyte.gz"))},
        {"labels.gz", read_binary(fixture("tiny-labels-idx1-ubyte.gz"))}},
       5, [](const auto& dir) { load_idx<double>(dir / "images.gz", dir / "labels.gz"); });
}

TEST(Fuzz, Npy) {
  fuzz({{"x.npy", read_binary(fixture("features_f4.npy"))},
        {"y.npy", read_binary(fixture("labels_i8.npy"))},
        {"xf.npy", read_binary(fixture("features_fortran.npy"))},
        {"t.npy", read_binary(fixture("targets_f8.npy"))}},
       6, [](const auto& dir) {
         load_npy<float>(dir / "x.npy", dir / "y.npy");
         load_npy<double>(dir / "xf.npy", dir / "t.npy");
       });
}

}  // namespace
}  // namespace hesse::data
