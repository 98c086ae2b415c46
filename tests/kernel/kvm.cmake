# SPDX-License-Identifier: MIT
# The KVM backend in the kernel lab: kvm_flip, vCPUs of real KVM VMs reading
# the pages the engine flips. Included from CMakeLists.txt in this directory,
# after the vdemux_add_kernel_* functions are defined.

vdemux_add_kernel_program(kvm_flip kvm_flip.c)
target_link_libraries(kvm_flip PRIVATE vdemux_guest Threads::Threads)

vdemux_add_kernel_test(NAME kernel_kvm_flip PROGRAMS kvm_flip MODULES kvm_amd)

# The same program straight on this machine's /dev/kvm, where there is one
# (the host's kernel: hardware virtualisation, or kvm_pvm); skipped (77) where there is
# none.
add_test(NAME host_kvm_flip COMMAND kvm_flip)
set_tests_properties(host_kvm_flip PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "kernel;host")

# The KVM backend at vm.max_map_count: refused flips are copied, nothing is
# dropped. Lowers the sysctl, so only in the lab's own kernel; no vCPU, so
# no KVM module either. Also `kvm_maplimit --count N` (anywhere, no root):
# the mappings a VM's window takes after N flipped frames.
vdemux_add_kernel_program(kvm_maplimit kvm_maplimit.c)
target_link_libraries(kvm_maplimit PRIVATE vdemux_guest)
vdemux_add_kernel_test(NAME kernel_kvm_maplimit PROGRAMS kvm_maplimit:--lab)
