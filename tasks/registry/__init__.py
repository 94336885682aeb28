"""The model registry of an application (`OUTPUT/MODEL_APP_NAME/`): a `model-card.json` in every
published model folder, one `champion.json` pointer replaced atomically, the promotion policy's
verdict, and reading it all back (`taoflow models list|show`). Plain functions; the Prefect tasks
are in `tasks.registry.registry_tasks`."""

from tasks.job.promotion_policy import (
    NOT_PROMOTED,
    PROMOTED,
    ClassCheck,
    Metrics,
    PromotionOutcome,
    Verdict,
    judge_promotion,
)
from tasks.registry.card import CARD_FILE, HeldOut, ModelCard, build_card, held_out, request_without_secrets
from tasks.registry.catalog import ChampionPointer, VersionRow, app_location, list_versions, read_card, read_champion
from tasks.registry.claims import CLAIM_FILE, Claim, check_claim, claim_version
from tasks.registry.pointer import POINTER_FILE, PointerRead, read_pointer, swap_pointer
from tasks.registry.promotion import promote, version_for_run

__all__ = [
    "CARD_FILE",
    "CLAIM_FILE",
    "NOT_PROMOTED",
    "POINTER_FILE",
    "PROMOTED",
    "ChampionPointer",
    "Claim",
    "ClassCheck",
    "HeldOut",
    "Metrics",
    "ModelCard",
    "PointerRead",
    "PromotionOutcome",
    "Verdict",
    "VersionRow",
    "app_location",
    "build_card",
    "check_claim",
    "claim_version",
    "held_out",
    "judge_promotion",
    "list_versions",
    "promote",
    "read_card",
    "read_champion",
    "read_pointer",
    "request_without_secrets",
    "swap_pointer",
    "version_for_run",
]
