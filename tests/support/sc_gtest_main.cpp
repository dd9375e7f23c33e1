// SystemC tests: GoogleTest runs inside sc_main, as the SystemC kernel expects.
// main() silences the kernel's banner first (it is printed before sc_main, and
// test discovery runs these binaries without ctest's environment).
#include <gtest/gtest.h>

#include <cstdlib>
#include <systemc>

int sc_main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
