"""Who may do what on the web: reviewer accounts and their sessions, the admin token, and the loopback rule.

    auth = Auth.from_settings(settings, kit.stores.keys)    # a generated reviewer password when none is set
    @router.get("/x") async def x(reviewer: ReviewerDep, _admin: AdminDep): ...

Anyone may chat. Reviewers decide reviews; the admin (cron-job.org, the operator) resets and
initialises analytics. Without DACA_ADMIN_TOKEN, admin calls are accepted from this machine only: from
loopback, with no forwarding header of any proxy and not relayed by daprd (in Dapr mode, never).

Reviewer accounts: `reviewer` with DACA_REVIEWER_PASSWORD, and the named reviewers of DACA_REVIEWERS,
either `name:hash` (a password, stored as a scrypt hash) or a bare Hugging Face username (signs in with
Hugging Face in the Review tab; it has no password, so REST does not open it). REST takes HTTP Basic on
every call; the Review tab trades a password for a signed session token (`SessionTokens`). Failed
passwords are throttled per account and client (`LoginThrottle`): 429 with Retry-After. The client is
the socket's address, or, behind `proxy_hops` trusted proxies (DACA_TRUSTED_PROXIES; 1 on a Space), the
address the farthest trusted proxy saw, read from the right of X-Forwarded-For, where a client's own
forged entries (on the left) cannot reach.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from daca_kit.core.ports import KeyStore
from daca_kit.errors import RateLimited
from daca_kit.settings import Settings, is_loopback
from daca_kit.web.identity import UserTokens, bound
from daca_kit.web.logins import LoginThrottle, too_many
from daca_kit.web.passwords import DUMMY_HASH, verify_password
from daca_kit.web.sessions import SessionTokens

log = logging.getLogger(__name__)

REVIEWER = "reviewer"
SESSION_TTL = 12 * 3600.0
SESSION_KEY_NAME = "reviewer-session-key"


@dataclass(frozen=True)
class Account:
    """One reviewer: a password hash (DACA_REVIEWERS), the plain DACA_REVIEWER_PASSWORD, or neither (signs
    in with Hugging Face)."""

    name: str
    password_hash: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def huggingface(self) -> bool:
        return self.password_hash is None and self.password is None

    def check(self, password: str) -> bool:
        if self.password is not None:
            return secrets.compare_digest(password.encode(), self.password.encode())
        verified = verify_password(password, self.password_hash or DUMMY_HASH)
        return verified and self.password_hash is not None

    def fingerprint(self, key: str) -> str:
        """Ties a session token to this credential: a new password ends the account's sessions."""
        credential = self.password_hash or self.password or "huggingface"
        return hmac.new(key.encode(), f"{self.name}\0{credential}".encode(), hashlib.sha256).hexdigest()[:16]


def client_address(peer: str | None, forwarded_for: str | None, hops: int) -> str:
    """The client's address: the socket's, or behind `hops` trusted proxies the `hops`-th entry from the
    right of X-Forwarded-For (what the farthest trusted proxy saw; entries left of it are the client's)."""
    if hops > 0 and forwarded_for:
        entries = [e.strip() for e in forwarded_for.split(",") if e.strip()]
        if entries:
            return entries[-min(hops, len(entries))][:64]
    return peer or "unknown"


class Auth:
    """Reviewer accounts, their sessions and the login throttle, and the admin bearer token.

    auth = Auth.from_settings(settings, keys)
    name = auth.sign_in("alice", password, client)     # None when wrong; RateLimited when throttled
    token = auth.issue(name); auth.reviewer_of(token)  # -> "alice" until the token expires
    """

    def __init__(
        self,
        accounts: list[Account],
        admin_token: str | None,
        *,
        session_key: Callable[[], str],
        proxy_hops: int = 0,
        dapr_mode: bool = False,
        generated_password: str | None = None,
        session_ttl: float = SESSION_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.accounts = {a.name.lower(): a for a in accounts}
        self.admin_token = admin_token
        self.proxy_hops = proxy_hops
        self.dapr_mode = dapr_mode
        self.generated_password = generated_password
        self.session_ttl = session_ttl
        self._session_key = session_key
        self.tokens = SessionTokens(session_key, ttl=session_ttl, clock=clock)
        self.users = UserTokens(session_key)
        self.throttle = LoginThrottle(clock=clock)

    @classmethod
    def from_settings(
        cls, settings: Settings, keys: KeyStore, *, clock: Callable[[], float] = time.time
    ) -> Auth:
        accounts = [Account(name, password_hash=h) for name, h in settings.password_reviewers.items()]
        accounts += [Account(name) for name in settings.hf_reviewers]
        generated: str | None = None
        if settings.reviewer_password is not None:
            accounts.append(Account(REVIEWER, password=settings.reviewer_password.get_secret_value()))
        elif not settings.reviewers:
            generated = secrets.token_urlsafe(12)
            accounts.append(Account(REVIEWER, password=generated))
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        secret = settings.session_secret
        key_cache: list[str] = []

        def session_key() -> str:
            if not key_cache:
                if secret is not None:
                    key_cache.append(secret.get_secret_value())
                else:
                    key_cache.append(keys.get_or_create(SESSION_KEY_NAME, lambda: secrets.token_urlsafe(48)))
            return key_cache[0]

        return cls(
            accounts,
            token,
            session_key=session_key,
            proxy_hops=settings.proxy_hops,
            dapr_mode=settings.runtime == "dapr",
            generated_password=generated,
            clock=clock,
        )

    def __repr__(self) -> str:  # never the secrets
        names = ", ".join(a.name for a in self.accounts.values())
        return f"Auth(reviewers=[{names}], admin_token={'set' if self.admin_token else 'unset'})"

    # -- accounts -------------------------------------------------------------------------------
    @property
    def password_signin(self) -> bool:
        return any(not a.huggingface for a in self.accounts.values())

    @property
    def hf_signin(self) -> bool:
        return any(a.huggingface for a in self.accounts.values())

    def client_of(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self.proxy_hops)

    def is_local(self, peer: str | None, headers: Mapping[str, str]) -> bool:
        """The operator on this machine: loopback, not forwarded by a proxy nor relayed by daprd. In Dapr mode
        never: daprd relays other apps' calls from loopback, and a call it makes to the app's own id carries
        nothing that tells it from a local one, so there only DACA_ADMIN_TOKEN opens admin calls."""
        return not self.dapr_mode and from_this_machine(peer, headers) and not through_sidecar(headers)

    def visitor(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The client address that per-visitor limits count (`Kit.submit`'s `client`); None for the operator
        on this machine, who is not limited."""
        if self.is_local(peer, headers):
            return None
        return self.client_of(peer, headers.get("x-forwarded-for"))

    def sign_in(self, name: str, password: str, client: str) -> str | None:
        """The reviewer's name when `password` is theirs, else None (counted as a failure).

        Raises RateLimited, before any password check, while this client is throttled for `name`.
        """
        name = (name or "").strip() or REVIEWER
        wait = self.throttle.wait(name, client)
        if wait > 0:
            raise RateLimited(too_many(wait), retry_after=math.ceil(wait))
        account = self.accounts.get(name.lower())
        if account is not None and not account.huggingface and account.check(password or ""):
            return account.name
        if account is None or account.huggingface:
            verify_password(password or "", DUMMY_HASH)  # the same time as a wrong password
        self.throttle.failed(name, client)
        log.info("reviewer sign-in refused for a name of %d characters from %s", len(name), client)
        return None

    def hf_reviewer(self, username: str | None) -> str | None:
        """The reviewer a Hugging Face username signs in as, when DACA_REVIEWERS lists it."""
        account = self.accounts.get((username or "").lower())
        return account.name if account is not None and account.huggingface else None

    # -- sessions -------------------------------------------------------------------------------
    def issue(self, name: str) -> str:
        account = self.accounts[name.lower()]
        return self.tokens.issue(account.name, account.fingerprint(self._session_key()))

    def reviewer_of(self, token: object) -> str | None:
        """The reviewer a session token belongs to, or None (expired, forged, or the account changed)."""
        read = self.tokens.read(token)
        if read is None:
            return None
        account = self.accounts.get(read[0].lower())
        if account is None or account.huggingface:
            return None
        if not hmac.compare_digest(read[1], account.fingerprint(self._session_key())):
            return None
        return account.name


# Headers that a proxy adds to a request it forwards (RFC 7239 and the common de facto ones). A request
# carrying any of them started somewhere else, whatever address it names.
PROXY_HEADERS = frozenset(
    {"forwarded", "via", "x-real-ip", "true-client-ip", "cf-connecting-ip", "x-client-ip", "fastly-client-ip"}
)
PROXY_PREFIXES = ("x-forwarded-", "x-original-forwarded-", "x-cluster-client-")


def proxied(headers: Mapping[str, str]) -> bool:
    """Whether a proxy forwarded the request: any forwarding header, whatever its value."""
    return any(name.lower() in PROXY_HEADERS or name.lower().startswith(PROXY_PREFIXES) for name in headers)


def through_sidecar(headers: Mapping[str, str]) -> bool:
    """Whether daprd relayed the request: it marks calls other apps invoke (dapr-caller-app-id,
    dapr-callee-app-id) and, with APP_API_TOKEN set, every call (dapr-api-token)."""
    return any(name.lower().startswith("dapr-") for name in headers)


def from_this_machine(peer: str | None, headers: Mapping[str, str]) -> bool:
    """A request whose socket is on loopback and that no proxy forwarded (a public request reaches a Space
    through a proxy, which adds X-Forwarded-For)."""
    return is_loopback(peer) and not proxied(headers)


def peer_of(request: Request) -> str | None:
    return request.client.host if request.client else None


async def get_auth(request: Request) -> Auth:  # async: no thread-pool round trip (see get_kit)
    return request.app.state.auth  # type: ignore[no-any-return]


AuthDep = Annotated[Auth, Depends(get_auth)]
basic = HTTPBasic(auto_error=False, realm="daca-kit reviewers")


def require_reviewer(
    request: Request, auth: AuthDep, credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)]
) -> str:
    """The reviewer of an HTTP Basic login; 401 otherwise, 429 (Retry-After) while throttled."""
    name: str | None = None
    if credentials is not None:
        peer = request.client.host if request.client else None
        client = auth.client_of(peer, request.headers.get("x-forwarded-for"))
        name = auth.sign_in(credentials.username, credentials.password, client)
    if name is None:
        raise HTTPException(
            status_code=401,
            detail=(
                "Reviewer login required: HTTP Basic with your reviewer name and password "
                "(user 'reviewer' and DACA_REVIEWER_PASSWORD, or a name of DACA_REVIEWERS)."
            ),
            headers={"WWW-Authenticate": 'Basic realm="daca-kit reviewers"'},
        )
    return name


def require_admin(request: Request, auth: AuthDep) -> None:
    if auth.admin_token is None:
        if auth.is_local(peer_of(request), request.headers):
            return
        where = (
            "In Dapr mode admin calls need DACA_ADMIN_TOKEN"
            if auth.dapr_mode
            else "Admin calls are allowed only from this machine, not through a proxy, until DACA_ADMIN_TOKEN is set"
        )
        raise HTTPException(
            status_code=403, detail=f"{where}: set it and send 'Authorization: Bearer <DACA_ADMIN_TOKEN>'."
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not is_admin_token(auth, token.strip()):
        raise HTTPException(
            status_code=401,
            detail="Admin token required: send 'Authorization: Bearer <DACA_ADMIN_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def is_admin_token(auth: Auth, token: str) -> bool:
    return auth.admin_token is not None and secrets.compare_digest(token.encode(), auth.admin_token.encode())


async def require_user(request: Request, auth: Auth, user_id: str, *, history: bool) -> None:
    """Lets a caller act as `user_id`: chat as it (`history=False`: anyone for an open id; a bound id needs
    its token) or read its history (its token, a reviewer, or the admin). This machine passes under the
    admin rule (no DACA_ADMIN_TOKEN, not forwarded). 401 without a usable credential, 403 with another
    user's token; see daca_kit.web.identity."""
    if not history and not bound(user_id):
        return
    if auth.admin_token is None and auth.is_local(peer_of(request), request.headers):
        return
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    scheme, credential = scheme.lower(), credential.strip()
    if scheme == "bearer" and credential:
        if is_admin_token(auth, credential):
            return
        owner = auth.users.user_of(credential)
        if owner == user_id:
            return
        if owner is not None:
            raise HTTPException(
                status_code=403,
                detail=f"Your token is for user id '{owner}', not '{user_id}': use the id your token was issued for.",
            )
    elif scheme == "basic" and history:
        require_reviewer(request, auth, await basic(request))
        return
    what = "read the history of" if history else "chat as"
    raise HTTPException(
        status_code=401,
        detail=(
            f"To {what} '{user_id}' send its token: 'Authorization: Bearer <token>' (POST /users gives a new user "
            "id with its token). Reviewers may read any history with their login, the admin with DACA_ADMIN_TOKEN."
        ),
        headers={"WWW-Authenticate": "Bearer"},
    )


ReviewerDep = Annotated[str, Depends(require_reviewer)]
AdminDep = Annotated[None, Depends(require_admin)]
