"""`TrainRequest`: everything a DetectNet_v2 retraining job needs, typed and described.

The descriptions are not decoration: Prefect renders them as the deployment's UI form and
the CLI shows them in `--help`. `TrainRequest.from_component_inputs` takes the AzureML
component's flat inputs by their exact names (`tasks/job/component_inputs.py`), so an existing
pipeline's values move over unchanged.

A request is safe to store and to publish (`tasks/job/request_fields.py`): the names that become
folders under the output are single path components, and the JSON schema the deployments get
has no `key` field and refuses URLs with a query string (a SAS token), so the Prefect server
refuses such a run before storing anything. In-process runs (`taoflow run`) still take a key and
a SAS; their stored parameters leave the key out and mask the SAS.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from tasks.errors import ConfigError
from tasks.job.chain_policy import ChainPolicy
from tasks.job.component_inputs import (
    COMPONENT_INPUTS,  # noqa: F401 - tasks.job.config reads the input names here
    COMPONENT_OUTPUTS,  # noqa: F401
    component_lines,
    map_component_inputs,
)
from tasks.job.field_problems import pydantic_problems, unknown_field_problem
from tasks.job.promotion_policy import PromotionPolicy
from tasks.job.request_fields import (
    ALLOWED_COMPONENT,
    KEY_ADVICE,
    Location,
    PathComponent,
    join_location,
    parse_gpu_index,
)
from tasks.launch.plan import DEFAULT_IMAGE, GpuSetting

# Where the UI form's examples point: a storage account's containers, and NVIDIA's notebook layout in specs.
_BLOB = "https://myacct.blob.core.windows.net"
_TAO = "/workspace/tao-experiments"


class DataBinding(BaseModel):
    """Where a dataset really is, and the hard-coded path in the spec it replaces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: Location = Field(
        description=(
            "Where the data is: a local path, an Azure Blob URL (https://ACCOUNT.blob.core.windows.net/"
            "CONTAINER/PREFIX, az://CONTAINER/PREFIX, abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX) "
            "or an AzureML datastore URI (azureml://datastores/NAME/paths/PATH)."
        ),
        min_length=1,
        examples=[f"{_BLOB}/datasets/parking/training", f"{_TAO}/data/training",
                  "azureml://datastores/workspaceblobstore/paths/datasets/parking/training"],
    )
    spec_reference: str | None = Field(
        default=None,
        description=(
            "The path written in the spec that this location replaces, e.g. "
            "/workspace/tao-experiments/data/training. Every spec path under it is rebased onto the real data."
        ),
        examples=[f"{_TAO}/data/training", f"{_TAO}/data/tfrecords/kitti_trainval"],
    )

    @field_validator("location", "spec_reference")
    @classmethod
    def _no_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value.strip() if value is not None else None


class TrainRequest(BaseModel):
    """A DetectNet_v2 retraining job: inputs, spec rebasings, output and TAO options."""

    model_config = ConfigDict(
        extra="forbid",
        validate_default=True,
        # The deployments' schema names the one field a deployment must never get, with the fix:
        # the Prefect server quotes this when it refuses a run whose request has a `key`.
        json_schema_extra={"propertyNames": {"not": {"const": "key", "description": f"no key here: {KEY_ADVICE}"}}},
    )

    model_app_name: PathComponent = Field(
        description=(
            "Application name; the results go to OUTPUT/MODEL_APP_NAME/MODEL_SUBFOLDER. One folder name: "
            + ALLOWED_COMPONENT
        ),
        examples=["parking", "retail-shelf"],
    )
    num_epochs: int = Field(
        description="Epochs to train (3-5 for a quick experiment, 120+ for a good model). Replaces the spec's num_epochs.",
        ge=1,
        examples=[120, 5],
    )
    spec: Location = Field(
        description="The DetectNet_v2 experiment spec file (local path, blob URL or AzureML URI).",
        min_length=1,
        examples=[f"{_BLOB}/specs/parking/detectnet_v2_train_resnet18_kitti.txt",
                  f"{_TAO}/specs/detectnet_v2_train_resnet18_kitti.txt"],
    )
    training_data: DataBinding = Field(
        description="KITTI training data (images + labels) and its spec path.",
        examples=[{"location": f"{_BLOB}/datasets/parking/training", "spec_reference": f"{_TAO}/data/training"}],
    )
    training_tfrecords: DataBinding = Field(
        description="Training TFRecords folder and its spec path.",
        examples=[{"location": f"{_BLOB}/datasets/parking/tfrecords",
                   "spec_reference": f"{_TAO}/data/tfrecords/kitti_trainval"}],
    )
    base_model: DataBinding = Field(
        description="Folder holding the pretrained model and its spec path.",
        examples=[{"location": f"{_BLOB}/models/pretrained/resnet18",
                   "spec_reference": f"{_TAO}/detectnet_v2/pretrained_resnet18"}],
    )
    validation_data: DataBinding | None = Field(
        default=None, description="KITTI validation data and its spec path (optional).",
        examples=[{"location": f"{_BLOB}/datasets/parking/validation", "spec_reference": f"{_TAO}/data/validation"}],
    )
    validation_tfrecords: DataBinding | None = Field(
        default=None, description="Validation TFRecords folder and its spec path (optional).",
        examples=[{"location": f"{_BLOB}/datasets/parking/validation-tfrecords",
                   "spec_reference": f"{_TAO}/data/tfrecords/validation"}],
    )
    dataset_convert_spec: Location | None = Field(
        default=None,
        description=(
            "A dataset_convert (KITTI to TFRecords) spec. When given and the TFRecords location is empty "
            "or older than the data, taoflow converts first and publishes the TFRecords beside the data."
        ),
        examples=[f"{_BLOB}/specs/parking/detectnet_v2_tfrecords_kitti_trainval.txt"],
    )
    output: Location = Field(
        description="Where trained models are published (the component's trained_model_dir).",
        min_length=1,
        examples=[f"{_BLOB}/models", f"{_TAO}/models"],
    )
    model_subfolder: PathComponent = Field(
        description="Subfolder under OUTPUT/MODEL_APP_NAME for this run's results. One folder name: " + ALLOWED_COMPONENT,
        examples=["2026-11-25", "resnet18-run1"],
    )
    storage_credentials: str | None = Field(
        default=None,
        description=(
            "Name of a prefect-azure AzureBlobStorageCredentials block for blob locations. Without it: "
            "env AZURE_STORAGE_CONNECTION_STRING, a SAS token in the URL, or DefaultAzureCredential."
        ),
        examples=["taoflow-blob"],
    )
    model_name: PathComponent = Field(
        default="model",
        description="Name of the final model file (-n): weights/MODEL_NAME.hdf5. One file name: " + ALLOWED_COMPONENT,
        examples=["resnet18_detector"],
    )
    # Not in any JSON schema (so no deployment form offers it and the server refuses it) and
    # never dumped (so no stored parameters hold it, not even masked).
    key: SkipJsonSchema[SecretStr | None] = Field(
        default=None,
        exclude=True,
        description=(
            "Encryption key for .tlt models (-k), for in-process runs (taoflow run: the job file or env TAO_KEY). "
            "Never shown, logged or stored; deployments refuse it."
        ),
    )
    key_block: str | None = Field(
        default=None,
        description=(
            "Name of a Prefect Secret block holding the TAO key (-k). Without it, env TAO_KEY on the machine "
            "that runs the flow. The key itself is never a deployment parameter."
        ),
        examples=["tao-model-key"],
    )
    num_gpus: int = Field(default=1, ge=1, le=64, description="GPUs to train on (--gpus).", examples=[1, 2])
    gpu_index: list[int] = Field(
        default_factory=list,
        description="Indices of the GPUs to use (--gpu_index); as many as num_gpus, or empty for the first ones.",
        examples=[[0], [3]],
    )
    use_amp: bool = Field(default=False, description="Automatic mixed precision (--use_amp).", examples=[False, True])
    log_file: PathComponent | None = Field(
        default=None,
        description="Also write the training log to this file name inside the results (--log_file). " + ALLOWED_COMPONENT,
        examples=["train.log"],
    )
    image: str = Field(default=DEFAULT_IMAGE, description="TAO container image that runs detectnet_v2.",
                       examples=[DEFAULT_IMAGE])
    docker_gpus: GpuSetting = Field(
        default="auto",
        description=(
            'GPUs a job books and gets: "auto" (num_gpus of this host\'s GPUs, or exactly gpu_index), "all" (every '
            'GPU the host lends), a count, or "none" (CPU-only smoke runs and tests). Booked GPUs are Prefect global '
            "concurrency limits per host and GPU (docs/deploy.md, \"Many runs at once\")."
        ),
        examples=["auto", "all", 2, "none"],
    )
    launcher: Literal["docker", "process"] = Field(
        default="docker",
        description=(
            "docker: start the TAO image on this machine's Docker engine (GPU hosts, process work pools). "
            "process: the flow already runs inside the TAO image (docker/kubernetes work pools)."
        ),
        examples=["docker", "process"],
    )
    resume: bool = Field(
        default=False,
        description="Allow training to continue from checkpoints already in the results folder.",
        examples=[False, True],
    )
    spec_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Extra spec edits, field path to value, e.g. training_config.batch_size_per_gpu: '8'.",
        examples=[{"training_config.batch_size_per_gpu": "8", "training_config.checkpoint_interval": "5"}],
    )
    # --- evaluation and promotion (issue 17) ---
    evaluation_data: DataBinding | None = Field(
        default=None,
        description=(
            "A held-out KITTI set (TFRecords and images) the new model and the champion are both evaluated on, "
            "and the spec path it replaces: spec paths under spec_reference (the spec's validation_data_source) "
            "are rebased onto it for evaluate only. Empty: evaluate on the spec's own validation data."
        ),
        examples=[{"location": f"{_BLOB}/datasets/parking/held-out", "spec_reference": f"{_TAO}/data/validation"}],
    )
    promotion: PromotionPolicy = Field(
        default_factory=PromotionPolicy,
        description="When the new model becomes the champion (OUTPUT/MODEL_APP_NAME/champion.json).",
        examples=[{"max_map_drop": 0.5, "max_class_ap_drop": 3.0, "min_map": 60.0,
                   "min_class_ap": {"pedestrian": 50.0}}],
    )
    chain: ChainPolicy = Field(
        default_factory=ChainPolicy,
        description=(
            "After training, to get a model you can deploy (docs/chain.md): prune -> retrain -> evaluate -> export to "
            "ONNX with the DeepStream config -> TensorRT engine by TAO Deploy, each step opt-in, with gates; the "
            "champion is compared with the model that ships."
        ),
        examples=[{"prune": {"enabled": True, "threshold": 0.01}}, {"export": {"enabled": True}}],
    )
    subfolder_per_run: bool = Field(
        default=False,
        description=(
            "Append the run's scheduled start (UTC, -YYYYMMDDTHHMMSSZ) to model_subfolder, so a schedule with a "
            "fixed model_subfolder publishes every run as a new version instead of over an older one."
        ),
        examples=[False, True],
    )

    @field_validator("gpu_index", mode="before")
    @classmethod
    def _parse_gpu_index(cls, value: Any) -> Any:
        return parse_gpu_index(value)

    @field_validator("gpu_index")
    @classmethod
    def _gpu_index_non_negative(cls, value: list[int]) -> list[int]:
        bad = [i for i in value if i < 0]
        if bad:
            raise ValueError(f"GPU indices must be >= 0, got {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"GPU indices must be distinct, got {value}")
        return value

    @field_validator("docker_gpus", mode="before")
    @classmethod
    def _parse_docker_gpus(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, str):
            return value.strip().lower()
        return value

    @field_validator("docker_gpus")
    @classmethod
    def _docker_gpus_positive(cls, value: GpuSetting) -> GpuSetting:
        if isinstance(value, int) and value < 1:
            raise ValueError('a GPU count must be >= 1; use "none" for no GPUs')
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> "TrainRequest":
        if self.gpu_index and len(self.gpu_index) != self.num_gpus:
            raise ValueError(
                f"gpu_index lists {len(self.gpu_index)} GPU(s) but num_gpus is {self.num_gpus}; TAO needs them equal"
            )
        if self.key is not None and self.key_block:
            raise ValueError("give either key or key_block, not both")
        return self

    # --- derived locations ----------------------------------------------------------------

    @property
    def results_location(self) -> Location:
        """OUTPUT/MODEL_APP_NAME/MODEL_SUBFOLDER, as the seed component computes -r."""
        return join_location(self.output, self.model_app_name, self.model_subfolder)

    def training_bindings(self) -> dict[str, DataBinding]:
        """The bindings the training spec is rebased with (the evaluation data is evaluate's alone)."""
        return {name: b for name, b in self.bindings().items() if name != "evaluation_data"}

    def bindings(self) -> dict[str, DataBinding]:
        """The data bindings that are set, by slot name."""
        named = {
            "training_data": self.training_data,
            "validation_data": self.validation_data,
            "training_tfrecords": self.training_tfrecords,
            "validation_tfrecords": self.validation_tfrecords,
            "base_model": self.base_model,
            "evaluation_data": self.evaluation_data,
        }
        return {name: b for name, b in named.items() if b is not None}

    def locations(self) -> dict[str, str]:
        """Every location of the request by its dotted field name (spec, output, bindings)."""
        named = {"spec": self.spec, "dataset_convert_spec": self.dataset_convert_spec, "output": self.output}
        named |= {f"{name}.location": b.location for name, b in self.bindings().items()}
        return {name: value for name, value in named.items() if value is not None}

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def parse(
        cls, data: Mapping[str, Any], *, source: str = "request", lines: Mapping[str, int] | None = None
    ) -> "TrainRequest":
        """Validate a mapping, raising one `ConfigError` that lists every problem.

        `lines` maps dotted field paths to their line in the source file, so each problem
        points at the line to fix.
        """
        lines = lines or {}
        unknown = [k for k in data if k not in cls.model_fields]
        problems = [unknown_field_problem(k, cls.model_fields, source, lines.get(k)) for k in unknown]
        try:
            request = cls.model_validate({k: v for k, v in data.items() if k not in unknown})
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, source, lines))
            request = None
        if problems:
            raise ConfigError(
                f"{source}: {len(problems)} problem(s) in the training request",
                problems=problems,
                fix="correct the fields listed above; `taoflow run --help` describes each one",
            )
        assert request is not None
        return request

    @classmethod
    def from_component_inputs(
        cls, inputs: Mapping[str, Any], *, source: str = "component inputs", lines: Mapping[str, int] | None = None
    ) -> "TrainRequest":
        """Build a request from the AzureML component's flat input names, with the seed's mapping
        (tasks/job/component_inputs.py); every problem of the inputs in one `ConfigError`."""
        fields, problems = map_component_inputs(inputs, source=source, lines=lines)
        field_lines = component_lines(lines or {})
        if problems:
            # Validate what we have too (valid stand-ins for the missing fields), so every problem shows at once.
            try:
                cls.model_validate(EXAMPLE | fields)
            except ValidationError as exc:
                problems.extend(pydantic_problems(exc, source, field_lines))
            raise ConfigError(
                f"{source}: {len(problems)} problem(s) in the component inputs",
                problems=problems,
                fix="correct the inputs listed above; their names are those of the AzureML component's README",
            )
        return cls.parse(fields, source=source, lines=field_lines)


#: A complete, valid request (the docstring examples and the placeholder of the component mapping use it).
EXAMPLE: dict[str, Any] = {
    "model_app_name": "placeholder",
    "num_epochs": 1,
    "spec": "placeholder",
    "training_data": {"location": "placeholder", "spec_reference": "/placeholder"},
    "training_tfrecords": {"location": "placeholder", "spec_reference": "/placeholder"},
    "base_model": {"location": "placeholder", "spec_reference": "/placeholder"},
    "output": "placeholder",
    "model_subfolder": "placeholder",
}

