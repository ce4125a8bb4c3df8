"""The embedded local store: one git repository per dataset, the Hub's file layout, tags as versions.

``<root>/<namespace>/<name>/`` is a plain git repository whose tree is exactly what the Hub
would hold (``<config>/<split>-00000-of-0000N.parquet`` shards and a README.md card with
``configs:`` metadata). A version is an annotated tag. Pulling extracts a revision with
``git archive`` into ``<root>/.checkouts/<commit sha>/`` (immutable, so cached forever) and
loads it with ``load_dataset(folder, name=config)``. The root is ``$CODEPREF_HUB`` or
``~/.cache/codepref/hub``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset
from filelock import FileLock

from ..errors import BackendError, CodeprefError, DataError
from .cards import add_config_metadata, render_card, split_card, validate_card
from .store import PublishedVersion, VersionInfo, check_repo, num_shards, shard_paths, version_key

logger = logging.getLogger(__name__)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "codepref",
    "GIT_AUTHOR_EMAIL": "codepref@localhost",
    "GIT_COMMITTER_NAME": "codepref",
    "GIT_COMMITTER_EMAIL": "codepref@localhost",
}
_SKIP_ON_IMPORT = {".git", ".cache", ".gitattributes"}


def default_root() -> Path:
    return Path(os.environ.get("CODEPREF_HUB") or Path.home() / ".cache" / "codepref" / "hub").expanduser()


class LocalStore:
    """Datasets as git repositories under ``root`` (see the module docstring)."""

    name = "local"

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            **GIT_IDENTITY,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
        }

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # ---- git plumbing ----------------------------------------------------------------------------------

    def repo_dir(self, repo: str) -> Path:
        return self.root / check_repo(repo)

    def _git(self, path: Path, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], cwd=path, env=self._env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise BackendError(f"git {' '.join(args[:2])} failed in {path}: {proc.stderr.strip()}")
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def _lock(self, repo: str) -> FileLock:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(locks / (repo.replace("/", "__") + ".lock")))

    def _init(self, path: Path) -> None:
        if (path / ".git").is_dir():
            if self._git(path, "rev-parse", "-q", "--verify", "HEAD", check=False):
                self._git(path, "reset", "-q", "--hard")  # drop leftovers of an interrupted publish
                self._git(path, "clean", "-qfdx")
            return
        path.mkdir(parents=True, exist_ok=True)
        self._git(path, "init", "-q", "-b", "main")
        for key, value in (
            ("core.compression", "1"),
            ("gc.auto", "0"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
            ("core.hooksPath", os.devnull),
        ):
            self._git(path, "config", key, value)

    def _tag_commit(self, path: Path, version: str) -> str | None:
        if not (path / ".git").is_dir():
            return None
        return self._git(path, "rev-parse", "-q", "--verify", f"refs/tags/{version}^{{commit}}", check=False) or None

    def _refuse_existing(self, repo: str, path: Path, version: str) -> None:
        if self._tag_commit(path, version):
            raise CodeprefError(
                f"version {version!r} of {repo!r} already exists in the local store; a published version is "
                "immutable: publish a new version instead"
            )

    def _commit_and_tag(
        self, repo: str, path: Path, version: str, message: str, configs: tuple[str, ...]
    ) -> PublishedVersion:
        self._git(path, "add", "-A")
        self._git(path, "commit", "-q", "--allow-empty", "-m", message)
        self._git(path, "tag", "-a", version, "-m", message)
        sha = self._git(path, "rev-parse", "HEAD")
        logger.info("published %s@%s (%s) to the local store at %s", repo, version, sha[:12], path)
        return PublishedVersion(repo, version, sha, self.name, configs, str(path))

    # ---- the store interface ---------------------------------------------------------------------------

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
        path = self.repo_dir(repo)
        with self._lock(repo):
            self._refuse_existing(repo, path, version)
            self._init(path)
            readme = path / "README.md"
            meta, _ = split_card(readme.read_text(encoding="utf-8") if readme.exists() else None)
            for name, dd in configs.items():
                shutil.rmtree(path / name, ignore_errors=True)  # a config is replaced as a whole
                sizes: dict[str, int] = {}
                for split, ds in dd.items():
                    n = num_shards(ds)
                    for i, rel in enumerate(shard_paths(name, split, n)):
                        target = path / rel
                        target.parent.mkdir(parents=True, exist_ok=True)
                        (ds.shard(n, i, contiguous=True) if n > 1 else ds).to_parquet(str(target))
                        sizes[rel] = target.stat().st_size
                add_config_metadata(meta, name, dd, sizes)
            text = render_card(meta, repo=repo, version=version, new_configs=configs, card=card)
            validate_card(text)
            readme.write_text(text, encoding="utf-8")
            existing = self._configs_in_tree(meta)
            return self._commit_and_tag(repo, path, version, message, existing)

    @staticmethod
    def _configs_in_tree(meta: dict) -> tuple[str, ...]:
        return tuple(c["config_name"] for c in meta.get("configs") or [])

    def resolve(self, repo: str, revision: str) -> str:
        """The commit sha of ``revision`` (tag, branch or sha) in ``repo``."""
        path = self.repo_dir(repo)
        if not (path / ".git").is_dir():
            raise DataError(f"no dataset {repo!r} in the local store at {self.root}", source=repo)
        sha = self._git(path, "rev-parse", "-q", "--verify", f"{revision}^{{commit}}", check=False)
        if not sha:
            known = ", ".join(v.version for v in self.versions(repo)) or "none"
            raise DataError(f"no revision {revision!r} (versions: {known})", source=repo)
        return sha

    def snapshot(self, repo: str, revision: str) -> Path:
        sha = self.resolve(repo, revision)
        final = self.root / ".checkouts" / sha
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}.", dir=final.parent))
        try:
            proc = subprocess.Popen(
                ["git", "archive", "--format=tar", sha],
                cwd=self.repo_dir(repo),
                env=self._env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                tar.extractall(tmp, filter="data")
            err = proc.stderr.read().decode() if proc.stderr else ""
            if proc.wait() != 0:
                raise BackendError(f"git archive {sha} failed for {repo!r}: {err.strip()}")
            try:
                os.rename(tmp, final)  # atomic: a checkout folder that exists is complete
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def pull(self, repo: str, *, config: str, revision: str, split: str | None = None) -> Dataset | DatasetDict:
        folder = self.snapshot(repo, revision)
        meta, _ = split_card(
            (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").exists() else None
        )
        available = self._configs_in_tree(meta)
        if config not in available:
            raise DataError(
                f"no config {config!r} at revision {revision!r} (configs: {', '.join(available) or 'none'})",
                source=repo,
            )
        return load_dataset(str(folder), name=config, split=split)

    def versions(self, repo: str) -> list[VersionInfo]:
        path = self.repo_dir(repo)
        if not (path / ".git").is_dir():
            return []
        fmt = "%(refname:short)%00%(*objectname)%00%(objectname)%00%(creatordate:iso-strict)%00%(contents:subject)"
        out = []
        for line in self._git(path, "for-each-ref", f"--format={fmt}", "refs/tags").splitlines():
            name, peeled, obj, date, subject = line.split("\0")
            out.append(VersionInfo(name, peeled or obj, date or None, subject or None))
        return sorted(out, key=lambda v: version_key(v.version))

    def import_snapshot(
        self, repo: str, folder: Path, *, version: str, private: bool = False, message: str
    ) -> PublishedVersion:
        path = self.repo_dir(repo)
        with self._lock(repo):
            self._refuse_existing(repo, path, version)
            self._init(path)
            for child in path.iterdir():
                if child.name != ".git":
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            for child in Path(folder).iterdir():
                if child.name in _SKIP_ON_IMPORT:
                    continue
                if child.is_dir():
                    shutil.copytree(child, path / child.name, symlinks=False)
                else:
                    shutil.copy2(child, path / child.name)
            readme = path / "README.md"
            meta, _ = split_card(readme.read_text(encoding="utf-8") if readme.exists() else None)
            return self._commit_and_tag(repo, path, version, message, self._configs_in_tree(meta))
