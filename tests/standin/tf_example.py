"""Reading TFRecord files as TensorFlow does, for the tests of the stand-in converter: every frame's
two CRCs checked, every record parsed as a `tf.train.Example` by the real protobuf runtime.

TensorFlow is not installed here, so `tf.train.Example` is declared from TensorFlow's own
`example.proto`/`feature.proto` (tensorflow/core/example/): the same field numbers, types and
packing, built with protobuf's descriptor API.
"""

from __future__ import annotations

import struct
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tasks.dataset.tfrecords import masked_crc


def _example_class():
    f = descriptor_pb2.FileDescriptorProto(name="taoflow_tests/tf_example.proto", package="tensorflow",
                                           syntax="proto3")
    label, t = descriptor_pb2.FieldDescriptorProto, descriptor_pb2.FieldDescriptorProto

    def message(name: str, *fields: tuple) -> descriptor_pb2.DescriptorProto:
        msg = f.message_type.add(name=name)
        for field_name, number, kind, type_name, packed, oneof in fields:
            field = msg.field.add(name=field_name, number=number, type=kind,
                                  label=label.LABEL_REPEATED if packed is not None else label.LABEL_OPTIONAL)
            if type_name:
                field.type_name = type_name
            if packed:
                field.options.packed = True
            if oneof is not None:
                field.oneof_index = oneof
        return msg

    message("BytesList", ("value", 1, t.TYPE_BYTES, None, False, None))
    message("FloatList", ("value", 1, t.TYPE_FLOAT, None, True, None))
    message("Int64List", ("value", 1, t.TYPE_INT64, None, True, None))
    feature = message("Feature", ("bytes_list", 1, t.TYPE_MESSAGE, ".tensorflow.BytesList", None, 0),
                      ("float_list", 2, t.TYPE_MESSAGE, ".tensorflow.FloatList", None, 0),
                      ("int64_list", 3, t.TYPE_MESSAGE, ".tensorflow.Int64List", None, 0))
    feature.oneof_decl.add(name="kind")
    features = message("Features", ("feature", 1, t.TYPE_MESSAGE, ".tensorflow.Features.FeatureEntry", False, None))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=t.TYPE_STRING, label=label.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=t.TYPE_MESSAGE, type_name=".tensorflow.Feature",
                    label=label.LABEL_OPTIONAL)
    message("Example", ("features", 1, t.TYPE_MESSAGE, ".tensorflow.Features", None, None))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


Example = _example_class()


def read_records(path: Path) -> list[bytes]:
    """The records of a TFRecord file; AssertionError on a bad frame or CRC (TensorFlow's DataLossError)."""
    data, records, offset = path.read_bytes(), [], 0
    while offset < len(data):
        header = data[offset:offset + 12]
        assert len(header) == 12, f"{path}: truncated header at {offset}"
        (length,) = struct.unpack("<Q", header[:8])
        assert struct.unpack("<I", header[8:])[0] == masked_crc(header[:8]), f"{path}: length CRC at {offset}"
        body = data[offset + 12:offset + 12 + length]
        footer = data[offset + 12 + length:offset + 16 + length]
        assert len(body) == length and len(footer) == 4, f"{path}: truncated record at {offset}"
        assert struct.unpack("<I", footer)[0] == masked_crc(body), f"{path}: data CRC at {offset}"
        records.append(body)
        offset += 16 + length
    return records


def read_examples(path: Path) -> list[dict]:
    """Each record as {feature name: list of values}, parsed by protobuf as `tf.train.Example`."""
    out = []
    for record in read_records(path):
        example = Example.FromString(record)
        frame = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            frame[key] = list(getattr(feature, kind).value) if kind else []
        out.append(frame)
    return out
