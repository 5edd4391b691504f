"""The CUDA backends: the engine (runtime.cuda.engine.CudaEngine) over a `Device`, PyCUDA and
cuBLAS on a GPU (device, cublas), the commands it issues (commands), and `cuda-sim` (sim), the
engine over a host device that runs the CUDA kernels on the CPU (recording.RecordingDevice
checks every call as a GPU would)."""
from runtime.cuda.engine import CudaEngine, Device  # noqa: F401
