"""The promotion's failure paths, on local output (real dockerd with the stand-in, real Prefect API):
a champion that cannot be evaluated (its model gone, its folder a link) blocks the promotion, not
the publication; a new model that cannot be evaluated fails the run before anything is published."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from flows.train import train_detectnet_v2
from tasks.job.request import TrainRequest
from tasks.launch import EvaluationFailed
from tests.flow.conftest import request_fields
from tests.registry.helpers import card_for, publish_and_promote
from tests.reliability import ledger
from tests.storage.hostile_fs import OutsideWatch

pytestmark = pytest.mark.services


def test_a_champion_that_cannot_be_evaluated_blocks_promotion_not_publication(prefect_api, engine_env, demo_data,
                                                                               tmp_path):
    image = engine_env()
    app = tmp_path / "out" / "shapes"
    assert publish_and_promote(str(app), card_for("old", {"ellipse": 10.0}, run_id="long-ago",
                                                  created_at="2026-01-01T00:00:00+00:00"), tmp_path / "work").promoted
    (app / "old" / "weights" / "model.hdf5").unlink()  # someone tidied the storage
    before = (app / "champion.json").read_bytes()
    (tmp_path / "tfr").mkdir()
    fields = request_fields(demo_data, tfrecords=str(tmp_path / "tfr"), output=str(tmp_path / "out"), image=image,
                            model_subfolder="new")
    state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    assert state.is_completed() and state.name == "Not promoted", state.message
    assert "the champion could not be evaluated on the held-out data" in state.message
    assert (app / "champion.json").read_bytes() == before
    assert (app / "new" / "_taoflow_published.json").is_file()
    card = json.loads((app / "new" / "model-card.json").read_text())
    assert card["compared_with"] == "old" and card["verdict"]["champion"] is None


def test_a_new_model_that_cannot_be_evaluated_publishes_nothing(prefect_api, engine_env, demo_data, tmp_path):
    image = engine_env({"TAO_STANDIN_EVAL_REJECT_SPEC": "1"})
    (tmp_path / "tfr").mkdir()
    fields = request_fields(demo_data, tfrecords=str(tmp_path / "tfr"), output=str(tmp_path / "out"), image=image)
    state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
    assert state.is_failed()
    with pytest.raises(EvaluationFailed) as caught:
        state.result()
    assert caught.value.reason == "spec rejected" and caught.value.container_exit_code == 0
    # The run claimed its version folder before its first container; nothing else is there.
    app = tmp_path / "out" / "shapes"
    left = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.is_file())
    assert left == ["run-1/_taoflow_claim.json"], "nothing may be published or promoted"


def test_a_champion_reached_through_a_link_is_not_evaluated_and_its_target_never_read(prefect_api, engine_env,
                                                                                    demo_data, tmp_path):
    """The champion's version folder is a symlink to a complete version elsewhere on the host. It was
    evaluated in place (the evaluator read that folder; with Docker the read-only mount pointed at the
    link's target, and the better new model was compared against it and promoted). Now its staging
    refuses the link: the new model is published, not promoted, and nothing there is opened (inotify)."""
    image = engine_env()
    app = tmp_path / "out" / "shapes"
    assert publish_and_promote(str(app), card_for("old", {"ellipse": 10.0}, run_id="long-ago",
                                                  created_at="2026-01-01T00:00:00+00:00"), tmp_path / "work").promoted
    elsewhere = tmp_path / "host" / "old"
    elsewhere.parent.mkdir()
    shutil.move(app / "old", elsewhere)
    os.symlink(elsewhere, app / "old")
    before = (app / "champion.json").read_bytes()
    (tmp_path / "tfr").mkdir()
    fields = request_fields(demo_data, tfrecords=str(tmp_path / "tfr"), output=str(tmp_path / "out"), image=image,
                            model_subfolder="new")
    with OutsideWatch(tmp_path / "host") as watch:
        state = train_detectnet_v2(TrainRequest(**fields), return_state=True)
        touched = watch.touched()
    assert touched == [], touched
    assert state.is_completed() and state.name == "Not promoted", state.message
    assert "the champion could not be evaluated on the held-out data" in state.message and "symlink" in state.message
    assert (app / "champion.json").read_bytes() == before
    assert (app / "new" / "_taoflow_published.json").is_file()
    ledger.record("hostile-registry", trials=1, outside_events=len(touched))
