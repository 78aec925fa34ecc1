#include "io/npy.hpp"

#include <fstream>
#include <sstream>

#include "io/safetensors.hpp"
#include "vtx/error.hpp"

namespace vtx::io {

std::string npy_bytes(const Tensor& t) {
  if (t.dtype() != DType::F32) throw Error("npy: only float32 tensors are written");
  // Python's tuple repr, as numpy writes it: (), (5,), (500, 333)
  std::string shape = "(";
  for (int i = 0; i < t.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(t.dim(i));
  if (t.ndim() == 1) shape += ",";
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t pre = 10;  // magic (6) + version (2) + header length (2)
  while ((pre + header.size() + 1) % 64) header.push_back(' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

void save_npy(const std::string& path, const Tensor& t) { write_file_atomic(path, npy_bytes(t)); }

Tensor load_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (s.size() < 10 || s.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + ": not a .npy file");
  if (s[6] != 1) throw Error(path + ": unsupported .npy version");
  const size_t hl = static_cast<unsigned char>(s[8]) | static_cast<size_t>(static_cast<unsigned char>(s[9])) << 8;
  if (10 + hl > s.size()) throw Error(path + ": truncated .npy header");
  const std::string h = s.substr(10, hl);
  if (h.find("'<f4'") == std::string::npos || h.find("'fortran_order': False") == std::string::npos)
    throw Error(path + ": only little-endian float32 C-order .npy files are read");
  const size_t a = h.find("'shape': ("), b = h.find(')', a);
  if (a == std::string::npos || b == std::string::npos) throw Error(path + ": .npy header has no shape");
  std::vector<int64_t> shape;
  std::stringstream ss(h.substr(a + 10, b - a - 10));
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(' ') == std::string::npos) continue;
    try {
      shape.push_back(std::stoll(tok));
    } catch (const std::exception&) {
      throw Error(path + ": bad .npy shape");
    }
    if (shape.back() < 0) throw Error(path + ": bad .npy shape");
  }
  Tensor t(shape, DType::F32);
  if (s.size() - 10 - hl != t.nbytes()) throw Error(path + ": .npy data size does not match its shape");
  std::copy(s.begin() + static_cast<std::ptrdiff_t>(10 + hl), s.end(), static_cast<char*>(t.raw()));
  return t;
}

}  // namespace vtx::io
