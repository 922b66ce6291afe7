# The C++ API reference: `cmake --build <build dir> --target docs` runs Doxygen over the public
# headers, with docs/api.md as the main page, into <build dir>/docs/html. Warnings are errors,
# so a malformed comment or a reference to something that does not exist fails the build (and
# the test that builds it). scripts/setup installs Doxygen; without it there is no target.
find_package(Doxygen 1.9)
if(NOT DOXYGEN_FOUND)
  message(STATUS "Doxygen not found: no `docs` target")
  return()
endif()
set(DOXYGEN_PROJECT_NAME "Bulwark")
set(DOXYGEN_PROJECT_NUMBER ${PROJECT_VERSION})
set(DOXYGEN_PROJECT_BRIEF "Adversarial robustness and privacy for LibTorch models")
set(DOXYGEN_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/docs)
set(DOXYGEN_GENERATE_LATEX NO)
set(DOXYGEN_HTML_TIMESTAMP NO)
set(DOXYGEN_QUIET YES)
set(DOXYGEN_EXTRACT_ALL YES)
set(DOXYGEN_WARN_IF_UNDOCUMENTED NO)
set(DOXYGEN_WARN_AS_ERROR FAIL_ON_WARNINGS)
set(DOXYGEN_FULL_PATH_NAMES YES)
set(DOXYGEN_STRIP_FROM_PATH ${PROJECT_SOURCE_DIR}/include)
set(DOXYGEN_STRIP_FROM_INC_PATH ${PROJECT_SOURCE_DIR}/include)
set(DOXYGEN_USE_MDFILE_AS_MAINPAGE ${PROJECT_SOURCE_DIR}/docs/api.md)
# Options structs declare their fields with LibTorch's TORCH_ARG: show them as members, with
# their comments.
set(DOXYGEN_MACRO_EXPANSION YES)
set(DOXYGEN_EXPAND_ONLY_PREDEF YES)
set(DOXYGEN_PREDEFINED "TORCH_ARG(T,name)=T name")
set(DOXYGEN_EXCLUDE_SYMBOLS "detail" "*::detail::*")
doxygen_add_docs(docs ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/docs/api.md
                 COMMENT "C++ API reference: ${CMAKE_BINARY_DIR}/docs/html/index.html")
