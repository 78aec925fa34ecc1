#include "io/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vtx/error.hpp"

namespace vtx::io {

std::string file_kind(unsigned mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

int open_regular(const std::string& path, const std::string& what) {
  const std::string label = what.empty() ? "" : what + " ";
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": cannot open " + label + "(" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode))
    throw Error(path + ": " + label + "is " + file_kind(st.st_mode) + ", not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error(path + ": cannot open " + label + "(" + std::strerror(errno) + ")");
  struct stat st2{};
  if (::fstat(fd, &st2) != 0 || !S_ISREG(st2.st_mode)) {
    ::close(fd);
    throw Error(path + ": " + label + "is not a regular file (it changed while being opened)");
  }
  // Regular files ignore O_NONBLOCK for reads; clear it anyway so the descriptor behaves normally.
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

std::string read_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  const int fd = open_regular(path, what);
  struct stat st{};
  std::string problem;
  std::string bytes;
  if (::fstat(fd, &st) != 0) {
    problem = std::string("cannot read (") + std::strerror(errno) + ")";
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    problem = "file is " + std::to_string(st.st_size) + " bytes, more than the limit of " + std::to_string(max_bytes);
  } else {
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        problem = r < 0 ? std::string("read error (") + std::strerror(errno) + ")" : "file shrank while reading";
        break;
      }
      got += static_cast<size_t>(r);
    }
  }
  ::close(fd);
  if (!problem.empty()) throw Error(path + ": " + problem);
  return bytes;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa{}, sb{};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace vtx::io
