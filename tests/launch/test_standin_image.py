"""Foundation check: dockerd runs the stand-in TAO image and we read its output from a bind mount."""

from __future__ import annotations

import json

from tests.standin.image import image_tag

SPEC = """training_config {
  num_epochs: 2
  checkpoint_interval: 1
}
"""


def test_standin_image_tag_follows_the_scripts(standin_image):
    assert standin_image == image_tag()
    assert standin_image.startswith("taoflow-standin-tao:")


def test_dockerd_runs_standin_and_output_lands_in_bind_mount(docker_client, standin_image, workdir):
    specs, results = workdir / "specs", workdir / "results"
    specs.mkdir()
    results.mkdir()
    (specs / "spec.txt").write_text(SPEC)
    output = docker_client.containers.run(
        standin_image,
        ["detectnet_v2", "train", "-e", "/specs/spec.txt", "-r", "/results", "-n", "probe"],
        volumes={str(specs): {"bind": "/specs", "mode": "ro"}, str(results): {"bind": "/results", "mode": "rw"}},
        network_mode="none",
        remove=True,
        stdout=True,
        stderr=True,
    ).decode()
    assert "Epoch 1/2: loss:" in output  # TAO's epoch lines count from 0
    assert output.rstrip().endswith("Execution status: PASS")
    statuses = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    assert statuses[0]["status"] == "STARTED"
    assert statuses[-1]["status"] == "SUCCESS"
    assert max(s.get("epoch", 0) for s in statuses) == 1
    assert (results / "weights" / "probe.hdf5").is_file()
    assert sorted(p.name for p in results.glob("*.ckzip")) == [f"model.epoch-{e}.ckzip" for e in range(3)]
