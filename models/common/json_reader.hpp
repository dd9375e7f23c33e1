// Strict, path-aware reading of user JSON (configs, traces).
//
// Every error names the file, the JSON pointer path and what was expected, so a
// user can fix a config without reading our code. A reader over an object
// remembers which keys were read; finish() rejects the rest, so a typo in a key
// is an error rather than a silently ignored setting.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/text.hpp"

namespace lpt {

// Bad user input. Carries where (file, JSON path) and what was expected.
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string json_path, std::string message);

  const std::string& file() const { return file_; }
  const std::string& json_path() const { return json_path_; }
  const std::string& message() const { return message_; }

  // The same error attributed to `file` (used by loaders that parse in memory first).
  InputError in_file(std::string file) const;

 private:
  std::string file_;
  std::string json_path_;
  std::string message_;
};

class JsonReader {
 public:
  JsonReader(const nlohmann::json& value, std::string path);

  const nlohmann::json& json() const { return *value_; }
  const std::string& path() const { return path_; }

  // --- object access (the value must be an object) ---
  bool has(std::string_view key) const;
  JsonReader at(std::string_view key) const;                  // required member
  std::optional<JsonReader> find(std::string_view key) const;  // optional member
  // All members in document order; marks them all as read.
  std::vector<std::pair<std::string, JsonReader>> members() const;
  // Throws on members that nothing read: "unknown key; expected one of ...".
  void finish() const;

  // --- scalar access, each with the expected type/range in its error ---
  std::int64_t integer(std::int64_t min, std::int64_t max) const;
  double number(double min, double max) const;  // finite, in [min, max]
  bool boolean() const;
  std::string string() const;  // non-empty
  std::string one_of(std::initializer_list<std::string_view> choices) const;
  template <class Enum>
  Enum choice(std::initializer_list<std::pair<std::string_view, Enum>> choices) const {
    return choice(std::span(choices.begin(), choices.size()));
  }
  template <class Enum>
  Enum choice(std::span<const std::pair<std::string_view, Enum>> choices) const {
    const std::string s = string();
    for (const auto& [name, value] : choices)
      if (s == name) return value;
    std::string expected;
    for (const auto& [name, value] : choices) expected += (expected.empty() ? "" : "|") + std::string(name);
    fail("expected one of " + expected + ", got " + quoted_excerpt(s));
  }

  // --- array access ---
  std::vector<JsonReader> elements(std::size_t min_size = 0,
                                   std::size_t max_size = SIZE_MAX) const;
  std::vector<std::int64_t> integers(std::size_t size, std::int64_t min,
                                     std::int64_t max) const;  // exact length

  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_at(std::string_view key, const std::string& message) const;

 private:
  void expect_object() const;
  std::string type_name() const;

  const nlohmann::json* value_;
  std::string path_;
  std::shared_ptr<std::set<std::string, std::less<>>> read_keys_;
};

// Nesting deeper than this is rejected while parsing: no config or trace
// needs more than a handful of levels, and deep values must not exhaust the
// stack of whatever walks them later.
inline constexpr int kMaxJsonDepth = 64;

// Parses JSON text strictly: syntax errors (whole, with line and column),
// numbers out of range, nesting deeper than kMaxJsonDepth and duplicate keys
// (with both places) are InputError attributed to `file`.
nlohmann::json parse_json_text(std::string_view text, const std::string& file);

// JSON text of `value`; bytes that are not UTF-8 (file names may hold them)
// become U+FFFD instead of an exception.
std::string json_text(const nlohmann::json& value, int indent = -1);

// Reads (read_input_file: regular files below a size limit) and parses a file.
nlohmann::json load_json_file(const std::filesystem::path& file);

// Runs `parse` on the file's JSON, attributing any InputError to the file.
template <class T, class Parse>
T parse_json_file(const std::filesystem::path& file, Parse&& parse) {
  const nlohmann::json doc = load_json_file(file);
  try {
    return parse(JsonReader(doc, ""));
  } catch (const InputError& e) {
    throw e.in_file(file.string());
  }
}

}  // namespace lpt
