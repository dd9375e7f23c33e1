// What kind of lptsim input a JSON document is, told by its keys, so that a
// file given in the wrong place says what it is instead of failing on a
// missing key.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace lpt {

enum class DocumentKind {
  kConfig,       // "chip" (and the precision policy)
  kChip,         // "cores" and "core"
  kEnergyTable,  // "multiply_pj"
  kTrace,        // "layers"
  kSweepSpec,    // "traces"
};

// nullopt for a document of none of these kinds.
std::optional<DocumentKind> document_kind(const nlohmann::json& document);

// e.g. "a chip description (JSON with \"cores\" and \"core\")".
std::string describe(DocumentKind kind);

// Throws InputError naming `file` when the document is of another known kind
// than `expected`, saying what it is and where such a file goes.
void expect_document_kind(const nlohmann::json& document, DocumentKind expected, const std::string& file);

}  // namespace lpt
