"""The deployment's UI form: every field of the request, of its data bindings and of its promotion
policy shows examples in the schema Prefect renders for `retrain_detectnet_v2`, and every example is
a value both the server's schema check and the request itself accept."""

from __future__ import annotations

import pytest
from jsonschema import Draft7Validator
from prefect.utilities.callables import parameter_schema

from flows.deployment import retrain_detectnet_v2
from tasks.job.chain_policy import CalibrationPolicy, ChainPolicy, EnginePolicy, ExportPolicy, PrunePolicy
from tasks.job.request import EXAMPLE, DataBinding, PromotionPolicy, TrainRequest

DEPLOY_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:5.5.0-deploy"

#: Each form, with a valid value of it that one example at a time replaces a field of.
FORMS = {
    "TrainRequest": (TrainRequest, EXAMPLE),
    "DataBinding": (DataBinding, {"location": "/workspace/tao-experiments/data/training"}),
    "PromotionPolicy": (PromotionPolicy, {}),
    "ChainPolicy": (ChainPolicy, {}),
    "PrunePolicy": (PrunePolicy, {}),
    "ExportPolicy": (ExportPolicy, {}),
    "CalibrationPolicy": (CalibrationPolicy, {}),
    "EnginePolicy": (EnginePolicy, {"tao_deploy_image": DEPLOY_IMAGE}),
}
#: Where each part sits in a whole request.
PLACES = {
    "DataBinding": lambda value: {"training_data": value},
    "PromotionPolicy": lambda value: {"promotion": value},
    "ChainPolicy": lambda value: {"chain": value},
    "PrunePolicy": lambda value: {"chain": {"prune": value}},
    "ExportPolicy": lambda value: {"chain": {"export": value}},
    "CalibrationPolicy": lambda value: {"chain": {"export": {"calibration": value}}},
    "EnginePolicy": lambda value: {"chain": {"export": {"enabled": True}, "engine": value}},
}


@pytest.fixture(scope="module")
def schema() -> dict:
    """The parameters' schema as Prefect stores it with a deployment and renders it as the form."""
    return parameter_schema(retrain_detectnet_v2).model_dump_for_openapi()


def _in_request(form: str, value: dict) -> dict:
    """A whole request whose `form` part is `value`, for the server's schema check."""
    return value if form == "TrainRequest" else EXAMPLE | PLACES[form](value)


@pytest.mark.parametrize("form", FORMS)
def test_every_field_shows_examples(schema, form):
    model, _ = FORMS[form]
    fields = schema["definitions"][form]["properties"]
    # Every field is on the form, except the one a deployment must never get (the key).
    assert set(fields) == set(model.model_fields) - {"key"}
    assert [name for name, field in fields.items() if not field.get("examples")] == []


@pytest.mark.parametrize("form", FORMS)
def test_every_example_is_a_value_the_request_takes(schema, form):
    model, valid = FORMS[form]
    server = Draft7Validator(schema)
    refused = []
    for name, field in schema["definitions"][form]["properties"].items():
        for example in field["examples"]:
            value = valid | {name: example}
            try:
                model.model_validate(value)
            except ValueError as exc:
                refused.append((name, example, str(exc)))
            problems = [e.message for e in server.iter_errors({"request": _in_request(form, value)})]
            if problems:
                refused.append((name, example, problems))
    assert refused == []


def test_the_form_filled_with_the_first_examples_is_a_request(schema):
    fields = schema["definitions"]["TrainRequest"]["properties"]
    filled = {name: field["examples"][0] for name, field in fields.items()}
    assert list(Draft7Validator(schema).iter_errors({"request": filled})) == []
    request = TrainRequest.model_validate(filled)
    assert request.results_location == "https://myacct.blob.core.windows.net/models/parking/2026-11-25"


def test_the_schema_check_refuses_a_wrong_example(schema):
    """The check above has teeth: a SAS in a location, a name with a slash, are refused by the server's schema."""
    server = Draft7Validator(schema)
    sas = EXAMPLE | {"output": "https://myacct.blob.core.windows.net/models?sv=2024&sig=abc"}
    climbing = EXAMPLE | {"model_subfolder": "../elsewhere"}
    assert [len(list(server.iter_errors({"request": bad}))) for bad in (sas, climbing)] == [1, 1]
