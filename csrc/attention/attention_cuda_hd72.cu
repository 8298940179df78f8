// CUDA attention kernels for head_dim 72 (see attention_cuda_launch.cuh). No torch headers.
#include "attention/attention_cuda_launch.cuh"

LF_ATTENTION_CUDA_INSTANTIATE(72)
