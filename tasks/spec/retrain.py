"""The retrain spec for a pruned model, derived from the train spec exactly as NVIDIA's own retrain
spec differs from its train spec.

NVIDIA's tao_tutorials 5.5 (`notebooks/tao_launcher_starter_kit/detectnet_v2/specs/`,
`detectnet_v2_retrain_resnet18_kitti.txt` against `detectnet_v2_train_resnet18_kitti.txt`) changes
three things and nothing else (`docs/chain.md`):

1. `model_config.pretrained_model_file` becomes the pruned `.hdf5`;
2. `model_config.load_graph: true` is added (after the block's leading values, where NVIDIA puts it):
   without it `train.py` builds the full, unpruned architecture and loads only the weights that fit;
3. the visualizer's ClearML and W&B tag "unpruned" becomes "pruned" (labels of the experiment).

The regularizer, the schedule, the epochs and everything else stay as the train spec has them. The
edits are splices over the parsed spec (`tasks.spec.edits`): every other byte stays as written.
"""

from __future__ import annotations

import difflib

from tasks.errors import SpecError
from tasks.spec.edits import Edit, apply_edits, replace_scalar
from tasks.spec.overrides import insert_after_field, override_edit
from tasks.spec.rewrite import RewriteResult
from tasks.spec.schema import Schema, load_schema, walk
from tasks.spec.syntax import Document, FieldNode, MessageNode, Scalar, parse

UNPRUNED_TAG, PRUNED_TAG = "unpruned", "pruned"
_TAG_FIELDS = ("training_config.visualizer.clearml_config.tags", "training_config.visualizer.wandb_config.tags")


def retrain_spec(doc: Document, pruned_model: str, schema: Schema | None = None) -> RewriteResult:
    """The retrain spec: `pruned_model` (its in-container path) as the pretrained model, `load_graph: true`,
    the "unpruned" tags "pruned".

    >>> from tasks.spec import parse_spec
    >>> train = parse_spec('model_config {\\n  pretrained_model_file: "/w/resnet18.hdf5"\\n  num_layers: 18\\n'
    ...                    '  objective_set {\\n    cov {\\n    }\\n  }\\n}\\n')
    >>> print(retrain_spec(train, "/w/pruned.hdf5").text, end="")
    model_config {
      pretrained_model_file: "/w/pruned.hdf5"
      num_layers: 18
      load_graph: true
      objective_set {
        cov {
        }
      }
    }
    """
    if doc.kind != "train":
        raise SpecError("a retrain spec is derived from a train (experiment) spec", where=doc.file)
    if not pruned_model.endswith(".hdf5"):
        raise SpecError(f"the pruned model {pruned_model} is not a .hdf5: TAO 5's prune writes plain .hdf5",
                        where=doc.file, fix="give the pruned model's .hdf5 path")
    schema = schema or load_schema()
    edits = [override_edit(doc, schema, "model_config.pretrained_model_file", pruned_model)]
    edits += [replace_scalar(doc, b.value, PRUNED_TAG, b.path, "the retrained model is the pruned one", quote=True)
              for b in walk(doc, schema)
              if isinstance(b.value, Scalar) and b.value.kind == "string" and b.value.value == UNPRUNED_TAG
              and b.path.split("[")[0] in _TAG_FIELDS]
    # load_graph in a second pass: a spec without model_config gets one block holding both fields
    middle = parse(apply_edits(doc, edits), doc.file, doc.kind)
    graph = _load_graph(middle, schema)
    text = apply_edits(middle, [graph])
    parse(text, doc.file, doc.kind)  # a bug in the derivation shows here, never in TAO
    name = (doc.file or "spec").lstrip("/")  # git's a/ b/ prefixes, one slash on an absolute path
    diff = "".join(difflib.unified_diff(doc.text.splitlines(keepends=True), text.splitlines(keepends=True),
                                        f"a/{name}", f"b/retrain-{name}"))
    changes = [e.change for e in sorted(edits, key=lambda e: e.start)]
    changes.insert(1, graph.change)
    return RewriteResult(text, changes, diff)


def _load_graph(doc: Document, schema: Schema) -> Edit:
    """`load_graph: true` in the model_config block TAO reads last: set where it is written, else added
    after the block's leading values (before its first sub-block), as NVIDIA's retrain spec has it."""
    blocks = [f.value for f in doc.root.fields if f.name == "model_config" and isinstance(f.value, MessageNode)]
    written = any(f.name == "load_graph" for block in blocks for f in block.fields)
    if written or not blocks:
        return override_edit(doc, schema, "model_config.load_graph", "true")
    leading: list[FieldNode] = []
    for f in blocks[-1].fields:
        if isinstance(f.value, MessageNode):
            break
        leading.append(f)
    if not leading:
        return override_edit(doc, schema, "model_config.load_graph", "true")
    return insert_after_field(doc, leading[-1], "load_graph: true", "model_config.load_graph", "true")
