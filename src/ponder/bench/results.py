"""The result file: a versioned JSON document of config, per-request records and summaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ponder.bench.errors import BenchConfigError
from ponder.bench.metrics import summarize
from ponder.bench.session import BenchResult

# Bump on any change that breaks a reader of an older file; document it in docs/bench.md.
SCHEMA_VERSION = 1


def result_document(result: BenchResult) -> dict:
    """The JSON document of a finished benchmark (schema in docs/bench.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "ponder bench",
        "created_at": result.created_at,
        "model": result.model,
        "config": result.config.to_json_dict(),
        "runs": [
            {
                "summary": summarize(run, result.config.slo),
                "requests": [record.to_json() for record in run.records],
            }
            for run in result.runs
        ],
    }


def default_result_name(document: dict) -> str:
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", document["model"]).strip("_")[-60:] or "model"
    stamp = re.sub(r"[^0-9]", "", document["created_at"])[:14]
    return f"bench-{model}-{stamp}"


def write_result(document: dict, result_dir: str, name: str) -> Path:
    directory = Path(result_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def read_result(path: str) -> dict:
    """Loads a result file for `compare`, refusing files of another schema version."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise BenchConfigError(f"{path} is not JSON ({exc})") from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise BenchConfigError(
            f"{path}: schema_version {version!r} is not {SCHEMA_VERSION}; "
            "is it a `ponder bench` result file of this version?"
        )
    return document
