"""A small typed client for the doccano 1.8.4 REST endpoints annopipe uses.

Not `doccano-client`: it pins pydantic<2 and urllib3<2, which annopipe's users cannot have next
to their other libraries (DESIGN.md). Requests that never reached the server are retried with
backoff; reads are also retried on 5xx. A POST that may have reached the server is not retried
blindly, because doccano would store it twice: the sync layer checks the server state instead.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from annopipe.errors import AnnopipeError

URL_ENV, USER_ENV, PASSWORD_ENV = "ANNOPIPE_DOCCANO_URL", "ANNOPIPE_DOCCANO_USER", "ANNOPIPE_DOCCANO_PASSWORD"

SPAN_TYPES, RELATION_TYPES, CATEGORY_TYPES = "span-types", "relation-types", "category-types"
SPANS, RELATIONS, CATEGORIES = "spans", "relations", "categories"

RETRIES = 3
BACKOFF_S = 0.25
PAGE = 500


@dataclass(frozen=True)
class Credentials:
    """A doccano login, read from the environment only; the password never appears in a repr."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def from_env(cls) -> Credentials:
        username, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
        if not username or not password:
            raise AnnopipeError(
                f"set {USER_ENV} and {PASSWORD_ENV} to the doccano login annopipe should use "
                "(they are read from the environment only, never from files)"
            )
        return cls(username, password)


class DoccanoClient:
    """One logged-in session against one doccano server (token auth, no cookies)."""

    def __init__(self, url: str, credentials: Credentials, timeout: float = 60.0, task_timeout: float = 600.0):
        self.url = url.rstrip("/")
        self.task_timeout = task_timeout
        self.username = credentials.username
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers={"Accept": "application/json"})
        response = self._send("POST", "/v1/auth/login/", json={"username": credentials.username,
                                                                "password": credentials.password})
        if response.status_code == 400:
            raise AnnopipeError(
                f"doccano at {self.url} refused the login of {credentials.username!r}; check {USER_ENV} and {PASSWORD_ENV}"
            )
        self._check(response, "log in")
        self._http.headers["Authorization"] = f"Token {response.json()['key']}"
        self._http.cookies.clear()  # token auth only: a session cookie would bring CSRF checks with it

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        idempotent = method in ("GET", "PUT", "DELETE", "HEAD")
        for attempt in range(RETRIES + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.ConnectError as err:
                failure: Exception = err  # never reached the server: safe to retry any method
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.TimeoutException) as err:
                if not idempotent:
                    raise AnnopipeError(f"doccano at {self.url} stopped answering during {method} {path} ({err})") from None
                failure = err
            else:
                if not (idempotent and response.status_code >= 500):
                    return response
                failure = AnnopipeError(f"HTTP {response.status_code}")
            if attempt < RETRIES:
                time.sleep(BACKOFF_S * 2**attempt)
        if isinstance(failure, httpx.ConnectError):
            raise AnnopipeError(
                f"cannot reach doccano at {self.url}; start it with `annopipe doccano up` or set {URL_ENV}"
            )
        raise AnnopipeError(f"doccano at {self.url} failed on {method} {path} ({failure})")

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code == 404:
            raise AnnopipeError(f"doccano at {self.url}: not found while trying to {what}")
        if response.status_code == 403:
            raise AnnopipeError(f"doccano at {self.url}: {self.username!r} may not {what} (needs project admin)")
        if response.status_code >= 400:
            raise AnnopipeError(f"doccano at {self.url} could not {what}: HTTP {response.status_code} {response.text[:200]}")
        return response

    def _get(self, path: str, what: str, **params: Any) -> Any:
        return self._check(self._send("GET", path, params=params), what).json()

    def _post(self, path: str, body: Any, what: str) -> Any:
        response = self._check(self._send("POST", path, json=body), what)
        return response.json() if response.content else None

    def _delete(self, path: str, what: str, body: Any = None) -> None:
        self._check(self._send("DELETE", path, json=body) if body is not None else self._send("DELETE", path), what)

    def _pages(self, path: str, what: str, **params: Any) -> Iterator[dict]:
        offset = 0
        while True:
            page = self._get(path, what, limit=PAGE, offset=offset, **params)
            yield from page["results"]
            offset += len(page["results"])
            if not page["results"] or page["next"] is None:
                return

    # -- users, projects, members -----------------------------------------------------------------

    def me(self) -> dict:
        return self._get("/v1/me", "read the current user")

    def users(self, search: str = "") -> list[dict]:
        return self._get("/v1/users", "list users", q=search) if search else self._get("/v1/users", "list users")

    def create_user(self, username: str, password: str) -> dict:
        """Create a plain (non-admin) user; needs a staff login."""
        body = {"username": username, "email": f"{username}@localhost", "password1": password, "password2": password}
        return self._post("/v1/users/create", body, f"create user {username!r}")

    def projects(self) -> list[dict]:
        return list(self._pages("/v1/projects", "list projects"))

    def project(self, project_id: int) -> dict:
        return self._get(f"/v1/projects/{project_id}", f"read project {project_id}")

    def create_project(self, name: str, resourcetype: str, project_type: str, **settings: Any) -> dict:
        body = {"name": name, "description": "created by annopipe", "guideline": "", "project_type": project_type,
                "resourcetype": resourcetype, **settings}
        return self._post("/v1/projects", body, f"create project {name!r}")

    def roles(self) -> dict[str, int]:
        return {role["name"]: role["id"] for role in self._get("/v1/roles", "list roles")}

    def members(self, project_id: int) -> list[dict]:
        return self._get(f"/v1/projects/{project_id}/members", "list members")

    def add_member(self, project_id: int, user_id: int, role: str) -> dict:
        body = {"user": user_id, "role": self.roles()[role]}
        return self._post(f"/v1/projects/{project_id}/members", body, "add a project member")

    # -- label types ------------------------------------------------------------------------------

    def label_types(self, project_id: int, kind: str) -> list[dict]:
        """`kind` is SPAN_TYPES, RELATION_TYPES or CATEGORY_TYPES."""
        return self._get(f"/v1/projects/{project_id}/{kind}", f"list {kind}")

    def create_label_type(self, project_id: int, kind: str, text: str, color: str) -> dict:
        body = {"text": text, "background_color": color, "text_color": "#ffffff"}
        return self._post(f"/v1/projects/{project_id}/{kind}", body, f"create label {text!r}")

    # -- examples and their annotations -----------------------------------------------------------

    def examples(self, project_id: int, confirmed: bool | None = None) -> Iterator[dict]:
        """All examples of a project in creation order, paged; optionally only (un)confirmed ones."""
        params = {} if confirmed is None else {"confirmed": str(confirmed).lower()}
        return self._pages(f"/v1/projects/{project_id}/examples", "list examples", **params)

    def count_examples(self, project_id: int, confirmed: bool | None = None) -> int:
        params = {} if confirmed is None else {"confirmed": str(confirmed).lower()}
        return self._get(f"/v1/projects/{project_id}/examples", "count examples", limit=1, **params)["count"]

    def delete_examples(self, project_id: int, example_ids: list[int]) -> None:
        if example_ids:  # an empty list would delete every example of the project
            self._delete(f"/v1/projects/{project_id}/examples", "delete examples", body={"ids": example_ids})

    def annotations(self, project_id: int, example_id: int, kind: str) -> list[dict]:
        """`kind` is SPANS, RELATIONS or CATEGORIES."""
        return self._get(f"/v1/projects/{project_id}/examples/{example_id}/{kind}", f"list {kind}")

    def add_annotation(self, project_id: int, example_id: int, kind: str, body: dict) -> dict:
        return self._post(f"/v1/projects/{project_id}/examples/{example_id}/{kind}", body, f"add to {kind}")

    def update_annotation(self, project_id: int, example_id: int, kind: str, annotation_id: int, body: dict) -> dict:
        path = f"/v1/projects/{project_id}/examples/{example_id}/{kind}/{annotation_id}"
        return self._check(self._send("PATCH", path, json=body), f"change {kind}").json()

    def delete_annotation(self, project_id: int, example_id: int, kind: str, annotation_id: int) -> None:
        self._delete(f"/v1/projects/{project_id}/examples/{example_id}/{kind}/{annotation_id}", f"delete from {kind}")

    def label_counts(self, project_id: int, kind: str) -> dict[str, dict[str, int]]:
        """Annotations per user and label (`kind`: SPANS, RELATIONS or CATEGORIES), counted by doccano."""
        metric = {SPANS: "span", RELATIONS: "relation", CATEGORIES: "category"}[kind]
        return self._get(f"/v1/projects/{project_id}/metrics/{metric}-distribution", f"count {kind}")

    def states(self, project_id: int, example_id: int) -> list[dict]:
        """Confirmations of an example: who confirmed it and when."""
        return list(self._pages(f"/v1/projects/{project_id}/examples/{example_id}/states", "read confirmations"))

    def toggle_confirmed(self, project_id: int, example_id: int) -> None:
        """doccano toggles: the same call confirms and unconfirms."""
        self._post(f"/v1/projects/{project_id}/examples/{example_id}/states", {}, "confirm an example")

    # -- bulk import and export (run by doccano's task worker) ------------------------------------

    def upload(self, project_id: int, jsonl: str, task: str, filename: str = "annopipe.jsonl") -> str:
        """Start a JSONL import; returns the task id to wait for.

        The upload id comes first (a file nothing refers to yet, safe to resend); starting the
        import is the one step that must not run twice.
        """
        files = {"filepond": (filename, jsonl.encode("ascii"), "application/json")}
        response = self._check(self._send("POST", "/v1/fp/process/", files=files, headers={"Accept": "*/*"}),
                               "upload a file")
        body = {"uploadIds": [response.text.strip()], "task": task, "format": "JSONL", "encoding": "utf_8"}
        return self._post(f"/v1/projects/{project_id}/upload", body, "start an import")["task_id"]

    def wait(self, task_id: str, what: str) -> dict:
        """Poll a worker task to its end; an import's row errors come back in `result`."""
        deadline = time.monotonic() + self.task_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            status = self._get(f"/v1/tasks/status/{task_id}", f"follow the {what}")
            if status.get("ready"):
                if status.get("error"):
                    raise AnnopipeError(f"doccano's {what} failed: {status['error']}")
                return status.get("result") or {}
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        raise AnnopipeError(
            f"doccano's {what} did not finish within {self.task_timeout:.0f} s; is its worker (`doccano task`) running?"
        )

    def start_export(self, project_id: int, confirmed_only: bool) -> str:
        """Start a JSONL export of a project; returns the task id to pass to `download_export`."""
        body = {"format": "JSONL", "exportApproved": confirmed_only}
        return self._post(f"/v1/projects/{project_id}/download", body, "start an export")["task_id"]

    def download_export(self, project_id: int, task_id: str) -> dict[str, list[dict]]:
        """The finished export: one list of examples per file in doccano's zip.

        Collaborative projects give one file (`all`); others one per member, named after them.
        """
        self.wait(task_id, "export")
        response = self._check(self._send("GET", f"/v1/projects/{project_id}/download", params={"taskId": task_id}),
                               "download the export")
        files = {}
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            for name in archive.namelist():
                lines = archive.read(name).decode("utf-8").splitlines()
                files[name.rsplit(".", 1)[0]] = [json.loads(line) for line in lines if line.strip()]
        return files
