// vtx command-line tool. Each command is in tools/cli_<name>.cpp; this file only dispatches.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

#include "cli.hpp"
#include "vtx/error.hpp"

namespace vtx::cli {

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> r;
  return r;
}

ArgParser::ArgParser(const Args& args, const std::vector<std::string>& value_flags,
                     const std::vector<std::string>& bool_flags) {
  auto is = [](const std::vector<std::string>& v, const std::string& s) {
    for (const auto& x : v)
      if (x == s) return true;
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a, val;
      auto eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        val = a.substr(eq + 1);
      }
      if (is(bool_flags, name)) {
        vals_.emplace(name, "1");
      } else if (is(value_flags, name)) {
        if (eq == std::string::npos) {
          if (i + 1 >= args.size()) throw CliError(name + " needs a value");
          val = args[++i];
        }
        vals_.emplace(name, val);
        // multi-value flags: consume following non-flag arguments for flags registered as "name..."
        if (is(value_flags, name + "...")) {
          while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) vals_.emplace(name, args[++i]);
        }
      } else {
        throw CliError("unknown option " + name);
      }
    } else {
      pos_.push_back(a);
    }
  }
}

std::string ArgParser::get(const std::string& flag, const std::string& def) const {
  auto it = vals_.find(flag);
  return it == vals_.end() ? def : it->second;
}

std::vector<std::string> ArgParser::get_all(const std::string& flag) const {
  std::vector<std::string> r;
  auto [b, e] = vals_.equal_range(flag);
  for (auto it = b; it != e; ++it) r.push_back(it->second);
  return r;
}

int ArgParser::get_int(const std::string& flag, int def) const {
  if (!has(flag)) return def;
  std::string v = get(flag);
  try {
    size_t used = 0;
    int x = std::stoi(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw CliError(flag + ": not an integer: '" + v + "'");
  }
}

}  // namespace vtx::cli

static void usage() {
  std::cerr << "usage: vtx <command> [args]\n\ncommands:\n";
  for (const auto& [name, c] : vtx::cli::registry()) std::cerr << "  " << name << "  " << c.summary << "\n";
}

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    usage();
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  auto& reg = vtx::cli::registry();
  auto it = reg.find(cmd);
  if (it == reg.end()) {
    std::cerr << "vtx: unknown command '" << cmd << "' (try vtx --help)\n";
    return 2;
  }
  vtx::cli::Args args(argv + 2, argv + argc);
  // `vtx CMD --help` (or -h first): the command's usage on stdout, exit 0. Every command checks its arguments
  // before it does anything and throws its usage as a CliError when they are missing, so run it without any.
  if (std::find(args.begin(), args.end(), "--help") != args.end() || (!args.empty() && args[0] == "-h")) {
    try {
      it->second.run(vtx::cli::Args{});
    } catch (const vtx::cli::CliError& e) {
      const std::string u = e.what();
      if (u.rfind("usage:", 0) == 0) {
        std::cout << u << "\n";
        return 0;
      }
    } catch (const std::exception&) {
    }
    std::cout << "vtx " << cmd << ": " << it->second.summary << "\n";
    return 0;
  }
  try {
    return it->second.run(args);
  } catch (const vtx::cli::CliError& e) {
    std::cerr << "vtx " << cmd << ": " << e.what() << "\n";
    return 2;
  } catch (const vtx::Error& e) {
    std::cerr << "vtx " << cmd << ": " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "vtx " << cmd << ": out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "vtx " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}
