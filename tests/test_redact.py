"""Redaction: credential shapes, explicit secrets of any length, every TaoflowError text, every log
record that reaches Prefect's handlers, and the stored copy of a run's parameters."""

from __future__ import annotations

import io
import logging
import pickle

import pytest

from tasks.errors import ConfigError, Problem, StorageError, TrainingFailed
from tasks.job.request import TrainRequest
from tasks.job.stored_parameters import refuse_stored_secrets, sanitized_parameters
from tasks.log_filters import RedactingFilter, install_log_filters
from tasks.redact import MASK, Redactor, scrub
from tests.job.test_request import BLOB, request_fields

SIG = "Zm9vYmFyYmF6%2Bqux%3D"
SAS = f"sv=2024-08-04&ss=b&srt=sco&sp=rl&se=2026-01-01T00:00:00Z&st=2025-01-01&spr=https&sig={SIG}"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONNECTION = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
DELEGATION = (f"skoid=1b2c3d4e-0000-0000-0000-000000000000&sktid=72f988bf-0000-0000-0000-000000000000"
              f"&skt=2025-01-01T00:00:00Z&ske=2025-01-02T00:00:00Z&sks=b&skv=2024-08-04&{SAS}")


@pytest.mark.parametrize("text", [
    f"GET https://acct.blob.core.windows.net/c/p?{SAS} failed",
    f"HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /acct/c?restype=container&{SAS}",
    f"encoded: https%3A%2F%2Fa.blob.core.windows.net%2Fc%3Fsp%3Dr%26sig%3D{SIG.replace('%', '%25')}%26sv%3D1",
    f"connection string {CONNECTION}",
    f"SharedAccessSignature={SAS};BlobEndpoint=https://acct.blob.core.windows.net/",
    f"Authorization: SharedKey acct:{ACCOUNT_KEY[:44]}",
    f"the key alone {ACCOUNT_KEY} in a message",
    "Parameters: {'request': {'key': 'abc', 'model_name': 'm'}}",
    'json {"key": "abc", "x": 1}',
])
def test_credential_shapes_are_masked(text):
    clean = scrub(text)
    for secret in (SIG, SIG.replace("%", "%25"), ACCOUNT_KEY, ACCOUNT_KEY[:44], "'abc'", '"abc"'):
        assert secret not in clean, clean
    assert MASK in clean


def test_harmless_sas_fields_stay_readable():
    clean = scrub(f"403 for https://acct.blob.core.windows.net/c?{DELEGATION}")
    # What an operator needs to see why a token was refused (expired? wrong permissions? whose?).
    for kept in ("sv=2024-08-04", "se=2026-01-01T00:00:00Z", "sp=rl", "spr=https", "skoid=1b2c3d4e", "sktid=72f988bf",
                 "ske=2025-01-02T00:00:00Z", "sks=b", "skv=2024-08-04", "st=2025-01-01", "srt=sco"):
        assert kept in clean
    assert clean.endswith("sig=***")


@pytest.mark.parametrize("key", ["k", "ab", "tlt", "nvidia", "short7!"])
def test_short_keys_are_masked_where_they_stand_alone_only(key):
    redact = Redactor([key])
    for shape in ("-k {}", "key={}", '"{}"', "'{}'", "TAO_KEY={}\n", "bad key: {}.", "[{}]", "{}", "a {} b"):
        assert redact(shape.format(key)) == shape.format(MASK), shape
    # ...not inside ordinary words and paths, which would turn every log line into noise.
    text = f"/data/x{key}y/{key}x.hdf5 model.{key} {key}-v2"
    assert redact(text) == text


def test_long_secrets_are_masked_everywhere_also_url_encoded():
    redact = Redactor(["s3cr3t+key/with=", CONNECTION])
    text = redact(f"-ks3cr3t+key/with= and s3cr3t%2Bkey%2Fwith%3D and {ACCOUNT_KEY[:20]}... {CONNECTION}")
    assert "s3cr3t" not in text and ACCOUNT_KEY not in text


def test_every_taoflow_error_text_is_scrubbed_where_it_is_built():
    url = f"https://acct.blob.core.windows.net/c/p?{SAS}"
    errors = [
        StorageError(f"reading {url}: refused", where=url, fix=f"check {CONNECTION}"),
        ConfigError("bad", problems=[Problem("x", f"location {url}", hint=f"not {url}")]),
        TrainingFailed(f"failed on {url}", exit_code=1, log_tail=[f"GET {url}"]),
    ]
    errors[1].problems.append(Problem("late", f"added later {url}"))
    for err in errors:
        for text in (err.render(), str(err), repr(err), err.what, err.where or "", err.fix or "",
                     pickle.loads(pickle.dumps(err)).render()):
            assert SIG not in text and ACCOUNT_KEY not in text, text
    assert "sig=***" in errors[0].what and errors[2].log_tail  # the rest of the text stays


def test_log_filter_scrubs_messages_args_and_tracebacks_of_any_library():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("azure.core.pipeline.policies.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("Request URL: %s", f"https://acct.blob.core.windows.net/c?{SAS}")
        logger.warning("100%% done with %s", CONNECTION)
        try:
            raise OSError(f"Max retries exceeded with url: /c?{SAS}")
        except OSError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SIG not in text and ACCOUNT_KEY not in text and text.count("sig=***") == 2 and "100% done" in text


def test_installed_on_prefects_console_and_api_handlers():
    import prefect.main  # noqa: F401 - sets up the handlers

    install_log_filters()
    # Under pytest the root logger keeps pytest's capture handlers instead of Prefect's console one.
    handlers = [h for name in ("", "prefect.flow_runs", "prefect.task_runs") for h in logging.getLogger(name).handlers]
    assert "APILogHandler" in {type(h).__name__ for h in handlers}
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in handlers)
    assert install_log_filters() == 0  # idempotent


def test_stored_parameters_lose_keys_unknown_names_and_signatures():
    stored = {"request": {"key": "abc", "key_block": "tao", "output": f"https://a.blob.core.windows.net/m?{SAS}",
                          "training_data": {"location": "/data"}, "spec_overrides": {"a.b": "1"}},
              "dry_run": False, "tao_key": "xyz"}
    clean = sanitized_parameters(stored, ["request", "dry_run"])
    assert clean == {"request": {"key": MASK, "key_block": "tao", "output": f"https://a.blob.core.windows.net/m?"
                                 f"{SAS.replace(SIG, MASK)}", "training_data": {"location": "/data"},
                                 "spec_overrides": {"a.b": "1"}},
                     "dry_run": False, "tao_key": MASK}
    assert sanitized_parameters(clean, ["request", "dry_run"]) == clean


def test_a_stored_request_with_a_key_or_sas_is_refused_with_advice():
    refuse_stored_secrets(TrainRequest.parse(request_fields(output=f"{BLOB}/trained", key_block="tao")))
    with pytest.raises(ConfigError) as info:
        refuse_stored_secrets(TrainRequest.parse(request_fields(key="k3y-zz")))
    text = info.value.render()
    assert {p.code for p in info.value.problems} == {"key-in-parameters", "sas-in-parameters"}
    assert "Secret block" in text and "storage_credentials" in text and "output" in text
    assert "k3y-zz" not in text and "realsig" not in text
