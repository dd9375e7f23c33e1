// Plain GoogleTest executables link libsystemc.so through lptsim_models. That
// library defines main() calling sc_main(); gtest_main's main() is the one
// that runs, but the library's reference to sc_main (C linkage) must resolve.
extern "C" int sc_main(int, char**) { return 1; }
