"""`import pycuda.autoinit` creates a CUDA context; here there is nothing to create."""
