"""Typed configs: defaults ← YAML file ← ``key.sub=value`` overrides; saved beside every artefact."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cardid.errors import CardIDError
from cardid.io import write_bytes_atomic

M = TypeVar("M", bound=BaseModel)


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """``["photo.p_glare=0.3", "seed=1"]`` → ``{"photo": {"p_glare": 0.3}, "seed": 1}`` (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CardIDError(f"override must look like key=value, got {item!r}")
        node = tree
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise CardIDError(f"override {item!r} conflicts with another override")
        try:
            node[parts[-1]] = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise CardIDError(f"override {item[:80]!r}: not a plain YAML value ({_first_line(e)})") from None
    return tree


#: a config or recipe is a few kilobytes; anything near this is not one
MAX_YAML_BYTES = 1 << 20


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML, stricter: no anchors or aliases (no "billion laughs", no recursive value) and no
    key given twice in one mapping (a stage or a setting written twice is an error, not the last)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in cardid configs", event.start_mark
            )
        node = super().compose_node(parent, index)
        if getattr(node, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) are not allowed in cardid configs", node.start_mark
            )
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str):
    """Parse YAML as cardid reads every config: safe tags only, no aliases, no duplicate keys."""
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: safe tags only


def _first_line(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


def merge(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in upd.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
        if v is not None and v != {}:
            out[k] = v
    return out


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file that must hold a mapping (a config, a recipe): one clear error otherwise."""
    p = Path(path)
    if not p.is_file():
        raise CardIDError(f"{what} not found: {p}")
    if p.stat().st_size > MAX_YAML_BYTES:
        raise CardIDError(f"{what} {p} is over {MAX_YAML_BYTES:,} bytes: not a cardid config")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CardIDError(f"{what} {p} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    try:
        loaded = load_yaml(text) or {}
    except yaml.YAMLError as e:
        raise CardIDError(f"{what} is not valid YAML: {p} ({_first_line(e)})") from None
    if not isinstance(loaded, dict):
        raise CardIDError(f"{what} must hold a mapping: {p}")
    return loaded


def validation_message(e: ValidationError) -> str:
    """A pydantic error as one line: the first problem, an unknown key named as such."""
    err = e.errors()[0]
    where = ".".join(map(str, err["loc"]))
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    return f"{where}: {err['msg']}"


def load_config(
    cls: type[M],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    defaults: dict[str, Any] | None = None,
    **values: Any,
) -> M:
    """Build ``cls`` in layers: its field defaults ← ``defaults`` (e.g. a preset) ← a YAML file ←
    keyword values that are not None (CLI options; nested dicts allowed) ← ``key.sub=value`` overrides."""
    data = read_mapping(path) if path else {}
    data = merge(defaults or {}, data)
    data = merge(data, _drop_none(values))
    data = merge(data, parse_overrides(overrides))
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise CardIDError(f"invalid {cls.__name__}: {validation_message(e)}") from e


def save_config(cfg: BaseModel, path: str | Path) -> None:
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    write_bytes_atomic(path, text.encode("utf-8"))
