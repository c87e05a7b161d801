# Wrappers that give every attnedit library the same shape (CIRCT's AddCIRCT habit):
# linked against the MLIR and LLVM dylibs only, exported as AttnEdit::<Name>.

# attnedit_add_library(<Name> <sources>... [FOLDER dir] [DEPENDS ...] [LINK_LIBS ...])
# FOLDER is the component's folder when it is not the lower-cased name
# (backends/cpu for CPU).
function(attnedit_add_library name)
  cmake_parse_arguments(ARG "" "FOLDER" "DEPENDS;LINK_LIBS" ${ARGN})
  add_mlir_library(AttnEdit${name} ${ARG_UNPARSED_ARGUMENTS}
    DEPENDS ${ARG_DEPENDS}
    LINK_LIBS PUBLIC ${ARG_LINK_LIBS} MLIR LLVM)
  set_target_properties(AttnEdit${name} PROPERTIES EXPORT_NAME ${name})
  string(TOLOWER ${name} folder)
  if(ARG_FOLDER)
    set(folder ${ARG_FOLDER})
  endif()
  target_include_directories(AttnEdit${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/${folder}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/${folder}/include>
    $<INSTALL_INTERFACE:include>)
  # Debian's imported MLIR target carries no include path; consumers need it.
  target_include_directories(AttnEdit${name} SYSTEM PUBLIC ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
  if(ATTNEDIT_SANITIZE)
    target_link_options(AttnEdit${name} INTERFACE ${ATTNEDIT_SANITIZER_FLAGS})
  endif()
  set_property(GLOBAL APPEND PROPERTY ATTNEDIT_LIBRARIES AttnEdit${name})
endfunction()

# attnedit_add_sanitizer_options(<executable>): in a sanitized build, the
# executable carries ASan's default options (see AsanDefaultOptions.cpp).
function(attnedit_add_sanitizer_options name)
  if(ATTNEDIT_SANITIZE)
    target_sources(${name} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/AsanDefaultOptions.cpp)
  endif()
endfunction()

# attnedit_add_tool(<name> <sources>... LINK_LIBS ...)
function(attnedit_add_tool name)
  cmake_parse_arguments(ARG "" "" "LINK_LIBS" ${ARGN})
  add_llvm_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  attnedit_add_sanitizer_options(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LINK_LIBS} MLIR LLVM)
  # tools/ToolVersion.h: --version names attnedit's version.
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tools)
  target_compile_definitions(${name} PRIVATE ATTNEDIT_VERSION="${PROJECT_VERSION}")
  set_property(GLOBAL APPEND PROPERTY ATTNEDIT_TOOLS ${name})
endfunction()
