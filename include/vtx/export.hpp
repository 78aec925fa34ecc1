#pragma once
// VTX_API marks the public API. libvtx is built with hidden default visibility (and a linker version script),
// so only what is declared in include/vtx/ is exported from libvtx.so. Static builds define VTX_STATIC.
#if defined(VTX_STATIC)
#define VTX_API
#elif defined(_WIN32)
#if defined(VTX_BUILDING)
#define VTX_API __declspec(dllexport)
#else
#define VTX_API __declspec(dllimport)
#endif
#else
#define VTX_API __attribute__((visibility("default")))
#endif
