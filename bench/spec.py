"""Benchmark: parse + check of a generated 2,000-line DetectNet_v2 spec (target < 50 ms).

Baselines, measured in the same run on the same text:
- `tokenize only`: one `re.finditer` pass of our own lexicon over the text, the floor any
  parser of this format pays in Python before it builds anything;
- `json.loads`: the C-accelerated JSON parser reading the same content as JSON, the cost of
  the cheapest structured parse Python offers (it keeps no positions and checks nothing).

Run: .venv/bin/python bench/spec.py
"""

from __future__ import annotations

import json
import statistics
import time

from tasks.spec import check_spec, parse_spec
from tasks.spec.lexer import _TOKEN

HEAD = """random_seed: 42
model_config {
  pretrained_model_file: "/workspace/base_model/resnet18.hdf5"
  num_layers: 18
  use_batch_norm: true
  objective_set {
    bbox {
      scale: 35.0
      offset: 0.5
    }
    cov {
    }
  }
  arch: "resnet"
}
augmentation_config {
  preprocessing {
    output_image_width: 1248
    output_image_height: 384
    output_image_channel: 3
  }
}
training_config {
  batch_size_per_gpu: 4
  num_epochs: 120
  learning_rate {
    soft_start_annealing_schedule {
      min_learning_rate: 5e-07
      max_learning_rate: 5e-05
      soft_start: 0.1
      annealing: 0.7
    }
  }
  regularizer {
    type: L1
    weight: 3e-09
  }
  optimizer {
    adam {
      epsilon: 1e-08
      beta1: 0.9
      beta2: 0.999
    }
  }
  cost_scaling {
    initial_exponent: 20.0
    increment: 0.005
    decrement: 1.0
  }
}
evaluation_config {
  validation_period_during_training: 10
  first_validation_epoch: 30
"""
EVAL = """  minimum_detection_ground_truth_overlap {{
    key: "{c}"
    value: 0.5
  }}
  evaluation_box_config {{
    key: "{c}"
    value {{ minimum_height: 20 maximum_height: 9999 minimum_width: 10 maximum_width: 9999 }}
  }}
"""
CLASS_BLOCKS = {
    "dataset_config": """  target_class_mapping {{
    key: "{c}"
    value: "{c}"
  }}
""",
    "postprocessing_config": """  target_class_config {{
    key: "{c}"
    value {{
      clustering_config {{
        coverage_threshold: 0.005
        dbscan_eps: 0.2
        dbscan_min_samples: 1
        minimum_bounding_box_height: 20
      }}
    }}
  }}
""",
    "cost_function_config": """  target_classes {{
    name: "{c}"
    class_weight: 1.0
    coverage_foreground_weight: 0.05
    objectives {{
      name: "cov"
      initial_weight: 1.0
      weight_target: 1.0
    }}
    objectives {{
      name: "bbox"
      initial_weight: 10.0
      weight_target: 10.0
    }}
  }}
""",
    "bbox_rasterizer_config": """  target_class_config {{
    key: "{c}"
    value {{
      cov_center_x: 0.5
      cov_center_y: 0.5
      cov_radius_x: 0.4
      cov_radius_y: 0.4
      bbox_min_radius: 1.0
    }}
  }}
""",
}


def generate(lines: int = 2000) -> str:
    """A valid train spec of about `lines` lines: the fixed blocks plus per-class map entries."""
    n = 1
    while True:
        classes = [f"class_{i}" for i in range(n)]
        parts = [HEAD, *(EVAL.format(c=c) for c in classes), "}\n"]
        for block, template in CLASS_BLOCKS.items():
            parts.append(f"{block} {{\n")
            if block == "dataset_config":
                parts.append('  data_sources {\n    tfrecords_path: "/data/tfrecords/*"\n    image_directory_path: "/data"\n  }\n')
                parts.append('  image_extension: "png"\n  validation_fold: 0\n')
            parts.extend(template.format(c=c) for c in classes)
            parts.append("}\n")
        text = "".join(parts)
        if text.count("\n") >= lines:
            return text
        n += 1


def as_json(text: str) -> str:
    """The same content as JSON (field -> value, blocks as objects, repeats as lists)."""
    doc = parse_spec(text)

    def convert(node):
        out: dict = {}
        for f in node.fields:
            v = f.value
            item = convert(v) if hasattr(v, "fields") else v.value
            out.setdefault(f.name, []).append(item)
        return out

    return json.dumps(convert(doc.root))


def timed(fn, repeat: int = 30) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    text = generate()
    js = as_json(text)
    problems = check_spec(parse_spec(text))
    assert not problems, problems  # the benchmark input is a clean spec: the checks run in full
    ours = timed(lambda: check_spec(parse_spec(text)))
    parse_only = timed(lambda: parse_spec(text))
    tokens = timed(lambda: sum(1 for _ in _TOKEN.finditer(text)))
    loads = timed(lambda: json.loads(js))
    print(f"spec: {text.count(chr(10))} lines, {len(text)} bytes (JSON equivalent {len(js)} bytes)")
    print(f"parse + check      {ours:8.2f} ms   (target < 50 ms: {'met' if ours < 50 else 'MISSED'})")
    print(f"  of which parse   {parse_only:8.2f} ms")
    print(f"tokenize only      {tokens:8.2f} ms   ratio parse+check / tokenize = {ours / tokens:5.1f}x")
    print(f"json.loads (C)     {loads:8.2f} ms   ratio parse+check / json.loads = {ours / loads:5.1f}x")


if __name__ == "__main__":
    main()
