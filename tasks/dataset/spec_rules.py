"""Checks of the spec facts alone, and of the spec's classes against what the labels hold.

These read `SpecFacts` (the spec engine's output) and never the spec text; lines come from the
facts where the engine recorded them.
"""

from __future__ import annotations

from collections import Counter

from tasks.dataset.tally import Tally
from tasks.spec.facts import SpecFacts

MIN_WIDTH, MIN_HEIGHT = 480, 272
VALID_EXTENSIONS = ("png", "jpg", "jpeg")


def spec_extension(facts: SpecFacts) -> str:
    """The image extension without its dot (dataset_convert specs write it with one)."""
    return facts.image_extension[1:] if facts.image_extension.startswith(".") else facts.image_extension


def check_spec(facts: SpecFacts, tally: Tally) -> None:
    f, w, h = facts.file, facts.output_width, facts.output_height
    if facts.kind == "train":
        bad = [f"{name} {v}" for name, v in (("output_image_width", w), ("output_image_height", h))
               if v <= 0 or v % 16]
        if bad:
            tally.add("spec.size-not-multiple-of-16", ", ".join(bad) + " must be a positive multiple of 16", file=f)
        elif w < MIN_WIDTH or h < MIN_HEIGHT:
            tally.add("spec.size-below-minimum", f"output size {w}x{h} is below the documented minimum "
                      f"{MIN_WIDTH}x{MIN_HEIGHT}", file=f)
        if facts.output_channels not in (1, 3):
            tally.add("spec.channels-invalid", f"output_image_channel is {facts.output_channels}, must be 1 or 3",
                      file=f)
    ext = facts.image_extension
    if facts.kind == "train" and ext.startswith("."):
        problem = "starts with a dot: TAO looks for <frame>.{ext} (two dots) and stops at the first batch"
    elif facts.kind != "train" and not ext.startswith("."):
        problem = "has no leading dot: dataset_convert opens <frame>{ext} (no dot) and finds nothing"
    elif spec_extension(facts).lower() not in VALID_EXTENSIONS:
        problem = "names no decoder TAO has (png, jpg or jpeg)"
    else:
        return
    tally.add("spec.image-extension-invalid", f"image_extension {ext!r} " + problem.format(ext=ext), file=f)


def check_classes(facts: SpecFacts, class_instances: Counter, class_images: Counter, tally: Tally) -> None:
    """Cross-check target_class_mapping against the label classes and the per-class configs."""
    if facts.kind != "train" or not facts.target_class_mapping:
        return
    f = facts.file
    for key in facts.target_class_mapping:
        if key != key.lower():
            tally.add("class.uppercase-mapping-key", f"target_class_mapping key {key!r} has upper case; TAO "
                      f"lower-cases label classes, so it matches nothing (use {key.lower()!r})",
                      file=f, line=facts.mapping_key_lines.get(key))
    keys = {k.lower() for k in facts.target_class_mapping}
    unmapped = sorted((c for c in class_instances if c not in keys), key=lambda c: -class_instances[c])
    if unmapped:
        listing = ", ".join(f"{c} ({class_instances[c]} in {class_images[c]} files)" for c in unmapped)
        tally.add("class.unmapped", f"label classes not in target_class_mapping, dropped by TAO: {listing}",
                  file=f)
    if class_instances or tally.totals["labels"]:
        for key in facts.target_class_mapping:
            if key == key.lower() and class_instances.get(key, 0) == 0:
                tally.add("class.no-instances", f"mapped class {key!r} has no instance in the labels",
                          file=f, line=facts.mapping_key_lines.get(key))
    targets = set(facts.target_class_mapping.values())
    for config, classes in (("cost_function_config.target_classes", facts.cost_function_classes),
                            ("bbox_rasterizer_config.target_class_config", facts.bbox_rasterizer_classes),
                            ("postprocessing_config.target_class_config", facts.postprocessing_classes),
                            ("evaluation_config maps", facts.evaluation_classes)):
        if classes and set(classes) != targets:
            missing, extra = sorted(targets - set(classes)), sorted(set(classes) - targets)
            parts = [f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else ""]
            tally.add("class.target-set-mismatch", f"{config} differs from the mapping targets: "
                      + "; ".join(p for p in parts if p), file=f)
