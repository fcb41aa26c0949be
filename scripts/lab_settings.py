"""JupyterLab's settings for the course, written into an environment's overrides.json.

    python scripts/lab_settings.py [--prefix PREFIX]

JupyterLab takes the defaults of its settings from <prefix>/share/jupyter/lab/settings/overrides.json,
where <prefix> is the environment JupyterLab is installed in (`sys.prefix`). The course sets there:

- `fetchNews: "false"`: JupyterLab never asks "Would you like to get notified about official Jupyter
  news?" (a toast over the first notebook a student opens) and never fetches the news feed. The
  course runs offline, and a class should meet the notebook, not a privacy question.
- `checkForUpdates: false`: no query for newer JupyterLab versions (the course pins its versions).

Settings already in the file (a hub's own) are kept; only these keys are set. A student can still
turn the news on in Settings > Notifications. Where JupyterLab is installed, its schema is read first,
so a JupyterLab that renamed the setting stops this script with a message instead of being ignored.

Who runs it: `make` (the rule for .venv's overrides.json, before `make lab` and `make test`), repo2docker
through `postBuild` (Binder, the Zero to JupyterHub image), and The Littlest JupyterHub recipe in
docs/classroom.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PLUGIN = "@jupyterlab/apputils-extension:notification"
SETTINGS = {PLUGIN: {"fetchNews": "false", "checkForUpdates": False}}
RELATIVE = Path("share", "jupyter", "lab", "settings", "overrides.json")
SCHEMA = Path("share", "jupyter", "lab", "schemas", "@jupyterlab", "apputils-extension", "notification.json")


def allowed(prefix: Path) -> None:
    """A ValueError when the JupyterLab installed under `prefix` has a schema that refuses SETTINGS."""
    path = prefix / SCHEMA
    if not path.is_file():
        return  # JupyterLab not installed (yet): nothing to check against
    properties = json.loads(path.read_text(encoding="utf-8")).get("properties", {})
    for key, value in SETTINGS[PLUGIN].items():
        if key not in properties:
            raise ValueError(f"{path} has no setting {key!r}: this JupyterLab changed {PLUGIN}; update {__file__}")
        choices = [c.get("const") for c in properties[key].get("oneOf", [])]
        if choices and value not in choices:
            raise ValueError(f"{path}: {key} takes {choices}, not {value!r}; update {__file__}")


def merged(current: dict) -> dict:
    result = dict(current)
    for plugin, values in SETTINGS.items():
        result[plugin] = {**result.get(plugin, {}), **values}
    return result


def write(prefix: Path) -> Path:
    """Merge SETTINGS into <prefix>'s overrides.json; returns the file."""
    if not prefix.is_dir():
        raise FileNotFoundError(f"no environment at {prefix}: pass the folder JupyterLab is installed in (sys.prefix)")
    allowed(prefix)
    target = prefix / RELATIVE
    current = {}
    if target.is_file():
        try:
            current = json.loads(target.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ValueError(f"{target} is not JSON ({error}); fix or remove it, then run this again") from error
        if not isinstance(current, dict):
            raise ValueError(f"{target} holds {type(current).__name__}, not an object of settings; fix or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".json.part")
    partial.write_text(json.dumps(merged(current), indent=2) + "\n", encoding="utf-8")
    partial.replace(target)  # never a half-written file where JupyterLab reads
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", default=sys.prefix,
                        help="the environment JupyterLab runs from (default: this Python's, sys.prefix)")
    args = parser.parse_args(argv)
    try:
        target = write(Path(args.prefix).resolve())
    except (OSError, ValueError) as error:
        print(f"lab_settings: {error}", file=sys.stderr)
        return 1
    print(f"JupyterLab settings for the course in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
