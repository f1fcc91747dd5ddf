// CPU kernels: see kernels/cpu/*.hpp
