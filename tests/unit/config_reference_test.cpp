// docs/config-reference.md follows from the declarations that read the input
// files: it is the rendered reference, verbatim, and every key a shipped file
// uses is documented at its path.
#include <gtest/gtest.h>


#include "models/common/param_schema.hpp"
#include "sim/config.hpp"
#include "sim/config_reference.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

TEST(ConfigReference, CheckedInFileIsTheRenderedOne) {
  const std::string doc = test_support::source_file_text("docs/config-reference.md");
  EXPECT_EQ(doc, config_reference_markdown())
      << "docs/config-reference.md is out of date: regenerate it with "
         "`build/sim/lptsim config-reference > docs/config-reference.md`";
}

TEST(ConfigReference, UnknownKeyListsEveryKeyTheObjectMayHave) {
  nlohmann::json chip = load_chip_document(test_support::source_dir() / "configs/chip-tiny.json");
  chip["core"]["mac_array"].erase("l0");
  chip["core"]["mac_array"]["colums"] = 4;
  try {
    core::chip_schema().read(JsonReader(chip, ""));
    FAIL() << "the misspelt key was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.json_path(), "/core/mac_array/colums");
    // l0 is optional and absent here, and still listed.
    EXPECT_EQ(e.message(),
              "unknown key; expected one of: cols, corelets, dataflow, l0, macs_per_pe_per_cycle, pipelined_folds, "
              "rows");
  }
}

struct Sizes {
  int small = 1;
  int large = 2;
  std::map<std::string, int> rates;
};

const param::Schema<Sizes>& sizes_schema() {
  using K = param::Keys<Sizes>;
  static const param::Schema<Sizes> schema(
      "Test sizes.",
      {K::integer("small", &Sizes::small, 0, 9, "KiB", "a small size"),
       K::optional(K::integer("large", &Sizes::large, 0, 99, "KiB", "a large size")),
       K::optional(K::integer_map("rates", &Sizes::rates, "format name", 1, 8, "MACs", "{\"fp16\": 8}", "rates"))});
  return schema;
}

Sizes read_sizes(const std::string& text) {
  const nlohmann::json json = nlohmann::json::parse(text);
  return sizes_schema().read(JsonReader(json, "/sizes"));
}

std::string error_of(const std::string& text) {
  try {
    read_sizes(text);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ParamSchema, ReadsDeclaredKeysWithDefaults) {
  const Sizes sizes = read_sizes(R"({"small": 3})");
  EXPECT_EQ(sizes.small, 3);
  EXPECT_EQ(sizes.large, 2);
  EXPECT_TRUE(sizes.rates.empty());
  EXPECT_EQ(read_sizes(R"({"small": 3, "large": 50, "rates": {"int4": 8}})").rates.at("int4"), 8);
}

TEST(ParamSchema, ErrorsNamePathAndExpectation) {
  EXPECT_EQ(error_of(R"({"small": 10})"), "<input>: /sizes/small: expected an integer in [0, 9], got 10");
  EXPECT_EQ(error_of(R"({})"), "<input>: /sizes/small: missing required key");
  EXPECT_EQ(error_of(R"({"small": 1, "rates": {}})"),
            "<input>: /sizes/rates: expected at least one format, e.g. {\"fp16\": 8}");
}

TEST(ParamSchema, UnknownKeyListsEveryKeyOfTheObject) {
  // Optional keys the object does not have are listed too.
  EXPECT_EQ(error_of(R"({"small": 1, "lage": 5})"),
            "<input>: /sizes/lage: unknown key; expected one of: large, rates, small");
}

TEST(ParamSchema, DescribesEachObjectOnceWithItsPaths) {
  param::ObjectDocs docs;
  sizes_schema().describe("/a", docs);
  sizes_schema().describe("/b", docs);
  EXPECT_EQ(docs.markdown("##"),
            "\n## `/a`, `/b`\n\nTest sizes.\n\n"
            "| key | type | unit | range or choices | default | description |\n|---|---|---|---|---|---|\n"
            "| `small` | integer | KiB | [0, 9] | required | a small size |\n"
            "| `large` | integer | KiB | [0, 99] | `2` | a large size |\n"
            "| `rates` | object: format name → integer | MACs | [1, 8] | optional | rates |\n");
}

}  // namespace
}  // namespace lpt
