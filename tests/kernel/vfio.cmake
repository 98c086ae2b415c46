# SPDX-License-Identifier: MIT
# The VFIO backend in the kernel lab: the real-IOMMU test and the benchmark
# built to run in the guest. Included from CMakeLists.txt in this directory,
# after the vdemux_add_kernel_* functions are defined.

vdemux_add_kernel_program(vfio_isolation vfio_isolation.c)
target_link_libraries(vfio_isolation PRIVATE vdemux_guest)

# bench/bench_vfio.c, static, for the guest (run it with vmrun.sh, see
# docs/backends-vfio.md); not a test.
vdemux_add_kernel_program(bench_vfio_guest ${PROJECT_SOURCE_DIR}/bench/bench_vfio.c)
target_link_libraries(bench_vfio_guest PRIVATE vdemux_guest)

vdemux_add_kernel_test(NAME kernel_vfio_isolation PROGRAMS vfio_isolation
                       MODULES vfio-pci vfio_iommu_type1 VFIO_E1000E)
