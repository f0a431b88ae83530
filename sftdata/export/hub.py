"""``sftdata export --push-to-hub OWNER/NAME``: publish an export as a Hugging Face Hub dataset.

One commit holds the card (README.md, whose YAML ``configs`` the Hub's viewer and ``load_dataset``
read), dataset_info.json and the JSONL files of the formats the card names; never the hf/ and
parquet/ copies (the same rows twice). huggingface_hub does the talking: the token comes from
``HF_TOKEN`` or ``hf auth login`` as usual, the endpoint from ``HF_ENDPOINT`` (read at call time, so a
mirror or a test server set after import is honoured). The token is registered for redaction and
never written anywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, EndpointUnavailable, register_secret

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        raise ConfigError(f"'{repo_id}' is not a Hub dataset name: OWNER/NAME (letters, digits, '-', '_', '.')",
                          "--push-to-hub")
    return repo_id


def files_to_upload(out_dir: Path, summary: dict[str, Any]) -> list[str]:
    """The card, dataset_info.json and each chosen format's split files, as paths inside the repo."""
    paths = ["README.md"] if (out_dir / "README.md").is_file() else []
    if (out_dir / "dataset_info.json").is_file():
        paths.append("dataset_info.json")
    paths += [rel for fmt in summary["formats"] for rel in summary["files"][fmt].values()]
    return paths


def push_to_hub(out_dir: str | os.PathLike[str], summary: dict[str, Any], repo_id: str, *,
                private: bool = False, token: str | None = None) -> dict[str, Any]:
    """Create the dataset repo (kept if it exists) and commit the export's files to it in one commit."""
    from huggingface_hub import CommitOperationAdd, HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    if constants.is_offline_mode():
        raise ConfigError("huggingface_hub is in offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set): "
                          "unset it to push", "--push-to-hub")
    out = Path(out_dir)
    token = token or os.environ.get("HF_TOKEN") or None
    register_secret(token)
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    paths = files_to_upload(out, summary)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(out / p)) for p in paths]
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations, repo_type="dataset",
                                   commit_message=f"sftdata export: {summary['records']} records, "
                                                  f"{', '.join(summary['formats'])}")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise ConfigError(f"the Hub refused the token ({status}): set HF_TOKEN to a token with write access "
                              "or run `hf auth login`", "--push-to-hub") from None
        raise EndpointUnavailable(f"pushing to the Hub failed: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # huggingface_hub's "Invalid metadata in README.md"
        raise ConfigError(f"the Hub rejected the dataset card: {exc}", "--push-to-hub") from None
    except OSError as exc:  # no connection: huggingface_hub's own errors derive from OSError too
        raise EndpointUnavailable(f"cannot reach the Hub at {api.endpoint}: {exc}") from None
    return {"repo": repo_id, "url": str(url), "commit": commit.oid, "files": paths, "private": private}
