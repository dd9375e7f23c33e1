#include "models/common/input_file.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/common/json_reader.hpp"

namespace lpt {

namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Closes the descriptor on every path out of read_input_file.
struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string read_input_file(const std::filesystem::path& file, std::uintmax_t max_bytes) {
  if (file.empty()) throw InputError("", "", "empty file name");
  const auto fail = [&](const std::string& message) -> std::string {
    throw InputError(file.string(), "", message);
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check follows.
  const FileDescriptor in{::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (in.fd < 0) return fail(std::string("cannot open for reading: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(in.fd, &info) != 0) return fail(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return fail("is " + kind_of(info.st_mode) + "; expected a regular file");
  const auto size = static_cast<std::uintmax_t>(info.st_size);
  const auto limit_text = std::to_string(max_bytes >> 20) + " MiB";
  if (size > max_bytes)
    return fail("is " + std::to_string(size) + " bytes; input files are limited to " + limit_text);
  std::string text(static_cast<std::size_t>(size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t got = ::read(in.fd, text.data() + done, text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail(std::string("cannot read: ") + std::strerror(errno));
    if (got == 0) break;  // shrank while reading: take what is there
    done += static_cast<std::size_t>(got);
  }
  text.resize(done);
  return text;
}

void prepare_output_directory(const std::filesystem::path& dir) {
  if (dir.empty()) throw InputError("", "", "empty output directory name");
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw InputError(dir.string(), "", "cannot create output directory: " + error.message());
  if (!std::filesystem::is_directory(dir, error))
    throw InputError(dir.string(), "", "output path exists and is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw InputError(dir.string(), "", std::string("cannot write into output directory: ") +
                                           std::strerror(errno));
}

}  // namespace lpt
