// `hesse datasets`: the built-in data sets, whether each is on this machine,
// as a table or as JSON.
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hesse/data/builtin.hpp"

namespace hesse::cli {

namespace {

const char* split_name(data::SplitKind split) {
  return split == data::SplitKind::Official ? "official" : "seeded";
}

void print_json(const std::vector<data::BuiltinInfo>& sets) {
  auto out = nlohmann::json::array();
  for (const auto& set : sets) {
    out.push_back({{"name", set.name},
                   {"description", set.description},
                   {"num_features", set.num_features},
                   {"num_classes", set.num_classes},
                   {"num_train", set.num_train},
                   {"num_test", set.num_test},
                   {"split", split_name(set.split)},
                   {"source", set.source},
                   {"licence", set.licence},
                   {"files", set.files},
                   {"available", set.available},
                   {"location", set.available ? nlohmann::json(set.location.string())
                                              : nlohmann::json(nullptr)}});
  }
  std::cout << out.dump(2) << "\n";
}

void print_table(const std::vector<data::BuiltinInfo>& sets) {
  const std::vector<std::string> header{"name", "features", "classes", "train",
                                        "test", "split",    "source",  "available"};
  std::vector<std::vector<std::string>> rows{header};
  for (const auto& set : sets)
    rows.push_back(
        {set.name, std::to_string(set.num_features), std::to_string(set.num_classes),
         std::to_string(set.num_train), std::to_string(set.num_test), split_name(set.split),
         set.source,
         set.available ? "yes (" + set.location.string() + ")" : "no: run scripts/setup"});
  std::vector<std::size_t> widths(header.size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows) {
    std::ostringstream line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      // Counts right-aligned, text left-aligned; the last column unpadded.
      const bool numeric = c >= 1 && c <= 4;
      if (c + 1 == row.size())
        line << row[c];
      else
        line << (numeric ? std::right : std::left) << std::setw(static_cast<int>(widths[c]))
             << row[c] << "  ";
    }
    std::cout << line.str() << "\n";
  }
  std::cout << "seeded splits: stratified, test_fraction 0.2 by default; data directories:";
  for (const auto& dir : data::data_directories()) std::cout << " " << dir.string();
  std::cout << "\n";
}

}  // namespace

void add_datasets_command(CLI::App& app) {
  auto* command =
      app.add_subcommand("datasets", "List the built-in data sets with shapes, splits and sources");
  auto json = std::make_shared<bool>(false);
  command->add_flag("--json", *json, "Print a JSON array instead of a table");
  command->callback([json] {
    const auto sets = data::builtin_datasets();
    if (*json)
      print_json(sets);
    else
      print_table(sets);
  });
}

}  // namespace hesse::cli
