# Finds LibTorch and decides whether the CUDA kernels are built.
#
# LibTorch is taken from CMAKE_PREFIX_PATH / Torch_DIR when given (any LibTorch >= 2.1);
# otherwise from the `torch` wheel in the virtual environment scripts/setup made
# ($BULWARK_HOME/venv, BULWARK_HOME defaulting to ~/.cache/bulwark), or from BULWARK_PYTHON.

if(NOT BULWARK_CUDA MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "BULWARK_CUDA must be AUTO, ON or OFF, got '${BULWARK_CUDA}'")
endif()

# Torch's CMake config compiles a probe for the local GPUs unless an architecture list is set;
# there is none here, and the kernels are small: one real architecture plus PTX for newer GPUs.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "7.5+PTX")
endif()

find_package(Torch 2.1 QUIET CONFIG)
if(NOT Torch_FOUND)
  if(NOT BULWARK_PYTHON)
    if(DEFINED ENV{BULWARK_VENV})
      set(_venv $ENV{BULWARK_VENV})
    elseif(DEFINED ENV{BULWARK_HOME})
      set(_venv $ENV{BULWARK_HOME}/venv)
    else()
      set(_venv $ENV{HOME}/.cache/bulwark/venv)
    endif()
    set(BULWARK_PYTHON ${_venv}/bin/python CACHE FILEPATH "Python whose torch wheel provides LibTorch")
  endif()
  execute_process(
    COMMAND ${BULWARK_PYTHON} -c "import torch.utils; print(torch.utils.cmake_prefix_path, end='')"
    OUTPUT_VARIABLE _torch_prefix RESULT_VARIABLE _torch_rc ERROR_QUIET)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR
      "LibTorch not found. Run scripts/setup, or pass -DCMAKE_PREFIX_PATH=/path/to/libtorch "
      "(any LibTorch >= 2.1), or -DBULWARK_PYTHON=/path/to/python with torch installed.")
  endif()
  list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
  find_package(Torch 2.1 REQUIRED CONFIG)
endif()
get_filename_component(BULWARK_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
message(STATUS "Bulwark: LibTorch ${Torch_VERSION} from ${BULWARK_TORCH_LIB_DIR}")

set(BULWARK_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(BULWARK_TORCH_HAS_CUDA ON)
endif()

set(BULWARK_WITH_CUDA OFF)
if(BULWARK_CUDA STREQUAL "ON" OR (BULWARK_CUDA STREQUAL "AUTO" AND BULWARK_TORCH_HAS_CUDA))
  if(NOT BULWARK_TORCH_HAS_CUDA)
    message(FATAL_ERROR "BULWARK_CUDA=ON but the LibTorch found has no CUDA")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Torch's config already adds -gencode flags from TORCH_CUDA_ARCH_LIST.
      set(CMAKE_CUDA_ARCHITECTURES OFF)
    endif()
    enable_language(CUDA)
    set(BULWARK_WITH_CUDA ON)
  elseif(BULWARK_CUDA STREQUAL "ON")
    message(FATAL_ERROR "BULWARK_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "Bulwark: LibTorch has CUDA but no nvcc was found; CUDA kernels are not built")
  endif()
endif()
message(STATUS "Bulwark: CUDA kernels ${BULWARK_WITH_CUDA}")

# The torch wheel keeps its CUDA libraries (NCCL, cuDNN, ...) in site-packages/nvidia/*/lib and
# finds them through $ORIGIN rpaths; the linker must see them before an older copy that a CUDA
# toolkit may have in its own lib directory. Executables also load them first at run time.
set(BULWARK_TORCH_LINK_OPTIONS "")
set(BULWARK_TORCH_RPATH "${BULWARK_TORCH_LIB_DIR}")
file(GLOB _wheel_nvidia_dirs LIST_DIRECTORIES true "${BULWARK_TORCH_LIB_DIR}/../../nvidia/*/lib")
foreach(_dir IN LISTS _wheel_nvidia_dirs)
  get_filename_component(_dir "${_dir}" REALPATH)
  list(APPEND BULWARK_TORCH_LINK_OPTIONS "LINKER:-rpath-link,${_dir}")
  list(APPEND BULWARK_TORCH_RPATH "${_dir}")
endforeach()

# Torch's bundled fmt headers sit in Torch's include directory and would shadow the system fmt
# that libfmt and libspdlog were built with; a directory of links to the system headers, put
# first on our include path, keeps the two in step.
set(BULWARK_SHIM_INCLUDE_DIR ${CMAKE_BINARY_DIR}/system-include)
file(MAKE_DIRECTORY ${BULWARK_SHIM_INCLUDE_DIR})
foreach(_header fmt/format.h spdlog/spdlog.h)
  get_filename_component(_lib ${_header} DIRECTORY)
  find_path(_lib_dir ${_header} PATHS /usr/include /usr/local/include NO_CACHE
            NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  if(_lib_dir AND NOT EXISTS ${BULWARK_SHIM_INCLUDE_DIR}/${_lib})
    file(CREATE_LINK ${_lib_dir}/${_lib} ${BULWARK_SHIM_INCLUDE_DIR}/${_lib} SYMBOLIC)
  endif()
  unset(_lib_dir)
endforeach()
