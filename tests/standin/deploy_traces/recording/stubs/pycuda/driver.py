"""The pycuda.driver calls TAO Deploy makes: the wrapper's GPU count (`check_valid_gpus`) and the
INT8 calibrator's context and device buffer (`engine/calibrator.py`). GPUs: TRT_STUB_GPUS (default 1)."""

import os


class Error(Exception):
    pass


def init():
    return None


class _Context:
    def pop(self):
        return None


class Context:
    @staticmethod
    def get_current():
        return None


class Device:
    def __init__(self, index):
        self.index = index

    @staticmethod
    def count():
        return int(os.environ.get("TRT_STUB_GPUS", "1"))

    def make_context(self):
        return _Context()


class _Allocation(int):
    pass


def mem_alloc(size):
    return _Allocation(size)


def memcpy_htod(destination, source):
    return None
