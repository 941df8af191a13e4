"""Text a customer or staff member sees, in zh-TW and English (config files' shape)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Localised(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    zh_tw: str = Field(alias="zh-TW", min_length=1)
    en: str = Field(min_length=1)

    def pick(self, locale: str | None) -> str:
        """English for an English locale, zh-TW for everything else (the brand's default)."""
        return self.en if (locale or "").lower().startswith("en") else self.zh_tw
