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
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return tree


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
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise CardIDError(f"{what} is not valid YAML: {p} ({e})") from None
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
