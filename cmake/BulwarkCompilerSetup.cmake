# ccache and sanitizers; applied to every target of the project.
if(BULWARK_USE_CCACHE)
  find_program(BULWARK_CCACHE ccache)
  if(BULWARK_CCACHE)
    set(CMAKE_CXX_COMPILER_LAUNCHER ${BULWARK_CCACHE})
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${BULWARK_CCACHE})
  endif()
endif()

if(BULWARK_SANITIZE)
  # LibTorch itself is not instrumented; ASan and UBSan work on our code, others (TSan, MSan) do not.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${BULWARK_SANITIZE}>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=${BULWARK_SANITIZE})
endif()

set(BULWARK_WARNINGS $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)

# Compiles `target` like the library (same definitions, -fPIC, the system fmt/spdlog headers
# first) and reuses the library's precompiled <torch/torch.h>: one 20 s header parse for the
# whole project instead of one per target.
function(bulwark_use_library_pch target)
  target_include_directories(${target} BEFORE PRIVATE ${BULWARK_SHIM_INCLUDE_DIR})
  target_link_libraries(${target} PRIVATE fmt::fmt spdlog::spdlog)
  target_compile_options(${target} PRIVATE ${BULWARK_WARNINGS} -fPIC)
  set_target_properties(${target} PROPERTIES BUILD_RPATH "${BULWARK_TORCH_RPATH}")
  if(BULWARK_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM bulwark)
  endif()
endfunction()
