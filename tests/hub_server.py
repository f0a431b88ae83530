"""A loopback HTTP server speaking the part of the Hugging Face Hub API that ``huggingface_hub``'s
``create_repo`` and ``create_commit`` use, for tests of ``sftdata export --push-to-hub``:

    POST /api/validate-yaml                                  the card's YAML header (license_name with other)
    POST /api/repos/create                                   create a repo (409 when it exists)
    POST /api/{type}s/{owner}/{name}/preupload/{revision}    every file "regular" (inline in the commit)
    POST /api/{type}s/{owner}/{name}/commit/{revision}       NDJSON: a header, then base64 files

It keeps what was committed (``repos[repo_id]["files"]``: path -> bytes), the tokens it saw and each
request's path, and answers 401 to a request without ``Authorization`` when ``require_token`` is set.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HubServer:
    def __init__(self, require_token: bool = True) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.tokens: list[str] = []
        self.validated: list[str] = []  # README.md contents sent to /api/validate-yaml
        self.require_token = require_token
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._answer(*hub.route("GET", self.path, self.headers, b""))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                self._answer(*hub.route("POST", self.path, self.headers, body))

            def _answer(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def route(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        path = path.split("?", 1)[0]
        self.requests.append((method, path))
        auth = headers.get("authorization") or ""
        if auth:
            self.tokens.append(auth.removeprefix("Bearer "))
        elif self.require_token:
            return 401, {"error": "Invalid credentials in Authorization header"}
        if method == "POST" and path == "/api/validate-yaml":  # the card's metadata, checked before a commit
            return self._validate_yaml(json.loads(body)["content"])
        if method == "POST" and path == "/api/repos/create":
            request = json.loads(body)
            repo_id = f"{request.get('organization') or 'me'}/{request['name']}"
            if repo_id in self.repos:
                return 409, {"error": "You already created this dataset repo", "url": f"{self.url}/datasets/{repo_id}"}
            self.repos[repo_id] = {"type": request.get("type", "model"), "visibility": request.get("visibility", "public"),
                                   "files": {}, "commits": []}
            return 200, {"url": f"{self.url}/datasets/{repo_id}", "name": repo_id}
        parts = path.strip("/").split("/")
        if method == "POST" and len(parts) == 6 and parts[0] == "api" and parts[4] in ("preupload", "commit"):
            repo_id = f"{parts[2]}/{parts[3]}"
            if repo_id not in self.repos:
                return 404, {"error": "Repository not found"}
            if parts[4] == "preupload":
                files = json.loads(body)["files"]
                return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                       for f in files]}
            return self._commit(repo_id, body)
        return 404, {"error": f"not served here: {method} {path}"}

    def _validate_yaml(self, content: str) -> tuple[int, Any]:
        import yaml

        self.validated.append(content)
        try:
            header = yaml.safe_load(content.split("---\n")[1]) if content.startswith("---\n") else {}
        except (yaml.YAMLError, IndexError) as exc:
            return 400, {"errors": [{"message": f"invalid YAML: {exc}"}]}
        if not isinstance(header, dict):
            return 400, {"errors": [{"message": "metadata must be a mapping"}]}
        if header.get("license") == "other" and not header.get("license_name"):
            return 400, {"errors": [{"message": "license_name is required when license is other"}]}
        return 200, {"warnings": []}

    def _commit(self, repo_id: str, body: bytes) -> tuple[int, Any]:
        repo = self.repos[repo_id]
        summary = ""
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"].get("summary", "")
            elif item["key"] == "file":
                value = item["value"]
                repo["files"][value["path"]] = base64.b64decode(value["content"])
            else:
                return 400, {"error": f"unsupported commit item {item['key']}"}
        repo["commits"].append(summary)
        oid = f"{len(repo['commits']):040x}"
        return 200, {"commitUrl": f"{self.url}/datasets/{repo_id}/commit/{oid}", "commitOid": oid,
                     "pullRequestUrl": None}
