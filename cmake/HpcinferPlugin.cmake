# hpcinfer_add_plugin(<target> SOURCES <src>... [LIBS <lib>...])
# Builds a plugin as a MODULE library with hidden visibility into the plugin directory (build/lib/hpcinfer in-tree),
# and installs it beside the others. Used in-tree and by out-of-tree plugins after find_package(hpcinfer).
function(hpcinfer_add_plugin target)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE hpcinfer::interfaces ${P_LIBS})
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED HPCINFER_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${HPCINFER_PLUGIN_OUTPUT_DIR})
    install(TARGETS ${target} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/hpcinfer)
  endif()
endfunction()
