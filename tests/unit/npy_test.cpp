#include "sim/npy.hpp"

#include <cstring>

#include <gtest/gtest.h>

#include "models/common/json_reader.hpp"

namespace lpt {
namespace {

// A version 1.0 file: magic, version, header length, header padded to 64 bytes, data.
std::string npy(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  header.resize(((header.size() + 11) / 64 + 1) * 64 - 11, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

TEST(Npy, ReadsFloatAndIntegerTensors) {
  const NpyArray f = parse_npy(npy("<f4", "(2, 3)", raw<float>({1, 2, 3, 4, 5, -6.5f})), "w.npy");
  EXPECT_EQ(f.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(f.shape_text(), "(2, 3)");
  EXPECT_EQ(f.values, (std::vector<double>{1, 2, 3, 4, 5, -6.5}));
  const NpyArray d = parse_npy(npy("<f8", "(2,)", raw<double>({0.1, -1e300})), "d.npy");
  EXPECT_EQ(d.values, (std::vector<double>{0.1, -1e300}));
  EXPECT_EQ(d.shape_text(), "(2,)");
  const NpyArray i = parse_npy(npy("|i1", "(3,)", raw<std::int8_t>({-128, 0, 127})), "i.npy");
  EXPECT_EQ(i.values, (std::vector<double>{-128, 0, 127}));
  // IEEE half: 1.0, -2.0, the smallest subnormal 2^-24.
  const NpyArray h = parse_npy(npy("<f2", "(3,)", raw<std::uint16_t>({0x3c00, 0xc000, 0x0001})), "h.npy");
  EXPECT_EQ(h.values, (std::vector<double>{1.0, -2.0, 0x1p-24}));
}

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "t.npy");
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "t.npy");
    return e.message();
  }
  return "no error";
}

TEST(Npy, BadFilesSayWhatWasExpected) {
  EXPECT_NE(error_of("PK\x03\x04 a zip").find("magic"), std::string::npos);
  EXPECT_NE(error_of(npy(">f4", "(1,)", raw<float>({1}))).find("little-endian"), std::string::npos);
  EXPECT_NE(error_of(npy("<c8", "(1,)", std::string(8, '\0'))).find("<c8"), std::string::npos);
  EXPECT_NE(error_of(npy("<U3", "(1,)", std::string(12, '\0'))).find("<U3"), std::string::npos);
  const std::string cut = error_of(npy("<f4", "(2, 2)", raw<float>({1, 2, 3})));
  EXPECT_NE(cut.find("shape (2, 2) of <f4 needs 16 data bytes, the file has 12"), std::string::npos) << cut;
  EXPECT_NE(error_of(std::string("\x93NUMPY\x01\x00\xff\x00{", 11)).find("cut short"), std::string::npos);
  EXPECT_NE(error_of(npy("<f4", "(99999999999999,)", "")).find("too large"), std::string::npos);
}

}  // namespace
}  // namespace lpt
