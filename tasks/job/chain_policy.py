"""The request's `chain` section: what happens after training to get a model you can deploy —
prune, retrain, evaluate, export to ONNX, build a TensorRT engine — and the gates between them.

Opt-in (every step is off by default) with NVIDIA's notebook's defaults (tao_tutorials 5.5,
`notebooks/tao_launcher_starter_kit/detectnet_v2/detectnet_v2.ipynb`): prune `-eq union -pth 0.0000052`
(the rest `magnet_prune.py`'s defaults `-n max -pg 8 -nf 16`), export `--onnx_route tf2onnx
--gen_ds_config`, gen_trt_engine `--data_type int8 --batches 10 --batch_size 4 --max_batch_size 64`.
Plain data (pydantic models: the Prefect UI renders the descriptions); the gates that read it are in
`tasks.job.chain_gates`. `docs/chain.md` has the facts behind every default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.job.request_fields import Location
from tasks.launch.chain_commands import BatchSizes, Int8Calibration, PruneOptions

DataType = Literal["fp32", "fp16", "int8"]


class PrunePolicy(BaseModel):
    """`detectnet_v2 prune` of the trained model: which filters go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(examples=[True], default=False, description="Prune the trained model, retrain the pruned one and keep it "
                          "if its mAP holds (max_map_drop_after_prune).")
    threshold: float = Field(
        default=5.2e-6, ge=0, le=1, examples=[5.2e-6, 0.01],
        description="-pth: filters whose normalized norm is below this go. Higher: smaller, faster, less accurate. "
        "NVIDIA's notebook starts at 0.0000052 and calls 0.01 a good start for DetectNet_v2.")
    equalization: Literal["union", "intersection", "arithmetic_mean", "geometric_mean"] = Field(examples=["union", "arithmetic_mean"], 
        default="union", description="-eq: how the inputs of an element-wise layer (ResNet's additions) are equalized.")
    normalizer: Literal["max", "L2"] = Field(examples=["max"], 
        default="max", description="-n: norms divided by the layer's largest norm (max) or by their L2 norm.")
    granularity: int = Field(examples=[8], default=8, ge=1, le=1024, description="-pg: filters removed at a time.")
    min_num_filters: int = Field(examples=[16], default=16, ge=1, le=4096, description="-nf: filters every layer keeps at least.")
    excluded_layers: list[str] = Field(examples=[["conv1"]], default_factory=list, description="-el: layers never pruned (by name).")

    def options(self) -> PruneOptions:
        """The command-line knobs, for `prune_command`.

        >>> PrunePolicy(threshold=0.01).options().threshold
        0.01
        """
        return PruneOptions(self.threshold, self.equalization, self.normalizer, self.granularity,
                            self.min_num_filters, tuple(self.excluded_layers))


class CalibrationPolicy(BaseModel):
    """INT8 calibration: batches x batch size images run through the model to fix its value ranges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batches: int = Field(examples=[10], default=10, ge=1, le=100_000, description="--batches: calibration batches.")
    batch_size: int = Field(examples=[4], default=4, ge=1, le=1024, description="--batch_size: images per calibration batch.")
    image_dir: Location | None = Field(
        default=None, examples=["https://myacct.blob.core.windows.net/datasets/parking/calibration"],
        description="Calibration images (a location like the request's others). Empty: the spec's training images "
        "(dataset_config.data_sources[].image_directory_path). Fewer than batches x batch size: TAO calibrates on "
        "what there is; fewer than one batch: it fails.")

    def settings(self, cache_file: str, image_dir: str | None = None, reuse: bool = False) -> Int8Calibration:
        """The command-line knobs, with the in-container cache file and image folder.

        >>> CalibrationPolicy().settings("/r/calibration.bin").images
        40
        """
        return Int8Calibration(cache_file, self.batches, self.batch_size, image_dir, reuse)


class ExportPolicy(BaseModel):
    """`detectnet_v2 export`: the model as ONNX for DeepStream and TensorRT (TAO 5 writes unencrypted ONNX only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(examples=[True], default=False, description="Export the candidate model to ONNX.")
    gen_ds_config: bool = Field(examples=[True], default=True, description="--gen_ds_config: also write labels.txt and "
                                "nvinfer_config.txt (DeepStream's nvinfer) beside the ONNX.")
    onnx_route: Literal["tf2onnx", "keras2onnx"] = Field(examples=["tf2onnx"], 
        default="tf2onnx", description="--onnx_route: the converter (NVIDIA's notebook uses tf2onnx; TAO's default is "
        "keras2onnx).")
    data_type: DataType = Field(examples=["fp32", "int8"], 
        default="fp32", description="fp32: the ONNX only. fp16/int8: export also builds a TensorRT engine in the TAO "
        "image; int8 writes the calibration cache DeepStream needs beside the ONNX.")
    calibration: CalibrationPolicy = Field(examples=[{"batches": 10, "batch_size": 4}], default_factory=CalibrationPolicy,
                                           description="INT8 calibration (export and engine share it).")


class EnginePolicy(BaseModel):
    """TAO Deploy's `detectnet_v2 gen_trt_engine`: a TensorRT engine for this machine's GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(examples=[False], default=False, description="Build a TensorRT engine from the ONNX (needs export).")
    tao_deploy_image: str | None = Field(
        default=None, examples=["nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy"],
        description="The TAO Deploy image that builds the engine (a separate image from the training one).")
    data_type: DataType = Field(examples=["int8", "fp16"], default="int8", description="--data_type of the engine (NVIDIA's notebook: int8).")
    min_batch_size: int = Field(examples=[1], default=1, ge=1, le=4096, description="--min_batch_size of the engine's profile.")
    opt_batch_size: int = Field(examples=[1], default=1, ge=1, le=4096, description="--opt_batch_size of the engine's profile.")
    max_batch_size: int = Field(examples=[64], default=64, ge=1, le=4096, description="--max_batch_size (NVIDIA's notebook: 64).")

    @model_validator(mode="after")
    def _sizes(self) -> "EnginePolicy":
        if not self.min_batch_size <= self.opt_batch_size <= self.max_batch_size:
            raise ValueError(f"batch sizes must grow: min {self.min_batch_size} <= opt {self.opt_batch_size} <= "
                             f"max {self.max_batch_size}")
        if self.enabled and not (self.tao_deploy_image or "").strip():
            raise ValueError("engine.enabled needs engine.tao_deploy_image: the engine is built in the TAO Deploy "
                             "image, e.g. nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy")
        return self

    def batch_sizes(self) -> BatchSizes:
        """The engine's optimization profile, for `gen_trt_engine_command`.

        >>> EnginePolicy().batch_sizes().max
        64
        """
        return BatchSizes(self.min_batch_size, self.opt_batch_size, self.max_batch_size)


class ChainPolicy(BaseModel):
    """After training: prune -> retrain -> evaluate -> export -> TensorRT engine, each step opt-in, with the
    gates between them. Ratios are pruned / original parameters; mAP drops are percentage points."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [
        {"prune": {"enabled": True, "threshold": 0.01}, "max_map_drop_after_prune": 1.0,
         "export": {"enabled": True},
         "engine": {"enabled": True, "tao_deploy_image": "nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy"}}]})

    prune: PrunePolicy = Field(examples=[{"enabled": True, "threshold": 0.01}], default_factory=PrunePolicy, description="Pruning (-pth, -eq, -n, -pg, -nf, -el).")
    min_pruning_ratio: float = Field(examples=[0.1], 
        default=0.1, gt=0, le=1, description="Stop when pruning keeps less than this share of the parameters: the "
        "model would lose too much for a retrain to recover. Lower prune.threshold.")
    max_pruning_ratio: float = Field(examples=[0.95], 
        default=0.95, gt=0, le=1, description="Stop when pruning keeps more than this share: not worth a retrain. "
        "Raise prune.threshold.")
    max_map_drop_after_prune: float = Field(examples=[1.0, 2.0], 
        default=2.0, ge=0, le=100, description="Points of mAP the retrained pruned model may lose against the unpruned "
        "one on the same data; more, and the unpruned model is the candidate (the run says so).")
    export: ExportPolicy = Field(examples=[{"enabled": True}], default_factory=ExportPolicy, description="ONNX export (and DeepStream config).")
    engine: EnginePolicy = Field(examples=[{"enabled": False, "data_type": "int8"}], default_factory=EnginePolicy, description="TensorRT engine by TAO Deploy.")

    @model_validator(mode="after")
    def _consistent(self) -> "ChainPolicy":
        if self.min_pruning_ratio >= self.max_pruning_ratio:
            raise ValueError(f"min_pruning_ratio {self.min_pruning_ratio} must be below max_pruning_ratio "
                             f"{self.max_pruning_ratio}")
        if self.engine.enabled and not self.export.enabled:
            raise ValueError("engine.enabled needs export.enabled: TAO Deploy builds the engine from the exported ONNX")
        return self

    @property
    def enabled(self) -> bool:
        """Whether any step after training runs.

        >>> ChainPolicy().enabled, ChainPolicy(export={"enabled": True}).enabled
        (False, True)
        """
        return self.prune.enabled or self.export.enabled or self.engine.enabled

    @property
    def reuse_export_calibration(self) -> bool:
        """The engine reads the INT8 calibration cache export wrote instead of calibrating again."""
        return self.export.enabled and self.export.data_type == "int8" and self.engine.data_type == "int8"
