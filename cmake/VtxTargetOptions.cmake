# Per-target build settings (nothing is set globally, so vtx behaves inside another project's build).
#   vtx_target_options(T)   C++20, vtx's warnings, and the sanitizers when VTX_SANITIZE is ON
#   vtx_target_sanitize(T)  only the sanitizer link flags (for targets made of vtx_objects)
function(vtx_target_sanitize target)
  if(VTX_SANITIZE)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

function(vtx_target_options target)
  target_compile_features(${target} PRIVATE cxx_std_20)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(VTX_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
  endif()
  if(VTX_FUZZ)  # coverage instrumentation for libFuzzer (tests/fuzz; clang only)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
  vtx_target_sanitize(${target})
endfunction()
