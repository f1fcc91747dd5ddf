# hpcinfer_add_plugin(<target> SOURCES <src>... [LIBS <lib>...] [OUTPUT_DIR <dir>] [NO_INSTALL])
# Builds a plugin as a MODULE library (lib<target>.so) with hidden visibility; only the hpcinfer_plugin symbol
# (HPCINFER_EXPORT_PLUGIN) is exported.
# - In-tree: output in build/lib/hpcinfer (HPCINFER_PLUGIN_OUTPUT_DIR), installed into <prefix>/lib/hpcinfer, and
#   listed in the global property HPCINFER_PLUGIN_TARGETS.
# - Out-of-tree, after find_package(hpcinfer): output in the current binary directory (point HPCINFER_PLUGIN_PATH
#   there), installed into <prefix>/lib/hpcinfer where an hpcinfer installed in the same prefix finds it.
# OUTPUT_DIR overrides where the .so is written; NO_INSTALL leaves it out of `cmake --install` (test fixtures).
include_guard(GLOBAL)
include(GNUInstallDirs)

function(hpcinfer_add_plugin target)
  cmake_parse_arguments(P "NO_INSTALL" "OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "hpcinfer_add_plugin(${target}): no SOURCES given")
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE hpcinfer::interfaces ${P_LIBS})
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(P_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
  elseif(DEFINED HPCINFER_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${HPCINFER_PLUGIN_OUTPUT_DIR})
    set_property(GLOBAL APPEND PROPERTY HPCINFER_PLUGIN_TARGETS ${target})
  endif()
  if(NOT P_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/hpcinfer)
  endif()
endfunction()
