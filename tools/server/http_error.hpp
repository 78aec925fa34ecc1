#pragma once
// An error answer: HTTP status, JSON {"error": message, "error_type": type}, optional extra headers.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vtx::server {

struct HttpError : std::runtime_error {
  HttpError(int status, std::string type, const std::string& message,
            std::vector<std::pair<std::string, std::string>> headers = {})
      : std::runtime_error(message), status(status), type(std::move(type)), headers(std::move(headers)) {}
  int status;
  std::string type;
  std::vector<std::pair<std::string, std::string>> headers;
};

}  // namespace vtx::server
