"""`Picture`: image bytes with a title, and the escaping every text drawn from the data goes through.

A picture travels inline, as a `data:` URI: the Prefect UI (both UIs of Prefect 3.9) and a saved
HTML file show it without fetching anything, so no storage URL, and no SAS token, is ever put into
an artifact or a report.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Mime = Literal["image/svg+xml", "image/png", "image/jpeg"]
#: A picture read back from a (possibly hostile) report.json is refused above this size.
MAX_PICTURE_BYTES = 8 << 20
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/svg+xml": b"<svg"}


class Picture(BaseModel):
    """One drawn picture: what the UI and the HTML report show."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    title: str = Field(description="Caption shown above the picture")
    mime: Mime = Field(description="Media type of `data`")
    data: bytes = Field(description="The encoded image (SVG text, PNG or JPEG)", max_length=MAX_PICTURE_BYTES)
    width: int = Field(ge=1, le=10_000, description="Width in CSS pixels")
    height: int = Field(ge=1, le=10_000, description="Height in CSS pixels")
    alt: str = Field(default="", description="Text for people who cannot see the picture")

    @field_validator("data")
    @classmethod
    def _is_that_kind(cls, data: bytes, info) -> bytes:
        # The mime is validated first (field order); a stored picture must be what it claims.
        mime = info.data.get("mime")
        if mime and not data.startswith(_MAGIC[mime]):
            raise ValueError(f"the data is not {mime}")
        return data

    def data_uri(self) -> str:
        """The picture as a `data:` URI, e.g. for `![alt](data:image/png;base64,...)`.

        >>> Picture(title="t", mime="image/png", data=b"\\x89PNG\\r\\n\\x1a\\n", width=1, height=1).data_uri()
        'data:image/png;base64,iVBORw0KGgo='
        """
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def titled(self) -> bool:
        """True when the title is drawn into the picture itself (the charts)."""
        return self.mime == "image/svg+xml"

    def markdown(self) -> str:
        """A markdown image of this picture (alt text escaped), captioned unless the title is drawn in."""
        image = f"![{md_text(self.alt or self.title)}]({self.data_uri()})"
        return image if self.titled else f"**{md_text(self.title)}**\n\n{image}"

    def html(self) -> str:
        """An <img> of this picture, captioned unless the title is drawn in."""
        caption = "" if self.titled else f"<figcaption>{html.escape(self.title)}</figcaption>"
        return (f'<figure>{caption}<img src="{self.data_uri()}" width="{self.width}" height="{self.height}" '
                f'alt="{html.escape(self.alt or self.title)}"></figure>')


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_text(text: str, limit: int = 200) -> str:
    """Text from the data (a class name, a file name) made inert in markdown.

    HTML is escaped (the Prefect UI renders raw HTML in markdown) and markdown punctuation is
    backslash-escaped, so a class called `<img src=x onerror=...>` or `**x**` shows as written.

    >>> md_text("a|b <i>")
    'a\\\\|b &lt;i&gt;'
    """
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False)


def short(text: str, limit: int = 24) -> str:
    """A label that fits beside a bar: one line, at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
