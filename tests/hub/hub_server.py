"""A loopback, in-memory, Hugging Face Hub-compatible server for tests.

It speaks just enough of the Hub's HTTP API for the real ``huggingface_hub`` / ``datasets``
clients to create repos, push (preupload → LFS batch + PUT → NDJSON commit), branch, tag,
list refs/commits/trees, validate card YAML and resolve/download files (ETag, X-Repo-Commit,
Range). Endpoints are the ones measured in NOTES.md "Hub protocol". Unknown routes answer
404 and are recorded in ``HubServer.unknown`` so a test can show what a client missed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"
LFS_BATCH = ["info", "lfs", "objects", "batch"]
_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Entry:
    data: bytes
    lfs: str | None = None  # sha256 when stored through LFS

    @property
    def oid(self) -> str:
        return _blob_oid(self.data)

    @property
    def etag(self) -> str:
        return self.lfs or self.oid


@dataclass
class Commit:
    oid: str
    parent: str | None
    files: dict[str, Entry]
    title: str
    message: str
    date: str


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=_now)

    def commit(self, parent: str | None, files: dict[str, Entry], title: str, message: str = "") -> Commit:
        payload = json.dumps([parent, sorted((p, e.etag) for p, e in files.items()), title, _now()]).encode()
        c = Commit(hashlib.sha1(payload).hexdigest(), parent, files, title, message, _now())
        self.commits[c.oid] = c
        return c

    def resolve(self, rev: str) -> Commit | None:
        rev = unquote(rev)
        for prefix, table in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if rev.startswith(prefix):
                rev = rev[len(prefix) :]
                return self.commits.get(table.get(rev, ""))
        oid = self.branches.get(rev) or self.tags.get(rev) or rev
        return self.commits.get(oid)


class HubState:
    """All repositories and LFS objects, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[str] = []

    def create(self, repo_type: str, repo_id: str, private: bool) -> Repo | None:
        key = (repo_type, repo_id)
        if key in self.repos:
            return None
        repo = Repo(repo_id, repo_type, private)
        first = repo.commit(None, {".gitattributes": Entry(GITATTRIBUTES)}, "initial commit")
        repo.branches["main"] = first.oid
        self.repos[key] = repo
        return repo


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # ---- responses -------------------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._json(
            {"error": message},
            status,
            {"X-Error-Code": code, "X-Error-Message": message} if code else {"X-Error-Message": message},
        )

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- dispatch --------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        segs = url.path.strip("/").split("/")
        st = self.server.state
        with st.lock:
            st.requests.append(f"{self.command} {url.path}")
        m = self.command
        try:
            if segs[:2] == ["api", "whoami-v2"]:
                return self._json(
                    {
                        "type": "user",
                        "name": "tester",
                        "fullname": "Tester",
                        "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"role": "write"}},
                    }
                )
            if segs[:3] == ["api", "repos", "create"] and m == "POST":
                return self._create_repo()
            if segs[:2] == ["api", "validate-yaml"] and m == "POST":
                return self._validate_yaml()
            if len(segs) >= 4 and segs[0] == "api" and segs[1] in _TYPES:
                return self._api(_TYPES[segs[1]], f"{segs[2]}/{segs[3]}", segs[4:])
            if len(segs) >= 2 and segs[0] == "lfs-upload" and m == "PUT":
                return self._lfs_put(segs[1])
            if len(segs) >= 3 and segs[0] in _TYPES and segs[2].endswith(".git") and segs[3:] == LFS_BATCH:
                return self._lfs_batch(_TYPES[segs[0]], f"{segs[1]}/{segs[2][:-4]}")
            if len(segs) >= 5 and segs[0] in _TYPES and segs[3] == "resolve":
                return self._resolve(_TYPES[segs[0]], f"{segs[1]}/{segs[2]}", segs[4], "/".join(segs[5:]))
            if len(segs) >= 4 and segs[2] == "resolve":  # models have no type prefix
                return self._resolve("model", f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        except BrokenPipeError:
            return
        with st.lock:
            self.server.unknown.append(f"{m} {self.path}")
        self._error(404, f"unknown route {m} {url.path}")

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.server.state.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, rev: str) -> Commit | None:
        c = repo.resolve(rev)
        if c is None:
            self._error(404, f"Invalid rev id: {unquote(rev)}", "RevisionNotFound")
        return c

    # ---- /api/{type}s/{ns}/{name}/... ------------------------------------------------------------------

    def _api(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        st = self.server.state
        with st.lock:
            repo = self._repo(repo_type, repo_id)
            if repo is None:
                return
            head, m = (rest[0] if rest else ""), self.command
            if head in ("", "revision") and m == "GET":
                c = self._commit(repo, rest[1] if head == "revision" else "main")
                return c and self._json(self._info(repo, c))
            if head == "tree" and m == "GET":
                c = self._commit(repo, rest[1])
                return c and self._tree(repo, c, "/".join(unquote(s) for s in rest[2:]))
            if head == "paths-info" and m == "POST":
                c = self._commit(repo, rest[1])
                return c and self._paths_info(repo, c)
            if head == "refs" and m == "GET":

                def ref(name: str, oid: str, kind: str) -> dict:
                    return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

                return self._json(
                    {
                        "branches": [ref(n, o, "heads") for n, o in repo.branches.items()],
                        "tags": [ref(n, o, "tags") for n, o in repo.tags.items()],
                        "converts": [],
                    }
                )
            if head == "commits" and m == "GET":
                c, out = self._commit(repo, rest[1]), []
                while c is not None:
                    out.append(
                        {
                            "id": c.oid,
                            "title": c.title,
                            "message": c.message,
                            "date": c.date,
                            "authors": [{"user": "tester"}],
                        }
                    )
                    c = repo.commits.get(c.parent) if c.parent else None
                return self._json(out)
            if head == "branch":
                return self._branch(repo, unquote(rest[1]))
            if head == "tag":
                return self._tag(repo, unquote(rest[1]))
            if head == "preupload" and m == "POST":
                return self._preupload(repo, rest[1])
            if head == "commit" and m == "POST":
                return self._create_commit(repo, rest[1])
        self._error(404, f"unknown route {self.command} {self.path}")

    def _info(self, repo: Repo, c: Commit) -> dict:
        card = c.files.get("README.md")
        card_data = None
        if card is not None:
            match = re.match(rb"^---\n(.*?)\n---\n", card.data, re.S)
            card_data = yaml.safe_load(match.group(1)) if match else None
        return {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": c.oid,
            "lastModified": c.date,
            "createdAt": repo.created,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "cardData": card_data,
            "siblings": [{"rfilename": p} for p in sorted(c.files)],
            "usedStorage": 0,
        }

    def _entry(self, repo: Repo, c: Commit, path: str, expand: bool) -> dict:
        if path in c.files:
            e = c.files[path]
            out = {"type": "file", "oid": e.oid, "size": len(e.data), "path": path}
            if e.lfs:
                out["lfs"] = {"oid": e.lfs, "size": len(e.data), "pointerSize": 134}
        else:
            out = {"type": "directory", "oid": _blob_oid(path.encode()), "size": 0, "path": path}
        if expand:
            out["lastCommit"] = {"id": c.oid, "title": c.title, "date": c.date}
        return out

    @staticmethod
    def _dirs(c: Commit) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in c.files for i in range(1, p.count("/") + 1)}

    def _tree(self, repo: Repo, c: Commit, path: str) -> None:
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[0].lower() in ("1", "true")
        dirs = self._dirs(c)
        if path and path not in dirs:
            return self._error(404, f"{path} does not exist", "EntryNotFound")
        prefix = f"{path}/" if path else ""
        names = sorted(
            p for p in (set(c.files) | dirs) if p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])
        )
        self._json([self._entry(repo, c, p, expand) for p in names])

    def _paths_info(self, repo: Repo, c: Commit) -> None:
        raw = self._body()
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            data = json.loads(raw or b"{}")
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:
            form = parse_qs(raw.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["False"])[0].lower() == "true"
        dirs = self._dirs(c)
        self._json(
            [
                self._entry(repo, c, p.strip("/"), expand)
                for p in paths
                if p.strip("/") in c.files or p.strip("/") in dirs
            ]
        )

    def _branch(self, repo: Repo, name: str) -> None:
        if self.command == "DELETE":
            repo.branches.pop(name, None)
            return self._json({})
        data = json.loads(self._body() or b"{}")
        if name in repo.branches:
            return self._error(409, f"Reference refs/heads/{name} already exists")
        c = self._commit(repo, data.get("startingPoint") or "main")
        if c is not None:
            repo.branches[name] = c.oid
            self._json({})

    def _tag(self, repo: Repo, rev_or_tag: str) -> None:
        if self.command == "DELETE":
            repo.tags.pop(rev_or_tag, None)
            return self._json({})
        data = json.loads(self._body() or b"{}")
        tag = data.get("tag", "")
        if tag in repo.tags:
            return self._error(409, f"Tag {tag} already exists")
        c = self._commit(repo, rev_or_tag)
        if c is not None:
            repo.tags[tag] = c.oid
            self._json({})

    def _preupload(self, repo: Repo, rev: str) -> None:
        data = json.loads(self._body())
        c = repo.resolve(rev)
        files = []
        for f in data.get("files", []):
            lfs = f["path"].endswith((".parquet", ".arrow")) or f["size"] > 10 * 2**20
            existing = c.files.get(f["path"]) if c else None
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.oid if existing else None,
                }
            )
        self._json({"files": files, "commitOid": c.oid if c else None})

    def _create_commit(self, repo: Repo, rev: str) -> None:
        st = self.server.state
        lines = [json.loads(x) for x in self._body().splitlines() if x.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        branch = unquote(rev)
        if branch not in repo.branches:
            return self._error(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        parent = repo.commits[repo.branches[branch]]
        if header.get("parentCommit") and header["parentCommit"] != parent.oid:
            return self._error(412, "A commit has happened since. Please refresh and try again.")
        files = dict(parent.files)
        for op in lines:
            key, v = op["key"], op.get("value", {})
            if key == "file":
                files[v["path"]] = Entry(base64.b64decode(v["content"]))
            elif key == "lfsFile":
                if v["oid"] not in st.lfs:
                    return self._error(422, f"LFS object {v['oid']} was never uploaded")
                files[v["path"]] = Entry(st.lfs[v["oid"]], lfs=v["oid"])
            elif key == "deletedFile":
                files.pop(v["path"], None)
            elif key == "deletedFolder":
                prefix = v["path"].rstrip("/") + "/"
                files = {p: e for p, e in files.items() if not p.startswith(prefix)}
        c = repo.commit(parent.oid, files, header.get("summary", ""), header.get("description", ""))
        repo.branches[branch] = c.oid
        base = self.server.url
        prefix = "" if repo.repo_type == "model" else f"/{repo.repo_type}s"
        self._json(
            {
                "success": True,
                "commitOid": c.oid,
                "commitUrl": f"{base}{prefix}/{repo.repo_id}/commit/{c.oid}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    # ---- repo creation, YAML validation, LFS -----------------------------------------------------------

    def _create_repo(self) -> None:
        data = json.loads(self._body())
        repo_type = data.get("type") or "model"
        repo_id = f"{data.get('organization') or 'tester'}/{data['name']}"
        private = bool(data.get("private")) or data.get("visibility") == "private"
        prefix = "" if repo_type == "model" else f"/{repo_type}s"
        url = f"{self.server.url}{prefix}/{repo_id}"
        with self.server.state.lock:
            created = self.server.state.create(repo_type, repo_id, private)
        if created is None:
            return self._json({"error": "You already created this repo", "url": url}, 409)
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        data = json.loads(self._body())
        content = data.get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as e:
            return self._json({"error": f"Invalid YAML: {e}"}, 400)
        if not isinstance(meta, dict):
            return self._json({"error": "metadata must be a mapping"}, 400)
        self._json({"errors": [], "warnings": []})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        if self.server.state.repos.get((repo_type, repo_id)) is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        data = json.loads(self._body())
        objects = []
        for o in data.get("objects", []):
            entry = {"oid": o["oid"], "size": o["size"], "authenticated": True}
            if o["oid"] not in self.server.state.lfs:
                entry["actions"] = {"upload": {"href": f"{self.server.url}/lfs-upload/{o['oid']}", "header": {}}}
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, oid: str) -> None:
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "sha256 mismatch")
        with self.server.state.lock:
            self.server.state.lfs[oid] = data
        self._send(200)

    # ---- file downloads --------------------------------------------------------------------------------

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        path = unquote(path)
        with self.server.state.lock:
            repo = self._repo(repo_type, repo_id)
            c = repo and self._commit(repo, rev)
            if not c:
                return
            entry = c.files.get(path)
        if entry is None:
            return self._error(404, f"Entry not found: {path}", "EntryNotFound")
        headers = {"ETag": f'"{entry.etag}"', "X-Repo-Commit": c.oid, "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.lfs}"', "X-Linked-Size": str(len(entry.data))})
        data, status = entry.data, 200
        rng = re.match(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if rng and (rng.group(1) or rng.group(2)):
            size = len(data)
            if rng.group(1):
                start = int(rng.group(1))
                end = min(int(rng.group(2)), size - 1) if rng.group(2) else size - 1
            else:
                start, end = max(0, size - int(rng.group(2))), size - 1
            if start >= size:
                return self._send(416, headers={"Content-Range": f"bytes */{size}"})
            data, status = data[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(status, data, headers, content_type="application/octet-stream")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: HubState
    unknown: list[str]
    url: str


class HubServer:
    """``with HubServer() as hub: ...`` serves on ``hub.url`` (127.0.0.1, a free port) from a thread."""

    def __init__(self) -> None:
        self.state = HubState()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = self.state
        self._httpd.unknown = []
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._httpd.url = self.url
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)

    @property
    def unknown(self) -> list[str]:
        return self._httpd.unknown

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
