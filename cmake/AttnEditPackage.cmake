# Installs attnedit as a CMake package: find_package(AttnEdit) gives
# AttnEdit::IR, AttnEdit::Frontend, AttnEdit::Passes, AttnEdit::Runtime, AttnEdit::Ascend, the
# headers and .td files, and AttnEdit_PLUGIN for mlir-opt-19.
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

get_property(attnedit_libraries GLOBAL PROPERTY ATTNEDIT_LIBRARIES)
get_property(attnedit_tools GLOBAL PROPERTY ATTNEDIT_TOOLS)
install(TARGETS ${attnedit_libraries} EXPORT AttnEditTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ${attnedit_tools} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS AttnEditPlugin LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(component ir frontend passes runtime backends/ascend)
  foreach(root ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
    if(EXISTS ${root}/${component}/include/attnedit)
      install(DIRECTORY ${root}/${component}/include/attnedit
              DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
              FILES_MATCHING PATTERN "*.h" PATTERN "*.inc" PATTERN "*.td"
              PATTERN "CMakeFiles" EXCLUDE)
    endif()
  endforeach()
endforeach()

set(ATTNEDIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/AttnEdit)
install(EXPORT AttnEditTargets NAMESPACE AttnEdit:: DESTINATION ${ATTNEDIT_CMAKE_DIR})
export(EXPORT AttnEditTargets NAMESPACE AttnEdit::
       FILE ${PROJECT_BINARY_DIR}/lib/cmake/AttnEdit/AttnEditTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/AttnEditConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lib/cmake/AttnEdit/AttnEditConfig.cmake
  INSTALL_DESTINATION ${ATTNEDIT_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/lib/cmake/AttnEdit/AttnEditConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lib/cmake/AttnEdit/AttnEditConfig.cmake
              ${PROJECT_BINARY_DIR}/lib/cmake/AttnEdit/AttnEditConfigVersion.cmake
        DESTINATION ${ATTNEDIT_CMAKE_DIR})
