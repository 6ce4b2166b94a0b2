"""Sign-in, sign-out and the settings page (own password, API keys, users and their roles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from assay.errors import UserError
from assay.server.bounds import RowId
from assay.server.security.web import (
    CSRF_COOKIE,
    DEVICE_COOKIE,
    SESSION_COOKIE,
    SignInThrottle,
    cookies_secure,
    csrf_protect,
    login_csrf_token,
    same_origin,
    tokens_match,
    web_principal,
)
from assay.server.state import runtime_of
from assay.server.ui._render import render, render_plain
from assay.services import accounts
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

#: Outcomes named in the redirect after a form (never any user data in the URL).
NOTICES = {
    "key-created": "API key created. Copy it now: it is not shown again.",
    "key-revoked": "API key revoked; requests using it are refused within seconds.",
    "password": "Password changed. Your other sessions were signed out.",
    "user-created": "User created.",
    "role-granted": "Role granted.",
    "role-revoked": "Role removed.",
    "user-disabled": "User disabled and signed out everywhere.",
}
MAX_FIELD_CHARS = 2000


#: Sign-in failures of this process (see SignInThrottle); tests replace it to start afresh.
failures = SignInThrottle()


def safe_next(target: str | None) -> str:
    """A local path to go to after sign-in; anything that could leave the site becomes "/"."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return "/"  # browsers read "/\\evil.com" as "//evil.com"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return "/"
    return target


def _client_address(request: Request) -> str:
    """The peer's address, or the client's as a proxy named in ASSAY_TRUSTED_PROXIES says."""
    return request.client.host if request.client else ""


def _client(request: Request) -> str:
    return SignInThrottle.client(
        _client_address(request),
        request.cookies.get(CSRF_COOKIE, ""),
        request.cookies.get(DEVICE_COOKIE, ""),
    )


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


# --- sign-in and sign-out -----------------------------------------------------------------


def _login_page(
    request: Request, target: str, *, error: str | None = None, name: str = "", status: int = 200
) -> HTMLResponse:
    runtime = runtime_of(request)
    nobody = not accounts.users_exist(runtime)
    return render_plain(
        "login.html",
        status=status,
        csrf_token=login_csrf_token(request),
        next=target,
        error=error,
        name=name,
        nobody=nobody,
        keys_ended_open_mode=nobody and runtime.allow_open,
        signed_out=request.query_params.get("signed_out") == "1",
    )


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")

    def already_in() -> bool:
        if token and accounts.principal_for_session(runtime, token) is not None:
            return True
        return runtime.open_mode()

    if await run_in_threadpool(already_in):
        return RedirectResponse(target, status_code=303)
    return await run_in_threadpool(_login_page, request, target)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    name, password = _field(form, "name").strip(), _field(form, "password")
    target = safe_next(_field(form, "next"))
    # No session yet: the form's token must match the pre-login double-submit cookie.
    if not same_origin(request) or not tokens_match(
        _field(form, "csrf_token"), request.cookies.get(CSRF_COOKIE, "")
    ):
        return await run_in_threadpool(
            lambda: _login_page(
                request, target, error="The sign-in form expired; try again.", status=403
            )
        )
    client = _client(request)
    trusted = failures.trusted(name, request.cookies.get(DEVICE_COOKIE, ""))
    if failures.blocked(name, client) or not await failures.turn(name, trusted):
        return await run_in_threadpool(
            lambda: _login_page(
                request,
                target,
                name=name,
                error="Too many failed sign-ins. Wait a few minutes and try again.",
                status=429,
            )
        )
    old_token = request.cookies.get(SESSION_COOKIE, "")
    max_age = runtime.settings.session_max_days * 86400

    token = await run_in_threadpool(
        lambda: accounts.sign_in(
            runtime, name, password, old_token=old_token, max_age_ns=max_age * 10**9
        )
    )
    if token is None:
        failures.failed(name, client, trusted)
        # One message for an unknown name and a wrong password: names are not disclosed.
        return await run_in_threadpool(
            lambda: _login_page(
                request, target, name=name, error="Wrong user name or password.", status=401
            )
        )
    failures.succeeded(name, client)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request),
        path="/",
    )
    # This browser is now known for this account: others' failures no longer slow it down.
    response.set_cookie(
        DEVICE_COOKIE,
        failures.device_token(name),
        max_age=365 * 86400,
        httponly=True,
        samesite="strict",
        secure=cookies_secure(request),
        path="/login",
    )
    return response


@router.post("/logout", dependencies=[Depends(csrf_protect)])
async def logout(request: Request, who: Principal = Depends(web_principal)) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    if who.open_mode or not token:
        return RedirectResponse("/", status_code=303)
    await run_in_threadpool(accounts.sign_out, runtime_of(request), token)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    # Pages kept by the browser (back button) must not show after sign-out.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


# --- the settings page ----------------------------------------------------------------


async def _settings_page(
    request: Request, who: Principal, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    session = request.cookies.get(SESSION_COOKIE, "")
    context = await run_in_threadpool(accounts.settings_view, runtime_of(request), who, session)
    notice = None if error else NOTICES.get(request.query_params.get("done", ""))
    return render(
        request,
        "settings.html",
        status=status,
        notice=notice,
        error=error,
        **context,
    )


def _done(what: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/settings?done={what}#{anchor}", status_code=303)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, who: Principal = Depends(web_principal)) -> HTMLResponse:
    return await _settings_page(request, who)


def _sentence(exc: UserError) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


@router.post("/settings/keys", dependencies=[Depends(csrf_protect)])
async def create_key(request: Request, who: Principal = Depends(web_principal)) -> Response:
    form = await request.form()
    project = _field(form, "project") or None
    role = _field(form, "role")
    label = _field(form, "name").strip()[:200] or "web"
    # Shown once, on the page after the redirect: kept sealed with the session.
    session = request.cookies.get(SESSION_COOKIE, "")
    try:
        await run_in_threadpool(
            lambda: accounts.create_key(
                runtime_of(request),
                who,
                name=label,
                role=role,
                project=project,
                seal_for_session=session,
            )
        )
    except UserError as exc:
        return await _settings_page(request, who, error=_sentence(exc), status=400)
    return _done("key-created", "keys")


@router.post("/settings/personal-keys", dependencies=[Depends(csrf_protect)])
async def create_personal_key(
    request: Request, who: Principal = Depends(web_principal)
) -> Response:
    """A key that acts as the signed-in user, with their roles: for their own scripts and
    labelling tools, so what they label through the API is still theirs."""
    form = await request.form()
    project = _field(form, "project") or None
    if project is not None:
        who.require(project)  # a project one may not see is refused like its pages
    session = request.cookies.get(SESSION_COOKIE, "")
    try:
        if who.open_mode or who.name is None:
            raise UserError("personal keys are for signed-in users")
        await run_in_threadpool(
            lambda: accounts.create_personal_key(
                runtime_of(request),
                who,
                user=str(who.name),
                project=project,
                seal_for_session=session,
            )
        )
    except UserError as exc:
        return await _settings_page(request, who, error=_sentence(exc), status=400)
    return _done("key-created", "keys")


@router.post("/settings/keys/{key_id}/revoke", dependencies=[Depends(csrf_protect)])
async def revoke_key(
    request: Request, key_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    await run_in_threadpool(accounts.revoke_key, runtime_of(request), who, key_id)
    return _done("key-revoked", "keys")


@router.post("/settings/password", dependencies=[Depends(csrf_protect)])
async def change_password(request: Request, who: Principal = Depends(web_principal)) -> Response:
    form = await request.form()
    current, new = _field(form, "current"), _field(form, "new")
    client = _client(request)
    if failures.blocked(who.name or "", client):
        return await _settings_page(
            request, who, error="Too many wrong passwords. Wait a few minutes.", status=429
        )
    if new != _field(form, "confirm"):
        return await _settings_page(request, who, error="The new passwords differ.", status=400)
    session = request.cookies.get(SESSION_COOKIE, "")
    try:
        await run_in_threadpool(
            lambda: accounts.change_password(
                runtime_of(request), who, current, new, keep_session=session
            )
        )
    except UserError as exc:
        if isinstance(exc, accounts.WrongPassword):
            failures.failed(who.name or "", client, trusted=True)
        return await _settings_page(request, who, error=_sentence(exc), status=400)
    return _done("password", "account")


# --- users and roles (administrators) -------------------------------------------------------


async def _admin_change(
    request: Request, who: Principal, change: Callable[[], object], done: str
) -> Response:
    """Run an administrator's change; a UserError is shown on the page."""
    try:
        await run_in_threadpool(change)
    except UserError as exc:
        return await _settings_page(request, who, error=_sentence(exc), status=400)
    return _done(done, "users")


@router.post("/settings/users", dependencies=[Depends(csrf_protect)])
async def create_user(request: Request, who: Principal = Depends(web_principal)) -> Response:
    form = await request.form()
    name, password = _field(form, "name").strip(), _field(form, "password")
    is_admin = _field(form, "is_admin") == "on"
    project, role = _field(form, "project"), _field(form, "role")
    response = await _admin_change(
        request,
        who,
        lambda: accounts.create_user(
            runtime_of(request), who, name, password, is_admin=is_admin, project=project, role=role
        ),
        "user-created",
    )
    if who.open_mode and response.status_code == 303:
        # The first user ended the open mode: sign in as them.
        return RedirectResponse("/login?next=/settings", status_code=303)
    return response


@router.post("/settings/users/{user_id}/grant", dependencies=[Depends(csrf_protect)])
async def grant_role(
    request: Request, user_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    project, role = _field(form, "project").strip(), _field(form, "role")
    if not project:
        return await _settings_page(request, who, error="Choose a project.", status=400)
    return await _admin_change(
        request,
        who,
        lambda: accounts.grant_role(runtime_of(request), who, user_id, project, role),
        "role-granted",
    )


@router.post("/settings/users/{user_id}/revoke", dependencies=[Depends(csrf_protect)])
async def revoke_role(
    request: Request, user_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    project = _field(form, "project")
    return await _admin_change(
        request,
        who,
        lambda: accounts.revoke_role(runtime_of(request), who, user_id, project),
        "role-revoked",
    )


@router.post("/settings/users/{user_id}/disable", dependencies=[Depends(csrf_protect)])
async def disable_user(
    request: Request, user_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _admin_change(
        request,
        who,
        lambda: accounts.disable_user(runtime_of(request), who, user_id),
        "user-disabled",
    )
