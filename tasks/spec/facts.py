"""`SpecFacts`: what later steps need to know about a spec, extracted once by the spec engine.

The dataset validator, the flow and the reports read these; none of them re-parse the spec.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tasks.spec.reading import Msg, Read, read_document
from tasks.spec.reading import paths as walk_reading
from tasks.spec.schema import MessageSchema, Schema, load_schema
from tasks.spec.syntax import Document


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
    """The facts of a parsed spec as TAO reads it (`tasks.spec.reading`): the last of a value written
    twice, blocks merged, map entries by key. Values of the wrong type read as unset: `check` reports them.

    >>> from tasks.spec.syntax import parse
    >>> extract_facts(parse("training_config { num_epochs: 5 num_epochs: 7 }")).num_epochs
    7
    """
    schema = schema or load_schema()
    root = read_document(doc, schema).root
    paths = [
        PathField(path, read.value, *doc.where(read.scalar.first))
        for path, f, read in walk_reading(root)
        if f.path and isinstance(read, Read) and read.scalar is not None and isinstance(read.value, str)
    ]
    mapping_owner = root.sub("dataset_config") if doc.kind == "train" else root
    mapping = _map(mapping_owner, "target_class_mapping")
    common = dict(
        kind=doc.kind,
        file=doc.file,
        path_fields=paths,
        target_class_mapping={k: v.value for k, v in mapping.items()},
        mapping_key_lines={k: _line(doc, v) for k, v in mapping.items()},
    )
    if doc.kind != "train":
        kitti = root.sub("kitti_config") or _EMPTY
        return SpecFacts(
            **common,
            image_extension=kitti.get("image_extension") or ".png",  # the converter's default
            kitti_root_directory_path=kitti.get("root_directory_path"),
            kitti_image_dir_name=kitti.get("image_dir_name"),
            kitti_label_dir_name=kitti.get("label_dir_name"),
            num_partitions=kitti.get("num_partitions", 0),
            num_shards=kitti.get("num_shards", 0),
            partition_mode=kitti.get("partition_mode"),
            val_split=kitti.get("val_split", 0.0),
        )
    ds = root.sub("dataset_config") or _EMPTY
    pre = _at(root, "augmentation_config", "preprocessing")
    training = root.sub("training_config") or _EMPTY
    vis = training.sub("visualizer") or _EMPTY
    ev = root.sub("evaluation_config") or _EMPTY
    sources = [s for s in ds.fields.get("data_sources", []) if isinstance(s, Msg)]
    val_source = ds.sub("validation_data_source")
    evaluation = list(_map(ev, "minimum_detection_ground_truth_overlap"))
    evaluation += [k for k in _map(ev, "evaluation_box_config") if k not in evaluation]
    targets = (root.sub("cost_function_config") or _EMPTY).fields.get("target_classes", [])
    return SpecFacts(
        **common,
        output_width=pre.get("output_image_width", 0),
        output_height=pre.get("output_image_height", 0),
        output_channels=pre.get("output_image_channel", 0),
        enable_auto_resize=pre.get("enable_auto_resize", False),
        min_bbox_width=pre.get("min_bbox_width", 0.0),
        min_bbox_height=pre.get("min_bbox_height", 0.0),
        image_extension=ds.get("image_extension", ""),
        cost_function_classes=[t.get("name", "") for t in targets if isinstance(t, Msg)],
        bbox_rasterizer_classes=list(_map(root.sub("bbox_rasterizer_config") or _EMPTY, "target_class_config")),
        postprocessing_classes=list(_map(root.sub("postprocessing_config") or _EMPTY, "target_class_config")),
        evaluation_classes=evaluation,
        num_epochs=training.get("num_epochs", 0),
        checkpoint_interval=training.get("checkpoint_interval", 0),
        batch_size_per_gpu=training.get("batch_size_per_gpu", 0),
        validation_fold=ds.get("validation_fold"),
        has_validation_data_source=val_source is not None,
        tfrecords_paths=[s.get("tfrecords_path", "") for s in sources],
        image_directory_paths=[s.get("image_directory_path", "") for s in sources],
        validation_tfrecords_path=val_source.get("tfrecords_path", "") if val_source else None,
        validation_image_directory_path=val_source.get("image_directory_path", "") if val_source else None,
        pretrained_model_file=(root.sub("model_config") or _EMPTY).get("pretrained_model_file"),
        visualizer_enabled=vis.get("enabled", False),
        scalar_logging_frequency=vis.get("scalar_logging_frequency", 0),
        infrequent_logging_frequency=vis.get("infrequent_logging_frequency", 0),
        validation_period_during_training=ev.get("validation_period_during_training", 0),
        first_validation_epoch=ev.get("first_validation_epoch", 0),
    )


_EMPTY = Msg(MessageSchema("(unset)", {}))


def _at(msg: Msg, *names: str) -> Msg:
    for name in names:
        msg = msg.sub(name) or _EMPTY
    return msg


def _map(msg: Msg | None, name: str) -> dict:
    value = msg.fields.get(name) if msg is not None else None
    return value if isinstance(value, dict) else {}


def _line(doc: Document, value: Read | Msg) -> int | None:
    token = value.key_token
    return doc.where(token)[0] if token is not None else None
