# Source me: mps_start / mps_stop start and stop a CUDA MPS control daemon (root on the device
# machine), so that processes sharing the GPU run their kernels at once instead of in turns.
mps_start() {
  command -v nvidia-cuda-mps-control >/dev/null || { echo "no nvidia-cuda-mps-control"; return 1; }
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d || { echo "MPS daemon did not start"; return 1; }
}
mps_stop() { echo quit | nvidia-cuda-mps-control; }
