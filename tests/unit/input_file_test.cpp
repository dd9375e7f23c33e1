// Safe reading of input files and preparing output directories (models/common/input_file).
#include "models/common/input_file.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "models/common/json_reader.hpp"

namespace lpt {
namespace {

namespace fs = std::filesystem;

class InputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lptsim-input-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string error_of(const fs::path& file, std::uintmax_t limit = kMaxInputFileBytes) {
    try {
      read_input_file(file, limit);
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), file.string());
      return e.message();
    }
    ADD_FAILURE() << "read " << file;
    return {};
  }

  fs::path dir_;
};

TEST_F(InputFileTest, ReadsARegularFile) {
  std::ofstream(dir_ / "a.json") << "{\"x\": 1}";
  EXPECT_EQ(read_input_file(dir_ / "a.json"), "{\"x\": 1}");
}

TEST_F(InputFileTest, AFifoIsRejectedAtOnce) {
  const fs::path fifo = dir_ / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of(fifo).find("FIFO"), std::string::npos);
}

TEST_F(InputFileTest, DevicesDirectoriesAndMissingFilesAreRejected) {
  EXPECT_NE(error_of("/dev/zero").find("character device"), std::string::npos);
  EXPECT_NE(error_of(dir_).find("directory"), std::string::npos);
  EXPECT_NE(error_of(dir_ / "missing.json").find("cannot open"), std::string::npos);
}

TEST_F(InputFileTest, OversizedFilesAreRejectedWithTheLimit) {
  std::ofstream(dir_ / "big.json") << std::string(2 << 20, ' ');
  EXPECT_NE(error_of(dir_ / "big.json", 1 << 20).find("limited to 1 MiB"), std::string::npos);
}

TEST_F(InputFileTest, OutputDirectoryIsCreatedOrRejected) {
  prepare_output_directory(dir_ / "out" / "nested");
  EXPECT_TRUE(fs::is_directory(dir_ / "out" / "nested"));
  std::ofstream(dir_ / "plain") << "x";
  EXPECT_THROW(prepare_output_directory(dir_ / "plain"), InputError);
  EXPECT_THROW(prepare_output_directory(""), InputError);
}

}  // namespace
}  // namespace lpt
