#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "io/files.hpp"
#include "vtx/io.hpp"
#include "vtx/error.hpp"

namespace fs = std::filesystem;

namespace vtx::io {

std::string atomic_write_target(const std::string& path) {
  if (path.empty()) throw Error("output path is empty");
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    return path;  // new file
  }
  std::string target = path;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const fs::path t = fs::canonical(path, ec);  // every link in the chain resolved
    if (ec) throw Error(path + ": is a symbolic link to a file that does not exist; refusing to write through it");
    target = t.string();
    if (::lstat(target.c_str(), &st) != 0) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode))
    throw Error(path + ": is " + file_kind(st.st_mode) + "; refusing to replace it (outputs go to new or regular files)");
  // Like mv / install, a file the user owns is replaced even when its mode is read-only (the permission bits
  // are kept); a file of another user is replaced only when the user may write to it.
  if (st.st_uid != ::geteuid() && ::access(target.c_str(), W_OK) != 0)
    throw Error(path + ": belongs to another user and is not writable by you; refusing to replace it");
  return target;
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  const std::string target = atomic_write_target(path);
  struct stat old{};
  const bool exists = ::stat(target.c_str(), &old) == 0;
  const fs::path tp(target);
  fs::path dir = tp.parent_path();
  if (dir.empty()) dir = ".";
  static std::atomic<unsigned> counter{0};
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  const std::string tmp = (dir / ("." + tp.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                                  std::to_string(counter++) + "." + std::to_string(stamp & 0xffffff)))
                              .string();
  // O_EXCL: never opens (or follows) something that is already there.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0) throw Error(path + ": cannot write a temporary file in " + dir.string() + " (" + std::strerror(errno) + ")");
  auto fail = [&](const std::string& what, int e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(path + ": " + what + " (" + std::strerror(e) + ")");
  };
  if (exists && ::fchmod(fd, old.st_mode & 07777) != 0) fail("cannot set the permissions of the temporary file", errno);
  const char* p = static_cast<const char*>(data);
  size_t off = 0;
  while (off < size) {
    const ssize_t w = ::write(fd, p + off, size - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 && errno != EINVAL) fail("write failed (fsync)", errno);
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": write failed (" + std::strerror(e) + ")");
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place (" + std::strerror(e) + ")");
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace vtx::io

namespace vtx {

std::string atomic_write_target(const std::string& path) { return io::atomic_write_target(path); }

void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs) {
  std::vector<fs::path> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      for (auto it = fs::directory_iterator(in, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        files.push_back(it->path());
    } else {
      files.emplace_back(in);
    }
  }
  for (const auto& out : outputs) {
    std::error_code ec;
    if (fs::exists(out, ec))
      for (const auto& in : files)
        if (fs::equivalent(out, in, ec))
          throw Error(out + ": is one of the inputs (" + in.string() + "); refusing to overwrite it, choose another output");
    io::atomic_write_target(out);
  }
}

}  // namespace vtx
