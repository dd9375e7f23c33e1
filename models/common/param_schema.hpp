// Config objects declared once, the way gem5's and Ramulator 2's params
// describe themselves: each key's name, type, unit, range, default and meaning
// sit in one declaration that both reads the user's JSON (through JsonReader,
// so errors keep their file, JSON path and expectation, and an unknown key
// lists every key the object may have) and renders the config reference
// (docs/config-reference.md). A reader cannot accept a key the reference does
// not document, nor the reference show a key no reader takes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/common/json_reader.hpp"

namespace lpt::param {

// One row of the reference.
struct KeyDoc {
  std::string name;
  std::string type;
  std::string unit;
  std::string range;     // range, length or choices
  std::string presence;  // "required", or what holds when the key is absent
  std::string description;
};

// The sections of a reference: one per schema, listing every path it was met at.
class ObjectDocs {
 public:
  void add(const void* schema, const std::string& path, const std::string& description,
           std::vector<KeyDoc> keys);
  // Sections as markdown: a heading (at `heading` level) naming the paths, the
  // description, and a table of the keys.
  std::string markdown(const std::string& heading) const;

 private:
  struct Section {
    const void* schema;
    std::vector<std::string> paths;
    std::string description;
    std::vector<KeyDoc> keys;
  };
  std::vector<Section> sections_;
};

template <class T>
struct Key {
  KeyDoc doc;
  std::function<void(const JsonReader& object, T& value)> read;
  // The reference sections of an object under this key, at its path.
  std::function<void(const std::string& path, ObjectDocs& docs)> describe_nested;
  // The value as the reference shows a default (scalars only).
  std::function<std::string(T& value)> show;
};

// An object's keys, read in declaration order, then unknown keys rejected, then
// `check` (constraints between keys) run on the result.
template <class T>
class Schema {
 public:
  using Check = std::function<void(const JsonReader& object, const T& value)>;

  Schema(std::string description, std::vector<Key<T>> keys, Check check = nullptr)
      : description_(std::move(description)), keys_(std::move(keys)), check_(std::move(check)) {}

  T read(const JsonReader& object) const {
    T value{};
    read_into(object, value);
    return value;
  }

  // Reads into `value`, keeping what the keys do not set (see Keys::group).
  void read_into(const JsonReader& object, T& value) const {
    for (const Key<T>& key : keys_) key.read(object, value);
    object.finish();
    if (check_) check_(object, value);
  }

  void describe(const std::string& path, ObjectDocs& docs) const {
    std::vector<KeyDoc> rows;
    for (const Key<T>& key : keys_) rows.push_back(key.doc);
    docs.add(this, path, description_, std::move(rows));
    for (const Key<T>& key : keys_)
      if (key.describe_nested) key.describe_nested(path + "/" + key.doc.name, docs);
  }

 private:
  std::string description_;
  std::vector<Key<T>> keys_;
  Check check_;
};

std::string integer_range(std::int64_t min, std::int64_t max);
std::string number_range(double min, double max);  // as JsonReader::number's errors show it
std::string length_range(std::size_t min, std::size_t max);
std::string shown_number(double value);

// "`a`, `b`, `c`": the names of choices as the reference shows them.
template <class Value>
std::string choice_names(const std::vector<std::pair<std::string_view, Value>>& choices) {
  std::string names;
  for (const auto& [name, value] : choices) names += (names.empty() ? "`" : ", `") + std::string(name) + "`";
  return names;
}

// Builders of the keys of a T. `member` is a data member pointer of T or a
// callable T& -> V& that reaches the value (e.g. an element of an array member).
template <class T>
struct Keys {
  template <class Member>
  using ValueOf = std::remove_cvref_t<std::invoke_result_t<Member, T&>>;

  // A required key read by `read_value(const JsonReader&)`.
  template <class Member, class Read>
  static Key<T> value(KeyDoc doc, Member member, Read read_value) {
    Key<T> key{std::move(doc), {}, {}, {}};
    key.doc.presence = "required";
    key.read = [name = key.doc.name, member, read_value](const JsonReader& object, T& value) {
      std::invoke(member, value) = read_value(object.at(name));
    };
    return key;
  }

  template <class Member>
  static Key<T> integer(std::string name, Member member, std::int64_t min, std::int64_t max, std::string unit,
                        std::string description) {
    Key<T> key = value({std::move(name), "integer", std::move(unit), integer_range(min, max), {}, std::move(description)},
                       member, [min, max](const JsonReader& in) {
                         return static_cast<ValueOf<Member>>(in.integer(min, max));
                       });
    key.show = [member](T& value) { return std::to_string(std::invoke(member, value)); };
    return key;
  }

  template <class Member>
  static Key<T> number(std::string name, Member member, double min, double max, std::string unit,
                       std::string description) {
    Key<T> key = value({std::move(name), "number", std::move(unit), number_range(min, max), {}, std::move(description)},
                       member, [min, max](const JsonReader& in) { return in.number(min, max); });
    key.show = [member](T& value) { return shown_number(std::invoke(member, value)); };
    return key;
  }

  template <class Member>
  static Key<T> boolean(std::string name, Member member, std::string description) {
    Key<T> key = value({std::move(name), "boolean", {}, "`true`, `false`", {}, std::move(description)}, member,
                       [](const JsonReader& in) { return in.boolean(); });
    key.show = [member](T& value) { return std::invoke(member, value) ? "true" : "false"; };
    return key;
  }

  template <class Member>
  static Key<T> text(std::string name, Member member, std::string description) {
    return value({std::move(name), "string", {}, "non-empty", {}, std::move(description)}, member,
                 [](const JsonReader& in) { return in.string(); });
  }

  // One of named values; `choices` are string literals, as JsonReader::choice takes them.
  template <class Member>
  static Key<T> choice(std::string name, Member member,
                       std::vector<std::pair<std::string_view, ValueOf<Member>>> choices, std::string description) {
    Key<T> key = value({std::move(name), "string", {}, choice_names(choices), {}, std::move(description)}, member,
                       [choices](const JsonReader& in) {
                         return in.choice(std::span<const std::pair<std::string_view, ValueOf<Member>>>(choices));
                       });
    key.show = [member, choices](T& value) {
      for (const auto& [choice_name, choice_value] : choices)
        if (choice_value == std::invoke(member, value)) return std::string(choice_name);
      return std::string();
    };
    return key;
  }

  template <class Member>
  static Key<T> strings(std::string name, Member member, std::size_t min_size, std::size_t max_size,
                        std::string description) {
    return value({std::move(name), "array of strings", {}, length_range(min_size, max_size), {}, std::move(description)},
                 member, [min_size, max_size](const JsonReader& in) {
                   std::vector<std::string> out;
                   for (const JsonReader& element : in.elements(min_size, max_size)) out.push_back(element.string());
                   return out;
                 });
  }

  // An object of `what` (e.g. format name) -> integer; at least one member.
  template <class Member>
  static Key<T> integer_map(std::string name, Member member, std::string what, std::int64_t min, std::int64_t max,
                            std::string unit, std::string example, std::string description) {
    return value({std::move(name), "object: " + what + " → integer", std::move(unit), integer_range(min, max), {},
                  std::move(description)},
                 member, [min, max, example](const JsonReader& in) {
                   ValueOf<Member> out;
                   for (const auto& [entry, number] : in.members())
                     out[entry] = static_cast<typename ValueOf<Member>::mapped_type>(number.integer(min, max));
                   if (out.empty()) in.fail("expected at least one format, e.g. " + example);
                   return out;
                 });
  }

  template <class Member>
  static Key<T> number_map(std::string name, Member member, std::string what, double min, double max,
                           std::string unit, std::string example, std::string description) {
    return value({std::move(name), "object: " + what + " → number", std::move(unit), number_range(min, max), {},
                  std::move(description)},
                 member, [min, max, example](const JsonReader& in) {
                   ValueOf<Member> out;
                   for (const auto& [entry, number] : in.members()) out[entry] = number.number(min, max);
                   if (out.empty()) in.fail("expected at least one format, e.g. " + example);
                   return out;
                 });
  }

  // A nested object, read by its own schema (which must outlive this key).
  template <class Member>
  static Key<T> object(std::string name, Member member, const Schema<ValueOf<Member>>& schema,
                       std::string description) {
    Key<T> key = value({std::move(name), "object", {}, {}, {}, std::move(description)}, member,
                       [&schema](const JsonReader& in) { return schema.read(in); });
    key.describe_nested = [&schema](const std::string& path, ObjectDocs& docs) { schema.describe(path, docs); };
    return key;
  }

  // An array of objects, each read by `schema`; the reference shows them at path/*.
  template <class Member>
  static Key<T> list(std::string name, Member member, const Schema<typename ValueOf<Member>::value_type>& schema,
                     std::size_t min_size, std::size_t max_size, std::string description) {
    Key<T> key = value({std::move(name), "array of objects", {}, length_range(min_size, max_size), {},
                        std::move(description)},
                       member, [&schema, min_size, max_size](const JsonReader& in) {
                         ValueOf<Member> out;
                         for (const JsonReader& element : in.elements(min_size, max_size))
                           out.push_back(schema.read(element));
                         return out;
                       });
    key.describe_nested = [&schema](const std::string& path, ObjectDocs& docs) { schema.describe(path + "/*", docs); };
    return key;
  }

  // A nested object whose keys are more members of T, e.g. "sfu_pj": {"alu", "exp"}
  // read into a flat table.
  static Key<T> group(std::string name, const Schema<T>& schema, std::string description) {
    Key<T> key{{std::move(name), "object", {}, {}, "required", std::move(description)}, {}, {}, {}};
    key.read = [name = key.doc.name, &schema](const JsonReader& object, T& value) {
      schema.read_into(object.at(name), value);
    };
    key.describe_nested = [&schema](const std::string& path, ObjectDocs& docs) { schema.describe(path, docs); };
    return key;
  }

  // An optional nested object: `member` is a std::optional, empty when the key is absent.
  template <class Member>
  static Key<T> optional_object(std::string name, Member member,
                                const Schema<typename ValueOf<Member>::value_type>& schema, std::string absent,
                                std::string description) {
    Key<T> key{{std::move(name), "object", {}, {}, std::move(absent), std::move(description)}, {}, {}, {}};
    key.read = [name = key.doc.name, member, &schema](const JsonReader& object, T& value) {
      if (const auto in = object.find(name)) std::invoke(member, value) = schema.read(*in);
    };
    key.describe_nested = [&schema](const std::string& path, ObjectDocs& docs) { schema.describe(path, docs); };
    return key;
  }

  // `key` made optional: when absent the value keeps its default, which the
  // reference shows (or `absent`, if given, says what holds instead).
  static Key<T> optional(Key<T> key, std::string absent = {}) {
    if (absent.empty()) {
      T defaults{};
      absent = key.show ? "`" + key.show(defaults) + "`" : "optional";
    }
    key.doc.presence = std::move(absent);
    key.read = [name = key.doc.name, read = std::move(key.read)](const JsonReader& object, T& value) {
      if (object.find(name)) read(object, value);
    };
    return key;
  }
};

}  // namespace lpt::param
