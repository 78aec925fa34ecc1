#pragma once
// vtx version. CMakeLists.txt reads its project version from these lines: this is the one place it is set.
#define VTX_VERSION_MAJOR 0
#define VTX_VERSION_MINOR 2
#define VTX_VERSION_PATCH 0
#define VTX_VERSION_STRING "0.2.0"
// Single integer for comparisons: VTX_VERSION >= VTX_MAKE_VERSION(0, 2, 0).
#define VTX_MAKE_VERSION(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define VTX_VERSION VTX_MAKE_VERSION(VTX_VERSION_MAJOR, VTX_VERSION_MINOR, VTX_VERSION_PATCH)

#include "vtx/export.hpp"

namespace vtx {
// The version of the library actually linked (may differ from the headers' when linking a shared libvtx).
VTX_API const char* version_string();
}  // namespace vtx
