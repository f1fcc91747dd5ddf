# Build facts for env.json in the results directory (core/results/build_info.cpp only, so that a reconfigure after a
# new commit recompiles one file): the checkout's commit at configure time, and library versions as built.
execute_process(COMMAND git -C ${CMAKE_SOURCE_DIR} rev-parse HEAD RESULT_VARIABLE HPCINFER_GIT_RC
                OUTPUT_VARIABLE HPCINFER_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT HPCINFER_GIT_RC EQUAL 0 OR HPCINFER_GIT_COMMIT STREQUAL "")
  set(HPCINFER_GIT_COMMIT unknown)
endif()
set(HPCINFER_OPENMPI_VERSION "")
if(MPI_CXX_FOUND)  # the comm_mpi plugin is built: Open MPI's version from pkg-config (Debian: ompi.pc)
  pkg_check_modules(HPCINFER_OMPI_PC QUIET ompi)
  if(HPCINFER_OMPI_PC_FOUND)
    set(HPCINFER_OPENMPI_VERSION ${HPCINFER_OMPI_PC_VERSION})
  endif()
endif()
set(HPCINFER_CUDA_VERSION "")
if(HPCINFER_CUDA)
  set(HPCINFER_CUDA_VERSION ${CUDAToolkit_VERSION})
endif()
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/results/build_info.cpp PROPERTIES COMPILE_DEFINITIONS
  "HPCINFER_GIT_COMMIT=\"${HPCINFER_GIT_COMMIT}\";HPCINFER_BUILD_TYPE=\"${CMAKE_BUILD_TYPE}\";HPCINFER_YAML_CPP_VERSION=\"${yaml-cpp_VERSION}\";HPCINFER_SENTENCEPIECE_VERSION=\"${SENTENCEPIECE_VERSION}\";HPCINFER_OPENMPI_VERSION=\"${HPCINFER_OPENMPI_VERSION}\";HPCINFER_CUDA_VERSION=\"${HPCINFER_CUDA_VERSION}\"")
message(STATUS "hpcinfer: git commit ${HPCINFER_GIT_COMMIT}, Open MPI '${HPCINFER_OPENMPI_VERSION}', yaml-cpp ${yaml-cpp_VERSION}")
