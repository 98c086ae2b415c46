# SPDX-License-Identifier: MIT
# bench_classifier compares the L2 lookups with DPDK's rte_hash: built only
# when libdpdk is found with pkg-config (Debian: libdpdk-dev).
find_package(PkgConfig)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(DPDK IMPORTED_TARGET libdpdk)
endif()
if(DPDK_FOUND)
  add_executable(bench_classifier ${CMAKE_CURRENT_SOURCE_DIR}/bench_classifier.c)
  target_include_directories(bench_classifier PRIVATE ${PROJECT_SOURCE_DIR}/src)
  # DPDK's headers are not -Werror clean under our warning set: system includes.
  target_include_directories(bench_classifier SYSTEM PRIVATE ${DPDK_INCLUDE_DIRS})
  target_compile_options(bench_classifier PRIVATE ${DPDK_CFLAGS_OTHER})
  target_link_libraries(bench_classifier PRIVATE vdemux_static ${DPDK_LINK_LIBRARIES} ${DPDK_LDFLAGS_OTHER})
else()
  message(STATUS "libdpdk not found: bench_classifier is not built")
endif()
