// Where the shipped configs, traces and docs are: ctest sets LPTSIM_SOURCE_DIR;
// the compiled-in source directory serves when a test binary is run by hand.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace lpt::test_support {

inline std::filesystem::path source_dir() {
  const char* dir = std::getenv("LPTSIM_SOURCE_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(LPTSIM_SOURCE_DIR);
}

// A file of the source tree, whole (empty if it cannot be read).
inline std::string source_file_text(const std::filesystem::path& relative) {
  std::ifstream in(source_dir() / relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace lpt::test_support
