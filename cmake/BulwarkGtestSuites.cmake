# One ctest test per GoogleTest suite instead of one per test case.
#
# Every process of a test binary first loads LibTorch (about 0.3 s user + 0.17 s system on the
# project's 2-core machine, its operator registry and CUDA libraries): with one process per case
# the unit tests paid that 234 times. Running each suite in one process pays it once per suite
# (about 60 times), and
# the cases of a suite still report one by one in the test's output. A suite's *_CUDA cases get
# their own ctest test so that ctest shows them as skipped on a machine without a GPU.
#
#   bulwark_gtest_suites(<target> [PROPERTIES <set_tests_properties arguments>...])
#
# (Splitting the CLI suites into one process per case was tried: under the sanitizers it
# shortens the longest test, but in release the cases' shared set-up runs once per case and
# the suite costs 181 s·proc instead of 62.)
#
# Like gtest_discover_tests, the list is read from the binary after each build (POST_BUILD),
# in the build's environment (the dev preset's sanitizer options), into a file ctest includes.
# In script mode (-P) this file does that listing.

if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND "${EXE}" --gtest_list_tests
                  OUTPUT_VARIABLE listing RESULT_VARIABLE status TIMEOUT 120)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${EXE} --gtest_list_tests failed (${status}):\n${listing}")
  endif()
  # Brackets and semicolons (in parameter comments) would break CMake's list handling.
  string(REPLACE ";" "," listing "${listing}")
  string(REPLACE "[" "(" listing "${listing}")
  string(REPLACE "]" ")" listing "${listing}")
  string(REPLACE "\n" ";" lines "${listing}")
  set(suites "")
  set(cuda_suites "")
  set(plain_suites "")
  set(suite "")
  set(out "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^([^ #][^ ]*)\\.")
      set(suite "${CMAKE_MATCH_1}")
      list(APPEND suites "${suite}")
    elseif(line MATCHES "^  ([^ ]+)_CUDA( |$)")
      list(APPEND cuda_suites "${suite}")
    elseif(line MATCHES "^  ([^ ]+)( |$)")
      list(APPEND plain_suites "${suite}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES cuda_suites)
  foreach(suite IN LISTS suites)
    set(name "${suite}")
    set(filter "${suite}.*")
    if(suite IN_LIST cuda_suites)
      string(APPEND out "add_test([=[${name}_CUDA]=] [=[${EXE}]=] [=[--gtest_filter=${suite}.*_CUDA]=])\n"
                        "set_tests_properties([=[${name}_CUDA]=] PROPERTIES ${PROPS} "
                        "SKIP_REGULAR_EXPRESSION [=[\\[  SKIPPED \\]]=])\n")
      set(filter "${suite}.*-${suite}.*_CUDA")
    endif()
    if(NOT suite IN_LIST plain_suites)
      continue()  # only *_CUDA cases
    endif()
    string(APPEND out "add_test([=[${name}]=] [=[${EXE}]=] [=[--gtest_filter=${filter}]=])\n"
                      "set_tests_properties([=[${name}]=] PROPERTIES ${PROPS})\n")
  endforeach()
  file(WRITE "${OUT}" "${out}")
  return()
endif()

set(_bulwark_gtest_suites_script ${CMAKE_CURRENT_LIST_FILE})

function(bulwark_gtest_suites target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "PROPERTIES")
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_suites.cmake)
  # set_tests_properties arguments, each bracket-quoted so that values may hold spaces (one
  # value per argument: a list value such as "A=1;B=2" is not supported).
  set(props "")
  foreach(value IN LISTS arg_PROPERTIES)
    string(APPEND props "[=[${value}]=] ")
  endforeach()
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -D EXE=$<TARGET_FILE:${target}> -D OUT=${out}
            "-D PROPS=${props}" -P ${_bulwark_gtest_suites_script}
    BYPRODUCTS ${out}
    VERBATIM)
  # ctest reads the list through a wrapper, so that it still runs (and says what is missing)
  # before the binary is built.
  set(wrapper ${CMAKE_CURRENT_BINARY_DIR}/${target}_suites_include.cmake)
  file(WRITE ${wrapper}
       "if(EXISTS [=[${out}]=])\n  include([=[${out}]=])\nelse()\n"
       "  add_test([=[${target}_NOT_BUILT]=] [=[${target}_NOT_BUILT]=])\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${wrapper})
endfunction()
