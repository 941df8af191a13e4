"""The shipped config files, and a brand's own dir replacing them file by file."""

from __future__ import annotations

from pathlib import Path

from toolkit import defaults
from toolkit.chatbot.config import load_bot_config
from toolkit.consent import service as consent
from toolkit.inbox import service as inbox

SHIPPED = ("purposes.yaml", "line.yaml", "chatbot.yaml")


def test_the_defaults_ship_inside_the_package_and_load():
    for name in SHIPPED:
        assert defaults.path(name).is_file()
        assert defaults.path(name).parent == defaults.DEFAULTS_DIR
    assert consent.load_purpose_file(defaults.path("purposes.yaml"))
    assert inbox.load_channel_config(defaults.path("line.yaml")).keywords.opt_out
    assert load_bot_config(defaults.path("chatbot.yaml")).handoff.keywords
    assert len(defaults.glob("faq/retail-*.yaml")) >= 5


def test_a_file_in_the_brand_dir_replaces_only_the_default_of_its_name(tmp_path: Path):
    (tmp_path / "line.yaml").write_text("brand_name: {}\n", encoding="utf-8")

    assert defaults.path("line.yaml", tmp_path) == tmp_path / "line.yaml"
    assert defaults.path("chatbot.yaml", tmp_path) == defaults.DEFAULTS_DIR / "chatbot.yaml"


def test_the_brand_dir_replaces_or_adds_faq_files_by_name(tmp_path: Path):
    (tmp_path / "faq").mkdir()
    (tmp_path / "faq" / "retail-orders.yaml").write_text("entries: []\n", encoding="utf-8")
    (tmp_path / "faq" / "retail-zz.yaml").write_text("entries: []\n", encoding="utf-8")
    shipped = defaults.glob("faq/retail-*.yaml")

    found = defaults.glob("faq/retail-*.yaml", tmp_path)

    assert [p.name for p in found] == sorted({p.name for p in shipped} | {"retail-zz.yaml"})
    assert tmp_path / "faq" / "retail-orders.yaml" in found
    assert defaults.DEFAULTS_DIR / "faq" / "retail-orders.yaml" not in found
