"""`SpecFacts`: what later steps need to know about a spec, extracted once by the spec engine.

The dataset validator, the flow and the reports read these; none of them re-parse the spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class PathField:
    """One filesystem-path value in the spec, where it stands."""

    field: str  # dotted path with indices, e.g. "dataset_config.data_sources[0].tfrecords_path"
    value: str
    line: int
    column: int


@dataclass(frozen=True)
class SpecFacts:
    """Facts of an experiment (train) spec; unset proto3 scalars read as their defaults (0, "", False)."""

    kind: str = "train"  # "train" | "dataset_convert"
    file: str | None = None
    output_width: int = 0
    output_height: int = 0
    output_channels: int = 0
    enable_auto_resize: bool = False
    min_bbox_width: float = 0.0
    min_bbox_height: float = 0.0
    image_extension: str = ""  # train spec: without dot ("png"); dataset_convert: as written (".png")
    #: source (label-file, lower-case in TFRecords) class -> target (model) class, in file order.
    target_class_mapping: dict[str, str] = field(default_factory=dict)
    #: key as written, with its line, to report upper-case keys precisely.
    mapping_key_lines: dict[str, int] = field(default_factory=dict)
    cost_function_classes: list[str] = field(default_factory=list)
    bbox_rasterizer_classes: list[str] = field(default_factory=list)
    postprocessing_classes: list[str] = field(default_factory=list)
    evaluation_classes: list[str] = field(default_factory=list)  # union of both evaluation_config maps' keys
    path_fields: list[PathField] = field(default_factory=list)
    num_epochs: int = 0
    checkpoint_interval: int = 0  # 0 means TAO's default of 10
    batch_size_per_gpu: int = 0
    validation_fold: int | None = None
    has_validation_data_source: bool = False
    tfrecords_paths: list[str] = field(default_factory=list)  # data_sources[].tfrecords_path
    image_directory_paths: list[str] = field(default_factory=list)  # data_sources[].image_directory_path
    validation_tfrecords_path: str | None = None
    validation_image_directory_path: str | None = None
    pretrained_model_file: str | None = None
    visualizer_enabled: bool = False
    scalar_logging_frequency: int = 0  # 0 means TAO's default of 10
    infrequent_logging_frequency: int = 0
    validation_period_during_training: int = 0
    first_validation_epoch: int = 0
    # dataset_convert specs
    kitti_root_directory_path: str | None = None
    kitti_image_dir_name: str | None = None
    kitti_label_dir_name: str | None = None
    num_partitions: int = 0
    num_shards: int = 0
    partition_mode: str | None = None
    val_split: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)
