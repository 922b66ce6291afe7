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
