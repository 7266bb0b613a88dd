"""The annotation web app: annotators compare two captions of a clip, blind; an admin watches quality.

Security model, kept small on purpose:
- a login link carries a long random token once; `/login` swaps it for an HttpOnly, SameSite=Strict session
  cookie and redirects to a URL without it (so the token stays out of logs, history and Referer headers);
- every request resolves the session to one annotator, and the store only ever returns that annotator's items;
- audio is looked up by clip id in the store (a clip in the caller's queue), never by a path from the request;
- answers are validated by a strict schema (4xx with a message) and written in one transaction.
"""

# no `from __future__ import annotations` here: FastAPI must see Annotated[..., Depends(<local function>)] itself


import html
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from string import Template
from typing import Annotated, Literal

from fastapi import Cookie, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field

from prefcap.prefs.agreement import agreement_report
from prefcap.prefs.store import Annotator, Store, StoreError

COOKIE = "prefcap_session"
_STATIC = resources.files("prefcap.prefs") / "static"
DEFAULT_GUIDELINES = _STATIC / "guidelines.md"


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignment_id: int = Field(ge=1)
    answer: Literal["left", "right", "tie", "skip"]
    seconds: float | None = Field(default=None, ge=0, lt=86_400)


def _page(file: str, **fields: str) -> str:
    return Template((_STATIC / file).read_text(encoding="utf-8")).substitute(fields)


def _security_headers(response) -> None:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )


def create_app(store: Store, guidelines: str | Path | None = None, secure_cookies: bool = False) -> FastAPI:
    """The app over one store. `guidelines` is a Markdown file (default: the packaged general guidelines).

    Long on purpose: FastAPI routes are closures over this store and its settings, one short function each, and
    reading them in one place shows every endpoint and who may call it."""
    guidelines_text = (Path(guidelines) if guidelines else DEFAULT_GUIDELINES).read_text(encoding="utf-8")
    # html=False: Markdown only, so a guidelines file cannot inject script into the page
    guidelines_html = MarkdownIt("commonmark", {"html": False}).render(guidelines_text)

    app = FastAPI(title="prefcap annotation", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(_STATIC)), name="static")

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        _security_headers(response)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, error: RequestValidationError):
        # the messages without the offending input: echoing it back can fail (NaN, Infinity) and say too much
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, error: StoreError):
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    def signed_in(session: Annotated[str | None, Cookie(alias=COOKIE)] = None) -> Annotator:
        annotator = store.session_annotator(session) if session else None
        if annotator is None:
            raise HTTPException(401, "not signed in: open the link with your token")
        return annotator

    def annotator_only(annotator: Annotated[Annotator, Depends(signed_in)]) -> Annotator:
        if annotator.role != "annotator":
            raise HTTPException(403, "this page is for annotators")
        return annotator

    def admin_only(annotator: Annotated[Annotator, Depends(signed_in)]) -> Annotator:
        if annotator.role != "admin":
            raise HTTPException(403, "this page needs the admin token")
        return annotator

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/login")
    def login(token: str | None = None) -> RedirectResponse:
        annotator = store.authenticate(token) if token else None
        if annotator is None:
            raise HTTPException(401, "missing or unknown token")
        response = RedirectResponse("/admin" if annotator.role == "admin" else "/", status_code=303)
        response.set_cookie(COOKIE, store.open_session(annotator), httponly=True, samesite="strict",
                            secure=secure_cookies, path="/")
        return response

    @app.post("/logout")
    def logout() -> RedirectResponse:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def annotate_page(annotator: Annotated[Annotator, Depends(annotator_only)]) -> str:
        return _page("annotate.html", name=html.escape(annotator.name), guidelines=guidelines_html)

    @app.get("/api/next")
    def next_item(annotator: Annotated[Annotator, Depends(annotator_only)]) -> dict:
        task = store.next_task(annotator)
        if task is None:
            done, assigned = store.progress(annotator)
            return {"finished": True, "done": done, "assigned": assigned}
        return {"finished": False, **asdict(task)}

    @app.post("/api/answer", status_code=201)
    def answer(body: Answer, annotator: Annotated[Annotator, Depends(annotator_only)]) -> dict:
        store.submit(annotator, body.assignment_id, body.answer, body.seconds)
        done, assigned = store.progress(annotator)
        return {"done": done, "assigned": assigned}

    @app.get("/audio/{clip_id}")
    def audio(clip_id: str, annotator: Annotated[Annotator, Depends(annotator_only)]) -> FileResponse:
        path = store.clip_audio(annotator, clip_id)
        if path is None:
            raise HTTPException(404, "no audio for this clip in your queue")
        return FileResponse(path, media_type="audio/wav")

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(_admin: Annotated[Annotator, Depends(admin_only)]) -> str:
        return _page("admin.html")

    @app.get("/admin/api/stats")
    def admin_stats(_admin: Annotated[Annotator, Depends(admin_only)]) -> dict:
        report = agreement_report(store.iter_judgment_rows(captions=False))
        progress = {a.name: dict(zip(("done", "assigned"), store.progress(a), strict=True))
                    for a in store.annotators()}
        for row in report["annotators"]:
            row.update(progress.pop(row["annotator"], {"done": 0, "assigned": 0}))
        report["annotators"] += [{"annotator": name, "judgments": 0, **p} for name, p in progress.items()]
        return {"counts": store.counts(), **report}

    return app


def serve(store: Store, host: str = "127.0.0.1", port: int = 8000, guidelines: str | Path | None = None,
          secure_cookies: bool = False) -> None:
    import uvicorn

    uvicorn.run(create_app(store, guidelines, secure_cookies), host=host, port=port, log_level="warning")
