# SPDX-License-Identifier: MIT
# examples/vmm end to end in the kernel lab: the VMM, statically linked, boots
# two Linux guests under the lab's KVM; e2e.sh checks that they boot, reach
# the lab and each other through the engine, and take a TCP transfer.
# Included from CMakeLists.txt in this directory (needs vdemux_guest).

file(GLOB VDEMUX_VMM_LAB_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/examples/vmm/*.c)
vdemux_add_kernel_program(vmm_lab ${VDEMUX_VMM_LAB_SOURCES})
target_link_libraries(vmm_lab PRIVATE vdemux_guest Threads::Threads)

add_test(NAME kernel_vmm_e2e
         COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh" --workdir "${VDEMUX_KERNEL_LAB_WORKDIR}"
                 --vmm "$<TARGET_FILE:vmm_lab>")
# Boots the lab once (420 s at most, retried once on a timeout), and two
# guests inside it under nested KVM: about 3 to 4 minutes.
set_tests_properties(kernel_vmm_e2e PROPERTIES
                     SKIP_RETURN_CODE 77 TIMEOUT 1000 LABELS kernel PROCESSORS 2)
# The same with --io-threads: b's second queue pair on its own thread and
# engine shard, the TAP multiqueue.
add_test(NAME kernel_vmm_e2e_io
         COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/e2e.sh" --io-threads
                 --workdir "${VDEMUX_KERNEL_LAB_WORKDIR}" --vmm "$<TARGET_FILE:vmm_lab>")
set_tests_properties(kernel_vmm_e2e_io PROPERTIES
                     SKIP_RETURN_CODE 77 TIMEOUT 1000 LABELS kernel PROCESSORS 2)

# compare-qemu.sh's transfers (guests and lab): TCP in large writes and reads.
# Built with vmm_lab, which the script is given; it looks next to it.
vdemux_add_kernel_program(lab_xfer xfer.c)
add_dependencies(vmm_lab lab_xfer)
