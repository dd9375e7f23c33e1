#include "sim/document_kind.hpp"

#include "models/common/json_reader.hpp"

namespace lpt {

std::optional<DocumentKind> document_kind(const nlohmann::json& document) {
  if (!document.is_object()) return std::nullopt;
  if (document.contains("chip")) return DocumentKind::kConfig;
  if (document.contains("cores") && document.contains("core")) return DocumentKind::kChip;
  if (document.contains("multiply_pj")) return DocumentKind::kEnergyTable;
  if (document.contains("layers")) return DocumentKind::kTrace;
  if (document.contains("traces")) return DocumentKind::kSweepSpec;
  return std::nullopt;
}

std::string describe(DocumentKind kind) {
  switch (kind) {
    case DocumentKind::kConfig: return "an accelerator config (JSON with \"chip\")";
    case DocumentKind::kChip: return "a chip description (JSON with \"cores\" and \"core\")";
    case DocumentKind::kEnergyTable: return "an energy table (JSON with \"multiply_pj\")";
    case DocumentKind::kTrace: return "a trace (JSON with \"layers\")";
    case DocumentKind::kSweepSpec: return "a sweep spec (JSON with \"traces\")";
  }
  return "?";
}

namespace {

// Where a file of this kind goes.
const char* usage_of(DocumentKind kind) {
  switch (kind) {
    case DocumentKind::kConfig: return "give it with --config";
    case DocumentKind::kChip: return "a config names it with \"chip\": \"FILE\" (see configs/rapid-4core.json)";
    case DocumentKind::kEnergyTable: return "a chip description names it with \"energy\": \"FILE\"";
    case DocumentKind::kTrace: return "give it with --trace";
    case DocumentKind::kSweepSpec: return "run it with lptsim sweep";
  }
  return "";
}

}  // namespace

void expect_document_kind(const nlohmann::json& document, DocumentKind expected, const std::string& file) {
  const std::optional<DocumentKind> kind = document_kind(document);
  if (!kind || *kind == expected) return;
  throw InputError(file, "", "this is " + describe(*kind) + ", where " + describe(expected) + " was expected; " +
                                 usage_of(*kind));
}

}  // namespace lpt
