"""`SpecFacts`: what later steps need to know about a spec, extracted once by the spec engine.

The dataset validator, the flow and the reports read these; none of them re-parse the spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tasks.spec.schema import BadValue, Bound, Schema, coerce, load_schema, map_key, walk
from tasks.spec.syntax import Document, MessageNode, Scalar


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


def extract_facts(doc: Document, schema: Schema | None = None) -> SpecFacts:
    """The facts of a parsed spec. Values of the wrong type read as unset: `check` reports them."""
    schema = schema or load_schema()
    bounds = list(walk(doc, schema))
    at = {b.path: b for b in bounds}

    def get(path: str, default: Any = None) -> Any:
        b = at.get(path)
        if b is None or not isinstance(b.value, Scalar):
            return default
        try:
            return coerce(b.value, b.schema, schema)
        except BadValue:
            return default

    paths = [
        PathField(b.path, b.value.value, *doc.where(b.value.first))  # type: ignore[arg-type]
        for b in bounds
        if b.schema.path and isinstance(b.value, Scalar) and b.value.kind == "string"
    ]
    mapping_prefix = "dataset_config.target_class_mapping" if doc.kind == "train" else "target_class_mapping"
    mapping, key_lines = {}, {}
    for key, value, line in _map_entries(doc, bounds, mapping_prefix):
        if isinstance(value, Scalar) and value.kind == "string":
            mapping[key] = str(value.value)
            key_lines[key] = line
    common = dict(
        kind=doc.kind,
        file=doc.file,
        path_fields=paths,
        target_class_mapping=mapping,
        mapping_key_lines=key_lines,
    )
    if doc.kind != "train":
        kitti = "kitti_config."
        return SpecFacts(
            **common,
            image_extension=get(kitti + "image_extension") or ".png",  # the converter's default
            kitti_root_directory_path=get(kitti + "root_directory_path"),
            kitti_image_dir_name=get(kitti + "image_dir_name"),
            kitti_label_dir_name=get(kitti + "label_dir_name"),
            num_partitions=get(kitti + "num_partitions", 0),
            num_shards=get(kitti + "num_shards", 0),
            partition_mode=get(kitti + "partition_mode"),
            val_split=get(kitti + "val_split", 0.0),
        )
    pre = "augmentation_config.preprocessing."
    vis = "training_config.visualizer."
    ev = "evaluation_config."
    sources = [b for b in bounds if b.path.startswith("dataset_config.data_sources[") and b.path.count(".") == 1]
    evaluation = [k for k, _, _ in _map_entries(doc, bounds, ev + "minimum_detection_ground_truth_overlap")]
    evaluation += [k for k, _, _ in _map_entries(doc, bounds, ev + "evaluation_box_config") if k not in evaluation]
    return SpecFacts(
        **common,
        output_width=get(pre + "output_image_width", 0),
        output_height=get(pre + "output_image_height", 0),
        output_channels=get(pre + "output_image_channel", 0),
        enable_auto_resize=get(pre + "enable_auto_resize", False),
        min_bbox_width=get(pre + "min_bbox_width", 0.0),
        min_bbox_height=get(pre + "min_bbox_height", 0.0),
        image_extension=get("dataset_config.image_extension", ""),
        cost_function_classes=[
            str(get(b.path + ".name", "")) for b in bounds if b.path.startswith("cost_function_config.target_classes[")
            and b.path.count(".") == 1
        ],
        bbox_rasterizer_classes=[k for k, _, _ in _map_entries(doc, bounds, "bbox_rasterizer_config.target_class_config")],
        postprocessing_classes=[k for k, _, _ in _map_entries(doc, bounds, "postprocessing_config.target_class_config")],
        evaluation_classes=evaluation,
        num_epochs=get("training_config.num_epochs", 0),
        checkpoint_interval=get("training_config.checkpoint_interval", 0),
        batch_size_per_gpu=get("training_config.batch_size_per_gpu", 0),
        validation_fold=get("dataset_config.validation_fold"),
        has_validation_data_source="dataset_config.validation_data_source" in at,
        tfrecords_paths=[v for v in (get(b.path + ".tfrecords_path") for b in sources) if v is not None],
        image_directory_paths=[v for v in (get(b.path + ".image_directory_path") for b in sources) if v is not None],
        validation_tfrecords_path=get("dataset_config.validation_data_source.tfrecords_path"),
        validation_image_directory_path=get("dataset_config.validation_data_source.image_directory_path"),
        pretrained_model_file=get("model_config.pretrained_model_file"),
        visualizer_enabled=get(vis + "enabled", False),
        scalar_logging_frequency=get(vis + "scalar_logging_frequency", 0),
        infrequent_logging_frequency=get(vis + "infrequent_logging_frequency", 0),
        validation_period_during_training=get(ev + "validation_period_during_training", 0),
        first_validation_epoch=get(ev + "first_validation_epoch", 0),
    )


def _map_entries(doc: Document, bounds: list[Bound], path: str) -> list[tuple[str, Any, int]]:
    """(key, value node, key line) of each entry of the map at `path`, in file order."""
    out = []
    for b in bounds:
        if not (isinstance(b.value, MessageNode) and b.schema.label == "map"):
            continue
        key = map_key(b.value)
        if key is None or b.path != f"{path}[{key}]":
            continue
        value = next((f.value for f in b.value.fields if f.name == "value"), None)
        key_node = next(f for f in b.value.fields if f.name == "key")
        out.append((key, value, doc.where(key_node.name_token)[0]))
    return out
