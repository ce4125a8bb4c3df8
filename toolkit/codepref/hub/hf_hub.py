"""The Hugging Face Hub backend: ``push_to_hub`` per config, versions as ``create_tag`` tags.

The token comes from wherever ``huggingface_hub`` finds it (``HF_TOKEN``, ``hf auth login``) or
from the constructor; it is never logged, printed, or written into a card. ``HF_ENDPOINT``
selects another Hub-compatible server (the tests use a loopback one).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset

from ..errors import BackendError, CodeprefError, DataError
from .cards import render_card, split_card, validate_card
from .store import PublishedVersion, VersionInfo, check_repo, version_key

logger = logging.getLogger(__name__)


def _http_status(err: BaseException) -> int | None:
    for e in (err, err.__context__, err.__cause__):
        response = getattr(e, "response", None)
        if response is not None and getattr(response, "status_code", None) is not None:
            return int(response.status_code)
    return None


class HubStore:
    """Datasets on the Hugging Face Hub (or a Hub-compatible ``endpoint``)."""

    name = "hub"

    def __init__(self, token: str | None = None, endpoint: str | None = None) -> None:
        self._token = token
        self._endpoint = endpoint

    def __repr__(self) -> str:  # never shows the token
        return f"HubStore(endpoint={self._endpoint!r})"

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self._endpoint, token=self._token, library_name="codepref")

    def _tags(self, api: Any, repo: str) -> dict[str, str]:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = api.list_repo_refs(repo, repo_type="dataset")
        except RepositoryNotFoundError:
            return {}
        return {t.name: t.target_commit for t in refs.tags}

    def _refuse_existing(self, api: Any, repo: str, version: str) -> None:
        if version in self._tags(api, repo):
            raise CodeprefError(
                f"version {version!r} of {repo!r} already exists on the Hub; a published version is "
                "immutable: publish a new version instead"
            )

    def _tag(self, api: Any, repo: str, version: str, commit: str, message: str) -> None:
        from huggingface_hub.errors import HfHubHTTPError

        try:
            api.create_tag(repo, tag=version, revision=commit, tag_message=message, repo_type="dataset")
        except HfHubHTTPError as e:
            if _http_status(e) == 409:
                raise CodeprefError(
                    f"version {version!r} of {repo!r} was created concurrently on the Hub; "
                    f"commit {commit} is published untagged"
                ) from e
            raise BackendError(f"could not tag {repo!r} {commit[:12]} as {version!r}: {e}") from e

    def _readme(self, api: Any, repo: str, revision: str) -> str | None:
        from huggingface_hub.errors import EntryNotFoundError

        try:
            path = api.hf_hub_download(repo, "README.md", repo_type="dataset", revision=revision)
        except EntryNotFoundError:
            return None
        return Path(path).read_text(encoding="utf-8")

    def publish(
        self,
        configs: dict[str, DatasetDict],
        repo: str,
        *,
        version: str,
        private: bool = False,
        message: str,
        card: object = None,
    ) -> PublishedVersion:
        api = self._api()
        check_repo(repo)
        self._refuse_existing(api, repo, version)
        for name, dd in configs.items():
            logger.info("pushing config %r of %s to the Hub", name, repo)
            dd.push_to_hub(
                repo, config_name=name, commit_message=f"{message} (config {name})", private=private, token=self._token
            )
        head = api.repo_info(repo, repo_type="dataset").sha
        meta, _ = split_card(self._readme(api, repo, head))
        text = render_card(meta, repo=repo, version=version, new_configs=configs, card=card)
        validate_card(text)
        info = api.upload_file(
            path_or_fileobj=text.encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo,
            repo_type="dataset",
            commit_message=f"{message} (dataset card)",
            parent_commit=head,
        )
        commit = info.oid
        self._tag(api, repo, version, commit, message)
        logger.info("published %s@%s (%s) to the Hub", repo, version, commit[:12])
        done = tuple(c["config_name"] for c in split_card(text)[0].get("configs") or [])
        return PublishedVersion(repo, version, commit, self.name, done, f"{api.endpoint}/datasets/{repo}")

    def pull(self, repo: str, *, config: str, revision: str, split: str | None = None) -> Dataset | DatasetDict:
        try:
            return load_dataset(repo, config, revision=revision, split=split, token=self._token)
        except ValueError as e:
            raise DataError(f"cannot load config {config!r} at {revision!r}: {e}", source=repo) from e

    def versions(self, repo: str) -> list[VersionInfo]:
        tags = self._tags(self._api(), repo)
        return sorted((VersionInfo(name, sha) for name, sha in tags.items()), key=lambda v: version_key(v.version))

    def snapshot(self, repo: str, revision: str) -> Path:
        return Path(self._api().snapshot_download(repo, repo_type="dataset", revision=revision))

    def import_snapshot(
        self, repo: str, folder: Path, *, version: str, private: bool = False, message: str
    ) -> PublishedVersion:
        api = self._api()
        check_repo(repo)
        self._refuse_existing(api, repo, version)
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo,
            folder_path=str(folder),
            repo_type="dataset",
            commit_message=message,
            ignore_patterns=[".git/*", ".cache/*", ".gitattributes"],
            delete_patterns=["*.parquet", "*.md", "*.json", "*.jsonl", "*.arrow"],
        )
        self._tag(api, repo, version, info.oid, message)
        meta, _ = split_card(
            (Path(folder) / "README.md").read_text(encoding="utf-8") if (Path(folder) / "README.md").exists() else None
        )
        done = tuple(c["config_name"] for c in meta.get("configs") or [])
        return PublishedVersion(repo, version, info.oid, self.name, done, f"{api.endpoint}/datasets/{repo}")
