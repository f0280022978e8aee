"""POST /users and POST /users/{user_id}/token: user ids with the tokens that prove them (see
daca_kit.web.identity).

Anyone may ask for a new user id; only the admin may have a token made for an id of its choice (to hand
it to the person who uses that id), so nobody obtains a token for an id someone else already uses.
"""

from __future__ import annotations

from fastapi import APIRouter

from daca_kit.core.validation import valid_user_id
from daca_kit.web.api.schemas import Problem, UserToken
from daca_kit.web.auth import AdminDep, AuthDep

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=201, response_model=UserToken)
async def new_user(auth: AuthDep) -> dict[str, str]:
    user_id, token = auth.users.issue()
    return {"user_id": user_id, "token": token}


@router.post(
    "/{user_id}/token",
    status_code=201,
    response_model=UserToken,
    responses={401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}},
)
async def user_token(user_id: str, auth: AuthDep, _admin: AdminDep) -> dict[str, str]:
    user_id, token = auth.users.issue(valid_user_id(user_id))
    return {"user_id": user_id, "token": token}
