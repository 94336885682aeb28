"""TensorRT stand-in for recording TAO Deploy's `gen_trt_engine` endings without a GPU.

Only what `nvidia_tao_deploy/engine/builder.py`, `cv/detectnet_v2/engine_builder.py` and
`engine/calibrator.py` call, with TensorRT 10's Python shapes: the ONNX parser, the builder config,
the optimization profile, INT8 calibration through the calibrator NVIDIA's code installs (TensorRT
calls `read_calibration_cache`, then `get_batch` until it returns None, then
`write_calibration_cache`), and `build_serialized_network`, which returns None when TensorRT cannot
build (the real API's failure mode: it logs and returns None, it does not raise).

Knobs (env): TRT_STUB_PARSE_FAIL=1 the ONNX parser refuses the file; TRT_STUB_BUILD_FAIL=1 the build
returns None. TensorRT's own log lines are not reproduced: a `⋯ [not modeled: …]` line stands for them.
"""

import os
import sys

import numpy as np

__version__ = "10.13.0.35"
_NOT_MODELED = "⋯ [not modeled: {}]"


def _marker(what):
    print(_NOT_MODELED.format(what), file=sys.stderr, flush=True)


class DataType:
    def __init__(self, name, numpy_type):
        self.name, self.numpy_type = name, numpy_type

    def __repr__(self):
        return f"DataType.{self.name}"

    __str__ = __repr__


float32 = DataType("FLOAT", np.float32)
float16 = DataType("HALF", np.float16)
bfloat16 = DataType("BF16", np.float32)
int32 = DataType("INT32", np.int32)
int8 = DataType("INT8", np.int8)
bool = DataType("BOOL", np.bool_)  # noqa: A001 - TensorRT's own name


def nptype(dtype):
    return dtype.numpy_type


class _Names:
    """An enum of TensorRT: every member is its own name."""

    def __init__(self, kind):
        self._kind = kind

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return f"{self._kind}.{name}"


BuilderFlag = _Names("BuilderFlag")
MemoryPoolType = _Names("MemoryPoolType")
QuantizationFlag = _Names("QuantizationFlag")
PreviewFeature = _Names("PreviewFeature")
LayerType = _Names("LayerType")
ProfilingVerbosity = _Names("ProfilingVerbosity")


class NetworkDefinitionCreationFlag:
    EXPLICIT_BATCH = 0
    EXPLICIT_PRECISION = 1
    STRONGLY_TYPED = 2


class Logger:
    class Severity:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity=2):
        self.min_severity = min_severity


def init_libnvinfer_plugins(logger, namespace=""):
    return True


class _Tensor:
    def __init__(self, name, shape, dtype=float32):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.tensor_dtype = dtype
        self.is_shape_tensor = False


class _Network:
    """DetectNet_v2 ResNet-18 as TAO exports it: input_1 NCHW with a dynamic batch, two heads."""

    def __init__(self):
        self._inputs = [_Tensor("input_1", (-1, 3, 384, 1248))]
        self._outputs = [_Tensor("output_cov/Sigmoid", (-1, 3, 24, 78)),
                         _Tensor("output_bbox/BiasAdd", (-1, 12, 24, 78))]

    @property
    def num_inputs(self):
        return len(self._inputs)

    @property
    def num_outputs(self):
        return len(self._outputs)

    def get_input(self, index):
        return self._inputs[index]

    def get_output(self, index):
        return self._outputs[index]

    def __iter__(self):
        return iter(())


class OnnxParser:
    def __init__(self, network, logger):
        self.network, self.errors = network, []

    def parse_from_file(self, path):
        _marker("TensorRT's own log while parsing the ONNX file")
        if os.environ.get("TRT_STUB_PARSE_FAIL"):
            self.errors = ["In node -1 with name:  and operator:  (parseGraph): INVALID_GRAPH: (stand-in) cannot parse"]
            return False
        return True

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, index):
        return self.errors[index]


class _Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 - TensorRT's keywords
        self.shapes[input] = (min, opt, max)

    set_shape_input = set_shape

    def get_shape(self, name):
        return self.shapes[name]

    get_shape_input = get_shape


class _Config:
    def __init__(self):
        self.flags, self.pools = set(), {}
        self.int8_calibrator = None
        self.profiling_verbosity = None
        self.profile = None

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool] = size

    def get_memory_pool_limit(self, pool):
        return self.pools.get(pool, 0)

    def set_flag(self, flag):
        self.flags.add(flag)

    def get_flag(self, flag):
        return flag in self.flags

    def get_quantization_flag(self, flag):
        return False

    def get_tactic_sources(self):
        return 24

    def add_optimization_profile(self, profile):
        self.profile = profile

    def set_calibration_profile(self, profile):
        self.profile = profile

    def get_calibration_profile(self):
        return self.profile

    def set_preview_feature(self, feature, enabled):
        return None


class _HostMemory(bytes):
    """`IHostMemory`: bytes that can be used in a `with` statement."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Builder:
    platform_has_fast_fp16 = True
    platform_has_fast_int8 = True

    def __init__(self, logger):
        self.logger = logger

    def create_builder_config(self):
        return _Config()

    def create_network(self, flags=0):
        return _Network()

    def create_optimization_profile(self):
        return _Profile()

    def build_serialized_network(self, network, config):
        _marker("TensorRT's own log while building the engine (layers, tactics, timings)")
        if os.environ.get("TRT_STUB_BUILD_FAIL"):
            return None
        calibrator = config.int8_calibrator
        if BuilderFlag.INT8 in config.flags and calibrator is not None:
            if calibrator.read_calibration_cache() is None:
                while calibrator.get_batch(["input_1"]) is not None:
                    pass
                calibrator.write_calibration_cache(b"TRT-100300-EntropyCalibration2\ninput_1: 3c010a14\n")
        flags = config.flags
        precision = "int8" if BuilderFlag.INT8 in flags else "fp16" if BuilderFlag.FP16 in flags else "fp32"
        return _HostMemory(f"stand-in TensorRT {__version__} {precision} engine\n".encode())


class IInt8EntropyCalibrator2:
    def __init__(self):
        pass
