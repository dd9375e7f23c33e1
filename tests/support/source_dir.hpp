// Where the shipped configs and traces are: ctest sets LPTSIM_SOURCE_DIR; the
// compiled-in source directory serves when a test binary is run by hand.
#pragma once

#include <cstdlib>
#include <filesystem>

namespace lpt::test_support {

inline std::filesystem::path source_dir() {
  const char* dir = std::getenv("LPTSIM_SOURCE_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::path(LPTSIM_SOURCE_DIR);
}

}  // namespace lpt::test_support
