#include "models/common/param_schema.hpp"

#include <algorithm>
#include <sstream>

namespace lpt::param {

namespace {

// A table cell: a '|' would end it, a line break the table.
std::string cell(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string integer_range(std::int64_t min, std::int64_t max) {
  return "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

std::string number_range(double min, double max) {
  std::ostringstream out;
  out << "[" << min << ", " << max << "]";
  return out.str();
}

std::string length_range(std::size_t min, std::size_t max) {
  if (max == SIZE_MAX) return "at least " + std::to_string(min) + " elements";
  if (min == max) return std::to_string(min) + " elements";
  return std::to_string(min) + " to " + std::to_string(max) + " elements";
}

std::string shown_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void ObjectDocs::add(const void* schema, const std::string& path, const std::string& description,
                     std::vector<KeyDoc> keys) {
  const auto seen = std::find_if(sections_.begin(), sections_.end(),
                                 [schema](const Section& section) { return section.schema == schema; });
  if (seen != sections_.end()) {
    if (std::find(seen->paths.begin(), seen->paths.end(), path) == seen->paths.end()) seen->paths.push_back(path);
    return;
  }
  sections_.push_back({schema, {path}, description, std::move(keys)});
}

std::string ObjectDocs::markdown(const std::string& heading) const {
  std::string out;
  for (const Section& section : sections_) {
    out += "\n" + heading;
    for (std::size_t i = 0; i < section.paths.size(); ++i)
      out += (i == 0 ? " `" : ", `") + (section.paths[i].empty() ? std::string("/") : section.paths[i]) + "`";
    out += "\n\n" + section.description + "\n\n";
    out += "| key | type | unit | range or choices | default | description |\n|---|---|---|---|---|---|\n";
    for (const KeyDoc& key : section.keys)
      out += "| `" + key.name + "` | " + cell(key.type) + " | " + cell(key.unit) + " | " + cell(key.range) + " | " +
             cell(key.presence) + " | " + cell(key.description) + " |\n";
  }
  return out;
}

}  // namespace lpt::param
