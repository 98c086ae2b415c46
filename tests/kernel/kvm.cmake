# The KVM backend in the kernel lab: kvm_flip, vCPUs of real KVM VMs reading
# the pages the engine flips. Included from CMakeLists.txt in this directory,
# after the vdemux_add_kernel_* functions are defined.

if(NOT VDEMUX_SOURCES)
  return() # tests/kernel built on its own, without the library
endif()

# The library once more, for static guest programs: never sanitizer-built
# (the runtimes cannot be linked -static), whatever the build's options.
if(NOT TARGET vdemux_guest)
  add_library(vdemux_guest STATIC ${VDEMUX_SOURCES})
  target_include_directories(vdemux_guest
    PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${PROJECT_SOURCE_DIR}/src)
  vdemux_kernel_lab_unsanitize(vdemux_guest)
endif()

vdemux_add_kernel_program(kvm_flip kvm_flip.c)
target_link_libraries(kvm_flip PRIVATE vdemux_guest Threads::Threads)

vdemux_add_kernel_test(NAME kernel_kvm_flip PROGRAMS kvm_flip MODULES kvm_amd)
