// A document's kind, told by its keys, and the error for a file in the wrong place.
#include <gtest/gtest.h>

#include "models/common/json_reader.hpp"
#include "sim/document_kind.hpp"

namespace lpt {
namespace {

TEST(DocumentKind, ToldByTheKeys) {
  EXPECT_EQ(document_kind({{"chip", "chip.json"}, {"precision", {}}}), DocumentKind::kConfig);
  EXPECT_EQ(document_kind({{"cores", 4}, {"core", {}}}), DocumentKind::kChip);
  EXPECT_EQ(document_kind({{"multiply_pj", {}}}), DocumentKind::kEnergyTable);
  EXPECT_EQ(document_kind({{"layers", nlohmann::json::array()}}), DocumentKind::kTrace);
  EXPECT_EQ(document_kind({{"config", "c.json"}, {"traces", {"t.json"}}}), DocumentKind::kSweepSpec);
  EXPECT_EQ(document_kind({{"cores", 4}}), std::nullopt);  // "core" missing: not recognisably a chip
  EXPECT_EQ(document_kind(nlohmann::json::array()), std::nullopt);
}

TEST(DocumentKind, AnotherKnownKindIsAnErrorSayingWhatItIs) {
  try {
    expect_document_kind({{"cores", 4}, {"core", {}}}, DocumentKind::kConfig, "chip.json");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "chip.json");
    EXPECT_NE(e.message().find("a chip description"), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("an accelerator config"), std::string::npos) << e.what();
  }
  // The expected kind, or no known kind (its own parser names what is missing), passes.
  EXPECT_NO_THROW(expect_document_kind({{"layers", nlohmann::json::array()}}, DocumentKind::kTrace, "t.json"));
  EXPECT_NO_THROW(expect_document_kind({{"network", "n"}}, DocumentKind::kTrace, "t.json"));
}

}  // namespace
}  // namespace lpt
