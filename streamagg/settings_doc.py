"""docs/configuration.md, generated from the Settings object so the two cannot drift.

Regenerate with `python -m streamagg.settings_doc > docs/configuration.md`.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from streamagg.settings import NUMBER_RANGES, Settings, env_name

HEADER = """# Configuration reference

Every setting of `streamagg worker` and of the CLI commands comes from one environment variable.
Generated from `streamagg/settings.py` by `python -m streamagg.settings_doc`; a unit test keeps
this file and the code equal.

| variable | default | meaning |
|---|---|---|
"""


def _default(name: str) -> str:
    for f in fields(Settings):
        if f.name != name:
            continue
        if f.default is not MISSING:
            return "(unset)" if f.default is None or f.default == "" else f"`{f.default}`"
        return "this host's name" if name == "web_host" else "(computed)"
    raise KeyError(name)


def configuration_markdown() -> str:
    rows = []
    for f in fields(Settings):
        doc = str(f.metadata.get("doc", "")).replace("|", "\\|")
        if f.name in NUMBER_RANGES:
            low, high = NUMBER_RANGES[f.name]
            doc += f" An integer from {low:,} to {high:,}."
        rows.append(f"| `{env_name(f.name)}` | {_default(f.name)} | {doc} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(configuration_markdown(), end="")
