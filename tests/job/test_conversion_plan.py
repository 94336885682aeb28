"""dataset_convert reads the paths in its spec as they are: the container's mounts for the Docker
launcher, the staged copies for a process already inside the TAO image (the docker pool's flow-run
container). The stand-in converter that wrote empty shards never read them, which hid this."""

from __future__ import annotations

import pytest

from tasks.job.demo import demo_inputs
from tasks.job.plans import plan_conversion
from tasks.job.preflight import prepare_spec
from tasks.launch.slots import Slot, container_path


@pytest.mark.parametrize("launcher", ["docker", "process"])
def test_the_conversion_spec_names_the_data_where_the_converter_sees_it(tmp_path, launcher):
    request, staged = demo_inputs(tmp_path)
    request = request.model_copy(update={"launcher": launcher})
    plan_conversion(request, prepare_spec(request, staged), staged, tmp_path / "run", "run-1")
    spec = (tmp_path / "run" / "convert" / "specs" / "dataset_convert_spec.txt").read_text()
    data = container_path(Slot.TRAINING_DATA) if launcher == "docker" else str(staged["training_data"].path)
    assert f'root_directory_path: "{data}"' in spec, spec
