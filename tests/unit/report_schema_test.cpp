// docs/report-schema.md follows from the counters' one declaration: its
// counter table is the rendered one, verbatim.
#include <gtest/gtest.h>

#include <set>

#include "sim/report.hpp"
#include "tests/support/source_dir.hpp"

namespace lpt {
namespace {

TEST(ReportSchema, DocumentsEveryCounterAsDeclared) {
  const std::string doc = test_support::source_file_text("docs/report-schema.md");
  const std::string table = counter_table_markdown();
  EXPECT_NE(doc.find(table), std::string::npos)
      << "docs/report-schema.md must contain the counter table as declared in models/core/counters.cpp:\n"
      << table;
}

TEST(ReportSchema, CounterNamesAndColumnsAreUnique) {
  std::set<std::string_view> names, columns;
  for (const core::Counter c : core::all_counters()) {
    EXPECT_TRUE(names.insert(core::info(c).name).second) << core::info(c).name;
    EXPECT_TRUE(columns.insert(core::info(c).csv).second) << core::info(c).csv;
    EXPECT_FALSE(core::info(c).unit.empty());
    EXPECT_FALSE(core::info(c).description.empty());
  }
}

}  // namespace
}  // namespace lpt
