# install + export: find_package(bulwark) gives the target bulwark::bulwark.
include(CMakePackageConfigHelpers)

install(TARGETS bulwark EXPORT bulwarkTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/bulwark DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/bulwark/config.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bulwark)
if(BULWARK_BUILD_CLI)
  install(TARGETS bulwark_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(BULWARK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/bulwark)
install(EXPORT bulwarkTargets NAMESPACE bulwark:: DESTINATION ${BULWARK_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/bulwarkConfig.cmake.in
  ${PROJECT_BINARY_DIR}/bulwarkConfig.cmake INSTALL_DESTINATION ${BULWARK_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bulwarkConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bulwarkConfig.cmake
              ${PROJECT_BINARY_DIR}/bulwarkConfigVersion.cmake
        DESTINATION ${BULWARK_CMAKE_DIR})
